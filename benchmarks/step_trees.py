"""`benchmarks/train_step.py` in two source trees, alternating rounds, medians.

    python benchmarks/step_trees.py --tree before=/tmp/m3sa-before --tree after=. \
        [--dataset mosi sims] [--widths 64] [--rounds 3] \
        [--output benchmarks/results/step_trees.json]

Each round runs `python benchmarks/train_step.py` once per tree (who goes first
alternates), each in a fresh process in its tree's root with that tree's code, so that a
slow spell of a shared virtual machine (they drift 2–3× between days, and by tens of
per cent within minutes) touches both trees alike. Recorded per tree and dataset: the
samples/s and first-step seconds of every round, their medians, and the ratio of the
medians to the first tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from full_run import parse_tree  # noqa: E402
from msa_core.io import write_json_atomic  # noqa: E402
from train_step import machine_info  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "step_trees.json")


def run_tree(path, datasets, widths, scratch):
    output = os.path.join(scratch, "step.json")
    command = [sys.executable, "benchmarks/train_step.py", "--dataset", *datasets,
               "--output", output]
    if widths:
        command += ["--widths", str(widths)]
    env = dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, cwd=path, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {path}:\n{done.stderr[-3000:]}")
    with open(output) as f:
        return {r["dataset"]: r for r in json.load(f)["results"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=parse_tree, action="append", required=True,
                        help="LABEL=PATH of a checkout of this repository (2 or more)")
    parser.add_argument("--dataset", nargs="+", default=["mosi", "sims"])
    parser.add_argument("--widths", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    if len(args.tree) < 2:
        parser.error("give at least two --tree")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")

    load_before = os.getloadavg()
    rounds = {label: [] for label, _ in args.tree}
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.rounds):
            order = args.tree if index % 2 == 0 else list(reversed(args.tree))
            for label, path in order:
                result = run_tree(path, args.dataset, args.widths, scratch)
                rounds[label].append({d: {"samples_per_s": r["samples_per_s"],
                                          "first_step_seconds": r["first_step_seconds_with_tracing"]}
                                      for d, r in result.items()})
                print(f"round {index + 1}: {label} " + ", ".join(
                    f"{d} {r['samples_per_s']:.1f} samples/s" for d, r in result.items()),
                    flush=True)
    first = args.tree[0][0]
    summary = {}
    for label, _ in args.tree:
        summary[label] = {}
        for dataset in args.dataset:
            speed = statistics.median(r[dataset]["samples_per_s"] for r in rounds[label])
            first_step = statistics.median(r[dataset]["first_step_seconds"]
                                           for r in rounds[label])
            base = statistics.median(r[dataset]["samples_per_s"] for r in rounds[first])
            summary[label][dataset] = {"median_samples_per_s": speed,
                                       "median_first_step_seconds": first_step,
                                       f"speed_over_{first}": speed / base}
    report = {
        "benchmark": "step_trees",
        "command": "python benchmarks/step_trees.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "trees": {label: path for label, path in args.tree},
        "datasets": args.dataset,
        "widths": args.widths,
        "rounds": rounds,
        "summary": summary,
        "machine": machine_info(),
        "load_average_1_5_15min": {"before": list(load_before),
                                   "after": list(os.getloadavg())},
        "note": "train_step.py (forward + backward + optimizer update of one cached batch at "
                "the real padded shapes, batch 64, n = 5, r = 4) per tree in fresh "
                "processes, alternating; medians over rounds.",
    }
    write_json_atomic(args.output, report)
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
