"""Throughput of the input pipeline (samples/s) on full-size synthetic-mosi, batch 64.

Builds synthetic-mosi (scale 1, seed 0) if needed, then for bucketing off and on: one
warm-up pass over "train", then `--passes` timed passes, each iterating every batch of
`load_dataset("synthetic-mosi", batch_size=64)` (shuffled, padded to the max lengths,
prefetching). Writes machine info, versions and the figures to
benchmarks/results/input_pipeline.json (atomically, through msa_core.io).

    python benchmarks/input_pipeline.py [--data-dir DIR] [--passes 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                       "input_pipeline.json")


def _machine():
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:
        pass
    return info


def _load_average():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _one_pass(dataset):
    start = time.perf_counter()
    samples = 0
    for features, _ in dataset:
        samples += int(features["text_length"].shape[0])
    return samples, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    load_at_start = _load_average()

    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from msa_core.io import default_data_dir, write_json_atomic
    from tfrecords import build_dataset, load_dataset

    data_dir = default_data_dir(args.data_dir)
    start = time.perf_counter()
    info = build_dataset("synthetic-mosi", data_dir, scale=1.0, seed=0,
                         log=lambda line: print(line, flush=True))
    build_or_open_s = time.perf_counter() - start
    results = {}
    for bucketing in (False, True):
        splits, _ = load_dataset("synthetic-mosi", data_dir, batch_size=args.batch_size,
                                 bucket_by_length=bucketing, splits=("train",))
        dataset = splits["train"]
        _one_pass(dataset)  # warm-up: file cache, tf.function tracing
        rates, seconds = [], []
        for _ in range(args.passes):
            samples, elapsed = _one_pass(dataset)
            rates.append(samples / elapsed)
            seconds.append(elapsed)
        key = "bucketing_on" if bucketing else "bucketing_off"
        results[key] = {
            "samples_per_pass": samples,
            "seconds_per_pass": [round(s, 3) for s in seconds],
            "samples_per_second": [round(r, 1) for r in rates],
            "median_samples_per_second": round(statistics.median(rates), 1),
        }
        print(f"{key}: median {results[key]['median_samples_per_second']} samples/s "
              f"over {args.passes} passes of {samples} samples", flush=True)
    payload = {
        "benchmark": "input_pipeline",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "command": "python benchmarks/input_pipeline.py " + " ".join(argv or sys.argv[1:]),
        "dataset": "synthetic-mosi", "scale": 1.0, "seed": 0,
        "split": "train", "split_size": info.split_sizes["train"],
        "batch_size": args.batch_size, "passes": args.passes,
        "pipeline": "load_dataset defaults: shuffle (seeded), pad to max lengths, "
                    "deterministic, prefetch AUTOTUNE",
        "build_or_open_seconds": round(build_or_open_s, 1),
        "results": results,
        "machine": _machine(),
        "versions": {"tensorflow": tf.__version__, "tensorflow_datasets": tfds.__version__,
                     "numpy": np.__version__},
        "note": "A load average above cpu_count means other jobs shared the CPU while "
                "this was measured: the figures are then pessimistic.",
    }
    payload["machine"]["load_average_at_start"] = load_at_start
    payload["machine"]["load_average_at_end"] = _load_average()
    write_json_atomic(args.output, payload)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
