"""What the experiment tests share: one tiny synthetic-mosi, two seeds, the tiny model,
and for each experiment the cell run besides its reference (`--cells`), so that the
suite stays short; every cell of every experiment is resolved without training in
test_catalog.py."""

import json
import os

from msa_core.io import read_csv
from pipelines import experiment, training
from pipelines.experiments import catalog, report
from pipelines.experiments.runner import resolve_cells
from tests.pipelines.conftest import SCALE, TINY

DATASET = "synthetic-mosi"
SEEDS = (1, 2)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REAL_TRAINING = training.train_and_evaluate
# The tiny model of the pipeline tests (its per-step Dense extractor traces in a
# fraction of an LSTM's time), one epoch; `extractor` keeps the default LSTM, its
# reference cell. The word-embedding table of `transfer` is 8 wide, not GloVe's 300 (set
# in every experiment, so that the shared reference runs are one configuration).
TINY_VALUES = dict({k: v for k, v in TINY.items() if k != "epochs"}, word_embedding_dim=8)
# Experiments whose cells (as run here) all hold text run with text as a fixed key
# modality (one model build per run instead of two); `fusion`'s reference is the
# automatic choice.
FIXED_KEY = ("key_modality", "text")
# name -> (the cell run besides the reference, extra flags)
PLAN = {
    "baselines": ("LF-DNN", ["--models", "lf_dnn"]),
    "scales": ("n=3 r=1", ["--n", "2,3", "--r", "1"]),
    "modalities": ("T", []),
    "transfer": ("word embedding", []),
    "multiscale": ("T+A+V", []),
    "fusion": ("Early", []),
    "extractor": ("Linear", []),
    "robustness": (f"M³SA + modality dropout {catalog.DEFAULT_MODALITY_DROPOUT:g}",
                   ["--models", "lf_dnn"]),
}
AUTO_KEY = ("fusion",)


def set_flags(name):
    values = dict(TINY_VALUES)
    if name == "extractor":
        del values["extractor"]
    if name not in AUTO_KEY:
        values[FIXED_KEY[0]] = FIXED_KEY[1]
    return ["--set"] + [f"{k}={json.dumps(v)}" for k, v in values.items()]


def argv(name, data_dir, output_dir, runs_dir):
    other, extra = PLAN[name]
    return [name, "--dataset", DATASET, "--data-dir", data_dir, "--output-dir", output_dir,
            "--runs-dir", runs_dir, "--scale", str(SCALE), "--seeds",
            ",".join(map(str, SEEDS)), "--epochs", "1", "--bootstrap-resamples", "200",
            "--cells", other, *extra, *set_flags(name)]


def settings_of(name, output_dir, runs_dir, data_dir):
    args = experiment.build_parser().parse_args(argv(name, data_dir, output_dir, runs_dir))
    return experiment.settings_from_args(args, [])


def runs_dir_for(name, runs_dirs):
    return runs_dirs["auto" if name in AUTO_KEY else "fixed"]


class TrainingSpy:
    """Passes every run on to the real protocol and records it; with `interrupt_at`,
    Ctrl-C arrives instead of that run (counted from 1)."""

    def __init__(self, interrupt_at=None):
        self.interrupt_at = interrupt_at
        self.runs = []

    def __call__(self, config, data_dir, run_dir, **kwargs):
        if len(self.runs) + 1 == self.interrupt_at:
            raise KeyboardInterrupt()
        self.runs.append(run_dir)
        return REAL_TRAINING(config, data_dir, run_dir, **kwargs)


def check_outputs(settings):
    cells = [c for c, _ in resolve_cells(settings)]
    rows = read_csv(os.path.join(settings.output_dir, report.RESULTS_FILE))
    conditions = {"clean"}
    if settings.experiment.robustness:
        from pipelines.experiments.perturbations import conditions as all_conditions

        conditions = {c.name for c in all_conditions()}
    expected = {(c.label, str(s), k) for c in cells for s in SEEDS for k in conditions}
    # A baseline with fewer modalities has fewer conditions; this plan has none.
    assert {(r["cell"], r["seed"], r["condition"]) for r in rows} == expected
    for row in rows:
        assert 0.0 <= float(row["test_Has0_acc_2"]) <= 1.0
    summary = open(os.path.join(settings.output_dir, report.SUMMARY_FILE)).read()
    for c in cells:
        assert f"| {c.label}" in summary
    assert f"{len(cells) * len(SEEDS)}/{len(cells) * len(SEEDS)} runs finished" in summary
    with open(os.path.join(settings.output_dir, report.FIGURE_FILE), "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    return rows, summary


# `extractor` runs in the kill-and-resume test below.
