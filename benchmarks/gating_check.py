"""Does a trained model discount a clip's unreliable modality? Prediction shifts under
corruption, model against model.

    python benchmarks/gating_check.py --group "M3SA=RUNS/default/seed_*" \
        --group "equal fusion=RUNS/equal_fusion/seed_*" [--data-dir DATA] \
        [--output benchmarks/results/gating_check.json]

Each group is a set of finished `pipelines.train` run directories (a glob; typically one
per seed) of one model on one dataset. For each run its best model predicts the test
split clean and with each modality *corrupted* (replaced by another test clip's, the
`robustness` experiment's condition) and *missing*; recorded per modality:

- `shift`: mean |prediction(corrupted) − prediction(clean)| over the test clips;
- `relative_shift`: that divided by the standard deviation of the clean predictions, so
  that a model whose predictions span a wider range is not penalised for it;
- the headline accuracy (`Has0_acc_2` / `Mult_acc_2`) clean and under the condition.

On the hard synthetic family a modality is, clip by clip, present, absent or flipped; a
model that weighs each clip's modalities by how reliable they look moves less when one
of them is swapped for another clip's than a model that averages them with fixed
weights. Means ± std over each group's runs are written to the JSON and printed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import sys
import time
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from msa_core.io import write_json_atomic  # noqa: E402
from train_step import machine_info  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "gating_check.json")
HEADLINE = {"mosi": "Has0_acc_2", "sims": "Mult_acc_2"}


def check_run(run_dir: str, data_dir=None) -> Dict[str, Dict[str, float]]:
    import keras

    from m3sa_tf import M3SAConfig
    from pipelines import run_dir as rundir
    from pipelines.experiments import perturbations
    from pipelines.protocol import load_data

    with open(os.path.join(run_dir, rundir.METRICS_FILE)) as handle:
        metrics = json.load(handle)
    with open(os.path.join(run_dir, rundir.CONFIG_FILE)) as handle:
        config = M3SAConfig.from_dict(json.load(handle))
    model = keras.saving.load_model(os.path.join(run_dir, rundir.MODEL_FILE))
    eval_sets, info = load_data(config, data_dir, scale=metrics["scale"],
                                data_seed=metrics["data_seed"], keep_ids=True,
                                shuffle=False, splits=("test",))
    modalities = tuple(config.modalities)
    names = ["clean"] + [f"{kind}:{m}" for kind in ("corrupted", "missing")
                         for m in modalities]
    predictions: Dict[str, dict] = {}
    scores = perturbations.evaluate_conditions(
        model, eval_sets["test"], info.family, modalities, names, seed=0,
        predictions=predictions)
    clean = predictions["clean"]
    spread = float(np.std(clean["fused"])) or 1.0
    headline = HEADLINE[info.family]
    out = {"clean": {"accuracy": float(scores["clean"][headline])}}
    for name in names[1:]:
        other = predictions[name]
        if not np.array_equal(other["id"], clean["id"]):
            raise RuntimeError(f"{run_dir}: {name} predictions are not in the clean order")
        shift = float(np.mean(np.abs(other["fused"] - clean["fused"])))
        out[name] = {"shift": shift, "relative_shift": shift / spread,
                     "accuracy": float(scores[name][headline])}
    return out


def summarise(per_run: List[Dict[str, Dict[str, float]]]) -> Dict[str, Dict[str, dict]]:
    summary = {}
    for condition in per_run[0]:
        summary[condition] = {}
        for key in per_run[0][condition]:
            values = np.array([r[condition][key] for r in per_run])
            summary[condition][key] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "values": values.tolist()}
    return summary


def markdown(groups: Dict[str, dict]) -> str:
    conditions = [c for c in next(iter(groups.values()))["summary"] if c != "clean"]
    lines = ["| model | clean acc | " + " | ".join(
        f"{c} rel. shift (acc)" for c in conditions) + " |",
        "|---|---|" + "---|" * len(conditions)]
    for name, group in groups.items():
        s = group["summary"]
        cells = [f"{s[c]['relative_shift']['mean']:.3f} ± {s[c]['relative_shift']['std']:.3f}"
                 f" ({s[c]['accuracy']['mean']:.3f})" for c in conditions]
        lines.append(f"| {name} ({len(group['runs'])} runs) | "
                     f"{s['clean']['accuracy']['mean']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_group(text: str):
    name, sep, pattern = text.partition("=")
    if not sep or not name or not pattern:
        raise argparse.ArgumentTypeError(f"--group {text!r}: expected NAME=GLOB")
    runs = sorted(p for p in glob.glob(os.path.expanduser(pattern))
                  if os.path.isfile(os.path.join(p, "metrics.json")))
    if not runs:
        raise argparse.ArgumentTypeError(
            f"--group {text!r}: no finished run directory (with metrics.json) matches")
    return name, runs


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--group", action="append", type=parse_group, required=True,
                        help="NAME=GLOB of finished run directories (repeatable)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    started = time.time()
    groups = {}
    for name, runs in args.group:
        per_run = [check_run(r, args.data_dir) for r in runs]
        groups[name] = {"runs": runs, "per_run": per_run, "summary": summarise(per_run)}
        print(f"{name}: {len(runs)} runs checked", flush=True)
    write_json_atomic(args.output, {
        "benchmark": "gating_check",
        "command": "python benchmarks/gating_check.py " + shlex.join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "wall_seconds": round(time.time() - started, 1),
        "groups": groups,
    })
    print(markdown(groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
