"""Validation and test metrics of finished `pipelines.train` runs, side by side.

    python benchmarks/compare_runs.py NAME=RUN_DIR [NAME=RUN_DIR ...] [--search TUNE_DIR]
        [--output benchmarks/results/compare.json]

Reads each run's `metrics.json` (the contract of `pipelines.train`) and prints one table
per split with the Bayes reference of synthetic data as the last column. With `--search`,
the summary and trial table of a `tuning.search` output directory are stored too, so one
JSON holds a search and the runs that check its result against the defaults.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from msa_core.io import read_csv, read_json, write_json_atomic  # noqa: E402

SCALARS = ("dataset", "key_modality", "best_epoch", "epochs_trained", "stopped_early",
           "wall_time_per_epoch_s", "seed")


def load_run(run_dir: str) -> dict:
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path} not found; expected a finished pipelines.train run")
    return read_json(path, error=SystemExit)


def metric_names(metrics: dict) -> list:
    return [k for k, v in metrics["test"].items() if isinstance(v, (int, float))]


def summarise(name: str, run_dir: str, metrics: dict) -> dict:
    numbers = metric_names(metrics)
    return {
        "run_dir": os.path.abspath(run_dir),
        **{key: metrics.get(key) for key in SCALARS},
        "validation": {k: metrics["validation"][k] for k in numbers if k in metrics["validation"]},
        "test": {k: metrics["test"][k] for k in numbers},
        "hyperparameters": metrics.get("hyperparameters"),
    }


def read_search(tune_dir: str) -> dict:
    summary = read_json(os.path.join(tune_dir, "summary.json"), error=SystemExit)
    trials = read_csv(os.path.join(tune_dir, "trials.csv"))
    return {"tune_dir": os.path.abspath(tune_dir), "summary": summary, "trials": trials}


def print_table(runs: dict, bayes: dict) -> None:
    names = list(runs)
    numbers = list(next(iter(runs.values()))["test"])
    width = max(14, *(len(n) + 2 for n in names))
    for split in ("validation", "test"):
        print(f"\n{split}")
        print(f"{'metric':<16}" + "".join(f"{n:>{width}}" for n in names)
              + (f"{'Bayes (test)':>{width}}" if bayes and split == "test" else ""))
        for metric in numbers:
            row = "".join(f"{runs[n][split].get(metric, float('nan')):>{width}.4f}"
                          for n in names)
            if bayes and split == "test" and metric in bayes:
                row += f"{bayes[metric]:>{width}.4f}"
            print(f"{metric:<16}" + row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("--search", default=None, help="a tuning.search output directory")
    parser.add_argument("--output", default=os.path.join(
        os.path.dirname(__file__), "results", "compare.json"))
    args = parser.parse_args(argv)
    runs, bayes = {}, None
    for item in args.runs:
        name, sep, run_dir = item.partition("=")
        if not sep or not name or not run_dir:
            parser.error(f"{item!r}: expected NAME=RUN_DIR")
        metrics = load_run(run_dir)
        runs[name] = summarise(name, run_dir, metrics)
        bayes = bayes or {k: v for k, v in (metrics.get("bayes_reference") or {}).items()
                          if isinstance(v, (int, float))}
    print_table(runs, bayes)
    result = {"benchmark": "compare_runs",
              "command": "python benchmarks/compare_runs.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "runs": runs, "bayes_reference_test": bayes}
    if args.search:
        result["search"] = read_search(args.search)
    write_json_atomic(args.output, result)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
