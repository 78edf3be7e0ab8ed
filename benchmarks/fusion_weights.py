"""Does a learned fusion weight each clip differently? Per-clip weights, clean and swapped.

    python benchmarks/fusion_weights.py \
        --group "softmax gate=RUNS/synthetic-sims-hard/softmax_gate/seed_*" \
        [--group ...] [--output benchmarks/results/fusion_weights.json]

For finished runs trained with `fusion_gate="softmax"` (the weight of each part of X_f)
or `fusion="multi_key"` (the weight of each modality as the key), this reads the
fusion's per-clip weights (`M3SAModel.fusion_weights`) on the test split, clean and
with one modality swapped for another clip's (the corruption of
`benchmarks/gating_check.py`, same donors), and reports per run and modality:

- ``mean`` and ``sd``: the weight's mean and its spread across the clean test clips
  (a spread near 0 means one fixed weighting for every clip);
- ``moved[m]``: the mean |weight(m swapped) − weight(clean)| over the clips — how much
  the weights react when modality m stops agreeing with the rest of its clip;
- ``shifted[m]``: the mean signed change weight(m swapped) − weight(clean).

A fusion that gates per clip turns a swapped modality down: its own weight's
``shifted`` is clearly negative. Weights that move per clip by about their spread
across clips, with ``shifted`` near 0, only react to a different input, the way they
react to any other clip.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from gating_check import parse_group  # noqa: E402
from msa_core.io import write_json_atomic  # noqa: E402
from train_step import machine_info  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "fusion_weights.json")


def collect(model, dataset, condition) -> Dict[str, np.ndarray]:
    """{modality: weights of every clip of `dataset` under `condition`}."""
    from pipelines.experiments import perturbations

    parts: Dict[str, List[np.ndarray]] = {}
    for features, _ in perturbations.perturb_dataset(dataset, condition, seed=0):
        for m, w in model.fusion_weights(features).items():
            parts.setdefault(m, []).append(np.asarray(w, np.float64))
    return {m: np.concatenate(v) for m, v in parts.items()}


def weight_record(weights: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, dict]:
    """The per-run record from {condition: {modality: [N] weights}} ("clean" first)."""
    clean = weights["clean"]
    out = {m: {"mean": float(np.mean(w)), "sd": float(np.std(w)), "moved": {},
               "shifted": {}} for m, w in clean.items()}
    for condition, by_modality in weights.items():
        if condition == "clean":
            continue
        swapped = condition.split(":", 1)[1]
        for m, w in by_modality.items():
            if w.shape != clean[m].shape:
                raise ValueError(f"{condition}: {w.shape[0]} clips, {clean[m].shape[0]} clean")
            out[m]["moved"][swapped] = float(np.mean(np.abs(w - clean[m])))
            out[m]["shifted"][swapped] = float(np.mean(w - clean[m]))
    return out


def check_run(run_dir: str, data_dir=None) -> Dict[str, dict]:
    import keras

    from m3sa_tf import M3SAConfig
    from pipelines import run_dir as rundir
    from pipelines.protocol import load_data

    with open(os.path.join(run_dir, rundir.METRICS_FILE)) as handle:
        metrics = json.load(handle)
    with open(os.path.join(run_dir, rundir.CONFIG_FILE)) as handle:
        config = M3SAConfig.from_dict(json.load(handle))
    if config.fusion_gate != "softmax" and config.fusion != "multi_key":
        raise SystemExit(f"{run_dir}: fusion={config.fusion!r}, fusion_gate="
                         f"{config.fusion_gate!r} has no per-clip weights (needs "
                         f"fusion_gate='softmax' or fusion='multi_key')")
    model = keras.saving.load_model(os.path.join(run_dir, rundir.MODEL_FILE))
    sets, _ = load_data(config, data_dir, scale=metrics["scale"],
                        data_seed=metrics["data_seed"], keep_ids=True, shuffle=False,
                        splits=("test",))
    conditions = ["clean"] + [f"corrupted:{m}" for m in config.modalities]
    return weight_record({c: collect(model, sets["test"], c) for c in conditions})


def summarise(per_run: List[Dict[str, dict]]) -> Dict[str, dict]:
    out = {}
    for m in per_run[0]:
        out[m] = {"mean": float(np.mean([r[m]["mean"] for r in per_run])),
                  "sd": float(np.mean([r[m]["sd"] for r in per_run])),
                  **{key: {s: float(np.mean([r[m][key][s] for r in per_run]))
                           for s in per_run[0][m][key]} for key in ("moved", "shifted")}}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", action="append", required=True, type=parse_group,
                        help="NAME=GLOB of finished run directories (repeatable)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    groups = {}
    for name, runs in args.group:
        per_run = [check_run(run, args.data_dir) for run in runs]
        groups[name] = {"runs": runs, "per_run": per_run, "summary": summarise(per_run)}
        for m, row in groups[name]["summary"].items():
            moved = ", ".join(f"{s} swapped {v:.4f} ({row['shifted'][s]:+.4f})"
                              for s, v in row["moved"].items())
            print(f"{name} ({len(runs)} runs) {m}: mean {row['mean']:.3f}, sd across "
                  f"clips {row['sd']:.4f}; mean |change| (signed): {moved}", flush=True)
    write_json_atomic(args.output, {
        "benchmark": "fusion_weights",
        "command": "python benchmarks/fusion_weights.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "split": "test", "donor_seed": 0, "groups": groups,
        "machine": machine_info(),
    })
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
