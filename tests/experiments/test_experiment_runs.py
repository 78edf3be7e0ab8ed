"""`python -m pipelines.experiment NAME`, end to end with real trainings of tiny models.

Every experiment of the catalog runs over two seeds on a tiny synthetic-mosi and writes
its results.csv (a row per cell and seed, and per test condition for `robustness`), its
summary.md (every cell, every comparison with the reference) and its figure.png. To keep
the suite short each experiment runs its reference cell and one other (`--cells`); that
every cell of every experiment resolves to a valid configuration is checked without
training in test_catalog.py. A killed experiment, rerun, trains only what was missing;
the summary's comparisons are the paired t-test and clip bootstrap computed directly.
"""

import json
import os

import numpy as np
import pytest
from scipy import stats

from msa_core.io import read_csv
from pipelines import experiment, training
from pipelines.experiments import catalog, report, significance
from pipelines.experiments.runner import ExperimentSettings, resolve_cells
from tests.pipelines.conftest import SCALE, TINY

DATASET = "synthetic-mosi"
SEEDS = (1, 2)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REAL_TRAINING = training.train_and_evaluate
# The tiny model of the pipeline tests, one epoch. The extractor stays the default LSTM,
# which is the `extractor` experiment's reference.
TINY_VALUES = {k: v for k, v in TINY.items() if k not in ("extractor", "epochs")}
# Experiments whose cells all hold text run with text as a fixed key modality (one model
# build per run instead of two); `modalities` and `fusion` need the automatic choice.
FIXED_KEY = ("key_modality", "text")
# name -> (the cell run besides the reference, extra flags)
PLAN = {
    "baselines": ("LF-DNN", ["--models", "lf_dnn"]),
    "scales": ("n=3 r=1", ["--n", "2,3", "--r", "1"]),
    "modalities": ("T", []),
    "transfer": ("word embedding", []),
    "multiscale": ("T+A+V", []),
    "fusion": ("Early", []),
    "extractor": ("GRU", []),
    "robustness": (f"M³SA + modality dropout {catalog.DEFAULT_MODALITY_DROPOUT:g}",
                   ["--models", "lf_dnn"]),
}
AUTO_KEY = ("modalities", "fusion")


def set_flags(name):
    values = dict(TINY_VALUES)
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


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    import tfrecords

    path = str(tmp_path_factory.mktemp("data"))
    tfrecords.build_dataset(DATASET, path, scale=SCALE, seed=0)
    return path


@pytest.fixture(scope="module")
def runs_dirs(tmp_path_factory):
    """One shared runs directory per key-modality setting: experiments that hold the
    same cell (the full model is most experiments' reference) train it once."""
    root = tmp_path_factory.mktemp("runs")
    return {"fixed": str(root / "fixed_key"), "auto": str(root / "auto_key")}


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


@pytest.mark.parametrize("name", [n for n in catalog.experiment_names() if n != "extractor"])
def test_each_experiment_writes_its_results_summary_and_figure(name, data_dir, runs_dirs,
                                                               tmp_path):
    output_dir = str(tmp_path / name)
    code = experiment.main(argv(name, data_dir, output_dir, runs_dir_for(name, runs_dirs)))
    assert code == 0
    settings = settings_of(name, output_dir, runs_dir_for(name, runs_dirs), data_dir)
    rows, summary = check_outputs(settings)
    other = PLAN[name][0]
    # The other cell is compared with the reference, with an interval and a verdict.
    line = next(l for l in summary.splitlines() if l.startswith(f"| {other} |")
                and "p=" in l)
    assert "[" in line and ("n.s." in line or "better" in line or "worse" in line)


