"""Wall time of whole default training runs, one source tree against another.

    python benchmarks/full_run.py --runs-dir /tmp/full-runs \
        [--tree after=. --tree before=/tmp/m3sa-before] [--dataset synthetic-mosi] \
        [--scale 1.0] [--seeds 1111] [--set KEY=VALUE ...] [--rounds 1] \
        [--output benchmarks/results/full_run.json]

Each run is `python -m pipelines.train --dataset D --seeds S --output-dir DIR` started as
a fresh process in the tree's root, exactly as a user runs it, so a tree can be an older
checkout of this repository (`git worktree add /tmp/m3sa-before <commit>`) and the two
are measured in the same sitting, alternating tree by tree and seed by seed. Recorded per
run: the process's wall time, and from its metrics.json each phase's (key-modality
warm-up, main fit) time to first step (`first_step_seconds`, when the tree records it),
the first epoch (tracing included) and the median of the other epochs, the number of
epochs, the best epoch, and the validation and test metrics; and per tree the medians.
Run directories are kept (a second call with the same --runs-dir reuses finished runs
and their times: pass a fresh one to time again).

The padding fraction of the training batches (the share of recurrent steps spent on
padding) is reported by `benchmarks/train_pipeline.py --batching`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from msa_core.io import write_json_atomic  # noqa: E402
from train_step import machine_info  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "full_run.json")
REPORTED = ("Has0_acc_2", "Mult_acc_2", "MAE", "Corr")


def parse_tree(text: str):
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"--tree {text!r}: expected LABEL=PATH")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(os.path.join(path, "pipelines")):
        raise argparse.ArgumentTypeError(
            f"--tree {text!r}: {path} is not a checkout of this repository (no pipelines/)")
    return label, path


def phase_times(epoch_log, phase):
    """First-step, first-epoch and median later-epoch seconds of one phase's log."""
    records = [r for r in epoch_log if r.get("phase") == phase]
    if not records:
        return None
    seconds = [float(r["seconds"]) for r in records]
    later = seconds[1:]
    return {
        "epochs": len(records),
        "first_step_seconds": records[0].get("first_step_seconds"),
        "first_epoch_seconds": seconds[0],
        "median_later_epoch_seconds": statistics.median(later) if later else None,
        "total_epoch_seconds": sum(seconds),
    }


def run_once(tree, dataset, scale, seed, overrides, run_dir, data_dir, log):
    # pipelines.train writes each seed of --seeds to DIR/seed_<s>.
    metrics_file = os.path.join(run_dir, f"seed_{seed}", "metrics.json")
    timing_file = os.path.join(run_dir, "full_run_timing.json")
    if not os.path.exists(timing_file):
        command = [sys.executable, "-m", "pipelines.train", "--dataset", dataset,
                   "--scale", str(scale), "--seeds", str(seed), "--output-dir", run_dir,
                   "--quiet"]
        if data_dir:
            command += ["--data-dir", data_dir]
        if overrides:
            command += ["--set", *overrides]
        env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="2")
        start = time.perf_counter()
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"run failed ({' '.join(command)} in {tree}):\n"
                             f"{done.stderr[-3000:]}")
        write_json_atomic(timing_file, {"wall_seconds": wall, "command": command})
    with open(timing_file) as f:
        wall = json.load(f)["wall_seconds"]
    with open(metrics_file) as f:
        metrics = json.load(f)
    record = {
        "seed": seed,
        "wall_seconds": wall,
        "warmup": phase_times(metrics["epoch_log"], "warmup"),
        "main": phase_times(metrics["epoch_log"], "main"),
        "best_epoch": metrics.get("best_epoch"),
        "key_modality": metrics.get("key_modality"),
        "validation": {k: metrics["validation"][k] for k in REPORTED
                       if k in metrics["validation"]},
        "test": {k: metrics["test"][k] for k in REPORTED if k in metrics["test"]},
        "run_dir": run_dir,
    }
    log(f"  seed {seed}: {wall:.0f} s, "
        f"main first step {_fmt(record['main'], 'first_step_seconds')} s, "
        f"epoch {_fmt(record['main'], 'median_later_epoch_seconds')} s, "
        f"{record['main']['epochs']} epochs")
    return record


def _fmt(phase, key):
    value = (phase or {}).get(key)
    return "-" if value is None else f"{value:.1f}"


def summarize(records):
    def median(get):
        values = [v for v in (get(r) for r in records) if v is not None]
        return statistics.median(values) if values else None

    out = {"runs": len(records), "wall_seconds": median(lambda r: r["wall_seconds"])}
    for phase in ("warmup", "main"):
        out[phase] = {key: median(lambda r, k=key: (r[phase] or {}).get(k))
                      for key in ("first_step_seconds", "first_epoch_seconds",
                                  "median_later_epoch_seconds", "epochs")}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=parse_tree, action="append",
                        help="LABEL=PATH of a source tree to time (repeatable; default "
                             "this checkout as 'current')")
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--dataset", default="synthetic-mosi")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seeds", default="1111")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides passed to every run (pipelines.train --set)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--note", default="")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    trees = args.tree or [("current", os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                                   "..")))]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: expected comma-separated integers")

    load_before = os.getloadavg()
    results = {label: [] for label, _ in trees}
    for seed in seeds:
        # Alternate who goes first, seed by seed, so a slow spell hits both.
        order = trees if seed % 2 else list(reversed(trees))
        for label, path in order:
            run_dir = os.path.join(os.path.abspath(args.runs_dir), label, f"run_{seed}")
            print(f"[{label}] {args.dataset} seed {seed} in {path}", flush=True)
            results[label].append(run_once(path, args.dataset, args.scale, seed, args.set,
                                           run_dir, args.data_dir, print))
    report = {
        "benchmark": "full_run",
        "command": "python benchmarks/full_run.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "dataset": args.dataset,
        "scale": args.scale,
        "overrides": args.set,
        "trees": {label: path for label, path in trees},
        "runs": results,
        "summary": {label: summarize(records) for label, records in results.items()},
        "machine": machine_info(),
        "load_average_1_5_15min": {"before": list(load_before),
                                   "after": list(os.getloadavg())},
        "note": args.note or ("wall time of `python -m pipelines.train` in a fresh process; "
                              "epochs after the first are the steady state; compare trees "
                              "measured in the same sitting"),
    }
    write_json_atomic(args.output, report)
    for label, summary in report["summary"].items():
        print(f"{label}: {json.dumps(summary)}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
