"""Training throughput and padding of each way of batching (`M3SAConfig.batching`).

    python benchmarks/batching.py [--dataset synthetic-mosi] [--scale 1.0] [--data-dir DIR]
        [--epochs 2] [--output benchmarks/results/batching.json]

For "max_length" (shuffled batches padded to the dataset's maxima), "longest" (shuffled
batches padded to their longest clip) and "bucketed" (the default: clips of similar
length together, padded to their longest), on the training split read from the
TFRecords as `pipelines.train` reads it:

- padding: per modality, the share of the time steps in the batches that are padding
  (`fed`: what the input pipeline hands over), and the share among the steps the
  multi-scale blocks compute (`computed`: they run up to each batch's longest clip);
- throughput: samples/s of Keras `fit` epochs of one compiled default model, timed
  alternately (max_length, longest, bucketed, max_length, ...) after one untimed epoch
  per mode that traces its graph, medians reported.

The synthetic data's lengths follow real MOSI (audio about 214 of 375 steps, vision
286 of 500 on average; `tfrecords/synthetic.py`). A load average above the CPU count
means other jobs shared the CPU: compare the modes with each other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from train_step import machine_info  # noqa: E402

MODES = ("max_length", "longest", "bucketed")
RESULTS = os.path.join(os.path.dirname(__file__), "results", "batching.json")


def padding_fractions(dataset, modalities):
    """{modality: {"fed", "computed", "mean_padded_length"}} over one pass of `dataset`,
    and the batch count."""
    valid = {m: 0 for m in modalities}
    fed = {m: 0 for m in modalities}
    computed = {m: 0 for m in modalities}
    padded_lengths = {m: 0 for m in modalities}
    batches = 0
    for features, _ in dataset:
        batches += 1
        for m in modalities:
            lengths = features[f"{m}_length"].numpy()
            steps = int(features[m].shape[1])
            valid[m] += int(lengths.sum())
            fed[m] += lengths.size * steps
            computed[m] += lengths.size * max(int(lengths.max()), 1)
            padded_lengths[m] += steps
    out = {m: {"fed": 1.0 - valid[m] / max(fed[m], 1),
               "computed": 1.0 - valid[m] / max(computed[m], 1),
               "mean_padded_length": round(padded_lengths[m] / max(batches, 1), 1)}
           for m in modalities}
    return out, batches


def timed_epoch(model, dataset):
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic-mosi")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per mode")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")

    from m3sa_tf import M3SAConfig
    from msa_core.io import default_data_dir, write_json_atomic
    from pipelines import training

    load_before = os.getloadavg()
    base = M3SAConfig.for_dataset(args.dataset)
    data_dir = default_data_dir(args.data_dir)
    sets, padding, info = {}, {}, None
    for mode in MODES:
        datasets, info = training.load_data(base.replace(batching=mode), data_dir,
                                            scale=args.scale, splits=("train",))
        sets[mode] = datasets["train"]
        padding[mode], _ = padding_fractions(sets[mode], ("text", "audio", "vision"))
        print(f"{mode}: padding fed / computed " + ", ".join(
            f"{m} {p['fed']:.2f}/{p['computed']:.2f}" for m, p in padding[mode].items()),
            flush=True)
    samples = info.split_sizes["train"]
    model = training.build_compiled_model(base, info, key_modality=None)
    first = {mode: timed_epoch(model, sets[mode]) for mode in MODES}
    seconds = {mode: [] for mode in MODES}
    for round_index in range(args.epochs):
        for mode in MODES:
            seconds[mode].append(timed_epoch(model, sets[mode]))
        print(f"round {round_index + 1}/{args.epochs}: " + ", ".join(
            f"{mode} {seconds[mode][-1]:.1f} s" for mode in MODES), flush=True)
    modes = {}
    for mode in MODES:
        median = statistics.median(seconds[mode])
        modes[mode] = {
            "samples_per_s": samples / median,
            "median_epoch_seconds": median,
            "epoch_seconds": seconds[mode],
            "first_epoch_seconds_with_tracing": first[mode],
            "padding": padding[mode],
        }
    report = {
        "benchmark": "batching",
        "command": "python benchmarks/batching.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "dataset": args.dataset,
        "scale": args.scale,
        "train_samples": samples,
        "batch_size": base.batch_size,
        "max_lengths": dict(info.max_lengths),
        "modes": modes,
        "bucketed_over_max_length": (modes["bucketed"]["samples_per_s"]
                                     / modes["max_length"]["samples_per_s"]),
        "machine": machine_info(),
        "load_average_1_5_15min": {"before": list(load_before),
                                   "after": list(os.getloadavg())},
        "note": "samples/s of fit epochs on the training split (one compiled default "
                "model, modes alternating, medians); padding 'fed' is what the batches "
                "carry, 'computed' what the multi-scale blocks run over (up to each "
                "batch's longest clip).",
    }
    write_json_atomic(args.output, report)
    for mode in MODES:
        print(f"{mode}: {modes[mode]['samples_per_s']:.1f} samples/s "
              f"(median epoch {modes[mode]['median_epoch_seconds']:.1f} s)")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