def test_a_killed_experiment_resumes_without_retraining_finished_runs(data_dir, tmp_path,
                                                                       monkeypatch):
    """The `extractor` experiment (LSTM and GRU cells, two seeds: four runs) is stopped
    by Ctrl-C before its third run, then rerun with the same command."""
    output_dir, runs_dir = str(tmp_path / "extractor"), str(tmp_path / "runs")
    first = TrainingSpy(interrupt_at=3)
    monkeypatch.setattr(training, "train_and_evaluate", first)
    assert experiment.main(argv("extractor", data_dir, output_dir, runs_dir)) == 130
    assert len(first.runs) == 2
    partial = read_csv(os.path.join(output_dir, report.RESULTS_FILE))
    assert len(partial) == 2  # the report covers what finished before the kill
    second = TrainingSpy()
    monkeypatch.setattr(training, "train_and_evaluate", second)
    assert experiment.main(argv("extractor", data_dir, output_dir, runs_dir)) == 0
    assert len(second.runs) == 2 and not set(second.runs) & set(first.runs)
    check_outputs(settings_of("extractor", output_dir, runs_dir, data_dir))
    third = TrainingSpy()
    monkeypatch.setattr(training, "train_and_evaluate", third)
    assert experiment.main(argv("extractor", data_dir, output_dir, runs_dir)) == 0
    assert third.runs == []  # a finished experiment trains nothing


def test_the_summary_comparisons_are_the_paired_test_and_the_clip_bootstrap(
        data_dir, runs_dirs, tmp_path):
    name = "multiscale"
    output_dir = str(tmp_path / name)
    runs_dir = runs_dir_for(name, runs_dirs)
    assert experiment.main(argv(name, data_dir, output_dir, runs_dir)) == 0
    settings = settings_of(name, output_dir, runs_dir, data_dir)
    cells = resolve_cells(settings)
    built = report.build_report(settings, cells)
    reference, other = cells[0][0], cells[1][0]
    rows = read_csv(os.path.join(output_dir, report.RESULTS_FILE))
    for metric in ("Has0_acc_2", "MAE", "Corr"):
        per_seed = {c.key: [float(r[f"test_{metric}"]) for r in sorted(
            (r for r in rows if r["cell_key"] == c.key), key=lambda r: int(r["seed"]))]
            for c in (reference, other)}
        result = built["comparisons"][f"{other.key}|clean|{metric}"]
        differences = np.subtract(per_seed[other.key], per_seed[reference.key])
        assert result["test"]["mean_difference"] == pytest.approx(differences.mean())
        if np.ptp(differences) > 1e-9:
            direct = stats.ttest_rel(per_seed[other.key], per_seed[reference.key])
            assert result["test"]["p_value"] == pytest.approx(direct.pvalue)
        # The bootstrap over the runs' own test predictions, recomputed directly.
        predictions = {}
        for c in (reference, other):
            stacked = []
            for seed in SEEDS:
                path = os.path.join(settings.run_dir(c, seed), "predictions", "test.csv")
                records = sorted(read_csv(path), key=lambda r: r["id"])
                labels = np.array([float(r["label"]) for r in records])
                stacked.append([float(r["fused"]) for r in records])
            predictions[c.key] = np.array(stacked)
        direct = significance.bootstrap_difference(
            labels, predictions[reference.key], predictions[other.key], metric, "mosi",
            n_resamples=200, seed=0)
        assert result["interval"]["low"] == pytest.approx(direct["low"])
        assert result["interval"]["high"] == pytest.approx(direct["high"])


def test_a_base_setting_that_would_change_the_reference_is_refused(data_dir, tmp_path,
                                                                    capsys):
    args = argv("extractor", data_dir, str(tmp_path / "e"), str(tmp_path / "r"))
    code = experiment.main(args + ["--set", 'extractor="gru"'])
    assert code == 2
    assert "extractor" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r")


def test_settings_name_the_selected_cells(data_dir, tmp_path):
    settings = settings_of("fusion", str(tmp_path / "f"), str(tmp_path / "r"), data_dir)
    assert isinstance(settings, ExperimentSettings)
    assert [c.label for c, _ in resolve_cells(settings)] == ["auto key", "Early"]
