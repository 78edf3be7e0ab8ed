"""Choosing the training defaults on validation: variants × seeds × datasets.

    python benchmarks/defaults_study.py --runs-dir /tmp/defaults-runs \
        [--dataset synthetic-mosi-hard synthetic-sims-hard] [--seeds 1111,1112,1113] \
        [--variant LABEL=k=v,k=v ...] [--scale 1.0] [--epochs N] \
        [--output benchmarks/results/defaults_study.json]

Every variant is a set of `--set`-style overrides applied over the dataset's defaults
(`M3SAConfig.for_dataset`); "default" is no override. Each (dataset, variant, seed) is
an ordinary `pipelines.train` run directory under `--runs-dir`, so a killed study resumes
and a finished run is never retrained. The JSON records, per dataset and variant, the
VALIDATION metrics of every seed with mean and std (what a default is chosen on), the
test metrics beside them (reported, never used to choose), the best epoch, epochs and
seconds, and which variant is best on validation by the dataset's headline metric
(`Has0_acc_2` for the MOSI family, `Mult_acc_2` for SIMS) with Corr as the tie-break.
A markdown table of the same is printed.

Without `--variant`, the study of docs/model.md §"How the defaults were chosen" runs:
the learning-rate schedule of the main fit, the readout, dropout, weight decay, and the
contrastive and subtask weights.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from m3sa_tf import ConfigError, M3SAConfig  # noqa: E402
from msa_core.io import write_json_atomic  # noqa: E402
from train_step import machine_info  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "defaults_study.json")
HEADLINE = {"mosi": "Has0_acc_2", "sims": "Mult_acc_2"}
REPORTED = ("acc2", "MAE", "Corr")
DEFAULT_VARIANTS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("default", ()),
    ("lr 1e-3", ("learning_rate=0.001",)),
    ("lr 3e-4", ("learning_rate=0.0003",)),
    ("readout attention", ("readout=attention",)),
    ("dropout 0.1", ("dropout=0.1",)),
    ("weight decay 0", ("weight_decay=0.0",)),
    ("no contrastive", ("contrastive_weights.text_audio=0", "contrastive_weights.text_vision=0",
                        "contrastive_weights.audio_vision=0")),
    ("key rule own label", ("key_modality_rule=own_label",)),
)


def parse_variant(text: str) -> Tuple[str, Tuple[str, ...]]:
    """"LABEL=k=v,k=v" → (LABEL, ("k=v", "k=v")); "LABEL" alone is the defaults."""
    label, _, rest = text.partition("=")
    if not label:
        raise SystemExit(f"--variant {text!r}: expected LABEL=key=value[,key=value...]")
    assignments = tuple(a for a in rest.split(";") if a) if ";" in rest else (
        tuple(a for a in rest.split(",") if a))
    return label, assignments


def _metric(values: Dict[str, float], family: str, name: str) -> float:
    key = HEADLINE[family] if name == "acc2" else name
    return float(values.get(key, float("nan")))


def _stats(values: Sequence[float]) -> Dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(np.mean(arr)), "std": float(np.std(arr, ddof=1)) if len(arr) > 1
            else 0.0, "n": int(len(arr))}


def run_study(datasets, variants, seeds, runs_dir, scale, epochs, data_dir, log=print):
    from pipelines import training

    results: Dict[str, dict] = {}
    configs = {}
    for dataset in datasets:  # every configuration error before anything trains
        for label, assignments in variants:
            try:
                configs[dataset, label] = M3SAConfig.from_overrides(
                    dataset, assignments=list(assignments), epochs=epochs)
            except ConfigError as err:
                raise SystemExit(f"variant {label!r} on {dataset}: {err}") from err
    total = len(configs) * len(seeds)
    done = 0
    for dataset in datasets:
        per_variant = {}
        for label, assignments in variants:
            config = configs[dataset, label]
            family = config.family
            same = [other for other, _ in variants
                    if other in per_variant and configs[dataset, other] == config]
            if same:
                # e.g. "lr 1e-3" on SIMS, whose default it already is: not trained twice.
                per_variant[label] = dict(per_variant[same[0]], same_as=same[0],
                                          assignments=list(assignments))
                log(f"{dataset} {label}: the same configuration as {same[0]!r}")
                continue
            rows = []
            for seed in seeds:
                run_dir = os.path.join(runs_dir, dataset, label.replace(" ", "_"),
                                       f"seed_{seed}")
                started = time.monotonic()
                metrics = training.train_and_evaluate(
                    config.replace(seed=seed), data_dir, run_dir, scale=scale, verbose=0)
                done += 1
                row = {
                    "seed": seed,
                    "valid": {n: _metric(metrics["validation"], family, n) for n in REPORTED},
                    "test": {n: _metric(metrics["test"], family, n) for n in REPORTED},
                    "valid_loss": float(metrics["validation"].get("loss", float("nan"))),
                    "key_modality": metrics.get("key_modality"),
                    "key_rankings": (metrics.get("key_modality_selection") or {}).get(
                        "rankings"),
                    "best_epoch": metrics.get("best_epoch"),
                    "epochs_trained": metrics.get("epochs_trained"),
                    "seconds_this_session": round(time.monotonic() - started, 1),
                    "run_dir": run_dir,
                }
                rows.append(row)
                log(f"[{done}/{total}] {dataset} {label} seed {seed}: valid "
                    f"acc2 {row['valid']['acc2']:.4f} Corr {row['valid']['Corr']:.4f} "
                    f"(best epoch {row['best_epoch']}, {row['seconds_this_session']:.0f} s)")
            per_variant[label] = {
                "assignments": list(assignments),
                "seeds": rows,
                "valid": {n: _stats([r["valid"][n] for r in rows]) for n in REPORTED},
                "test": {n: _stats([r["test"][n] for r in rows]) for n in REPORTED},
            }
        trained = [v for v in per_variant if "same_as" not in per_variant[v]]
        best = max(trained, key=lambda v: (per_variant[v]["valid"]["acc2"]["mean"],
                                               per_variant[v]["valid"]["Corr"]["mean"]))
        results[dataset] = {"variants": per_variant, "best_on_validation": best}
    return results


def markdown(results) -> str:
    lines = []
    for dataset, entry in results.items():
        lines += [f"### {dataset} (best on validation: {entry['best_on_validation']})", "",
                  "| variant | valid acc-2 | valid MAE | valid Corr | test acc-2 | test MAE "
                  "| test Corr | best epoch |", "|---|---|---|---|---|---|---|---|"]
        for label, v in entry["variants"].items():
            if "same_as" in v:
                lines.append(f"| {label} | = {v['same_as']} |||||||")
                continue
            cells = [f"{v[s][n]['mean']:.3f} ± {v[s][n]['std']:.3f}"
                     for s in ("valid", "test") for n in REPORTED]
            epochs = ",".join(str(r["best_epoch"]) for r in v["seeds"])
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {epochs} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", nargs="+",
                        default=["synthetic-mosi-hard", "synthetic-sims-hard"])
    parser.add_argument("--seeds", default="1111,1112,1113")
    parser.add_argument("--variant", action="append", type=parse_variant,
                        help="LABEL=k=v,k=v (repeatable; a value with commas: separate "
                             "the assignments with ';'); default: the built-in study")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers")
    variants = tuple(args.variant) if args.variant else DEFAULT_VARIANTS
    started = time.time()
    results = run_study(args.dataset, variants, seeds, args.runs_dir, args.scale,
                        args.epochs, args.data_dir)
    write_json_atomic(args.output, {
        "benchmark": "defaults_study",
        "command": "python benchmarks/defaults_study.py " + shlex.join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "scale": args.scale, "epochs_cap": args.epochs, "seeds": seeds,
        "wall_seconds": round(time.time() - started, 1),
        "results": results,
    })
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
