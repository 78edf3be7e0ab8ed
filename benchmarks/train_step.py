"""Speed of one M³SA training step (forward + backward + AdamW update) at the real shapes.

    python benchmarks/train_step.py [--dataset mosi [sims ...]] [--batch-size 64]
        [--steps 20] [--warmup 3] [--n-scales 5] [--channel-ratio 4] [--seed 0]
        [--output benchmarks/results/train_step.json]

For each dataset the model is `M3SAConfig.for_dataset(dataset, n_scales=n,
channel_ratio=r)` (the paper's n = 5, r = 4 by default) built for the dataset's real
feature widths, and compiled as training compiles it (`pipelines.training.
compile_model`: AdamW, the model's own loss, eq. 25 or eqs 26–27). One random batch at
the dataset's full padded shapes (MOSI: text 50×768, audio 375×5, vision 500×20; with
valid lengths drawn from the seed) stays in memory, so only the step is timed: each
`train_on_batch` call separately, after `--warmup` untimed calls (the first traces the
graph). Reported: the median step time and samples/s = batch size / median step, the
trainable and total parameter counts, and the machine, with its load average before and
after (the figures are only as quiet as the machine was).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

DATASETS = ("mosi", "sims", "mosei")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                              "train_step.json")


def synthetic_batch(spec, batch_size: int, seed: int):
    """Random features at the spec's padded shapes and labels in its label range.

    Valid lengths are uniform in [1, T]; past them the sequences are zero, as in the data.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    features = {}
    for m, steps in spec.max_lengths.items():
        lengths = rng.integers(1, steps + 1, size=batch_size).astype("int32")
        values = rng.normal(size=(batch_size, steps, spec.feature_dims[m])).astype("float32")
        values *= np.arange(steps)[None, :, None] < lengths[:, None, None]
        features[m] = values
        features[f"{m}_length"] = lengths
    lo, hi = spec.label_range
    label_names = ("fused", "text", "audio", "vision") if spec.has_unimodal_labels else (
        "fused",)
    labels = {k: rng.uniform(lo, hi, size=batch_size).astype("float32") for k in label_names}
    return features, labels


def parameter_counts(model) -> dict:
    import numpy as np

    def count(variables):
        return int(sum(int(np.prod(v.shape)) for v in variables))

    return {"trainable": count(model.trainable_weights), "total": count(model.weights)}


def benchmark_dataset(dataset: str, batch_size: int, steps: int, warmup: int,
                      n_scales: int, channel_ratio: int, seed: int) -> dict:
    """Builds, compiles and times the model for one dataset; returns its JSON record."""
    import keras
    import tensorflow as tf

    from m3sa_tf import M3SAConfig
    from m3sa_tf.models import build_model
    from pipelines.training import compile_model
    from tfrecords.specs import spec_for

    spec = spec_for(dataset)
    config = M3SAConfig.for_dataset(dataset, n_scales=n_scales, channel_ratio=channel_ratio,
                                    batch_size=batch_size)
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, dict(spec.feature_dims), spec.has_unimodal_labels)
    compile_model(model, config)
    features, labels = synthetic_batch(spec, batch_size, seed)
    # Tensors up front, so no step pays for a NumPy-to-tensor copy.
    features = {k: tf.constant(v) for k, v in features.items()}
    labels = {k: tf.constant(v) for k, v in labels.items()}

    start = time.perf_counter()
    model.train_on_batch(features, labels)
    first_step_s = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        model.train_on_batch(features, labels)
    step_seconds, losses = [], []
    for _ in range(steps):
        start = time.perf_counter()
        loss = model.train_on_batch(features, labels)
        step_seconds.append(time.perf_counter() - start)
        losses.append(float(loss if not isinstance(loss, (list, tuple)) else loss[0]))
    if not all(map(lambda x: x == x and abs(x) != float("inf"), losses)):
        raise FloatingPointError(f"{dataset}: the training loss became non-finite: {losses}")

    median_s = statistics.median(step_seconds)
    return {
        "dataset": dataset,
        "shapes": {m: [spec.max_lengths[m], spec.feature_dims[m]] for m in spec.max_lengths},
        "batch_size": batch_size,
        "task": model.task,
        "n_scales": config.n_scales,
        "channel_ratio": config.channel_ratio,
        "parameters": parameter_counts(model),
        "warmup_steps": warmup,
        "timed_steps": steps,
        "first_step_seconds_with_tracing": first_step_s,
        "step_ms_median": 1000.0 * median_s,
        "step_ms_min": 1000.0 * min(step_seconds),
        "step_ms_max": 1000.0 * max(step_seconds),
        "step_ms_all": [1000.0 * s for s in step_seconds],
        "samples_per_s": batch_size / median_s,
        "final_loss": losses[-1],
        "config": config.to_dict(),
    }


def machine_info() -> dict:
    import keras
    import tensorflow as tf

    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable_cpus = os.cpu_count()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", choices=DATASETS, default=["mosi"],
                        help="real-data shapes to time (several: one record each)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=positive_int, default=3,
                        help="untimed steps first (the first one traces the graph)")
    parser.add_argument("--n-scales", type=positive_int, default=5)
    parser.add_argument("--channel-ratio", type=positive_int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random batch")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    from msa_core.io import write_json_atomic

    # Fail before minutes of timing, not after them.
    out_dir = os.path.dirname(os.path.abspath(args.output))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create the output directory {out_dir}: {err}", file=sys.stderr)
        return 2
    if not os.access(out_dir, os.W_OK):
        print(f"error: the output directory {out_dir} is not writable", file=sys.stderr)
        return 2

    load_before = os.getloadavg()
    records = []
    for dataset in args.dataset:
        record = benchmark_dataset(dataset, args.batch_size, args.steps, args.warmup,
                                   args.n_scales, args.channel_ratio, args.seed)
        records.append(record)
        print(f"{dataset}: {record['samples_per_s']:.1f} samples/s, "
              f"{record['step_ms_median']:.0f} ms/step (median of {args.steps}), "
              f"{record['parameters']['trainable']} trainable / "
              f"{record['parameters']['total']} parameters")
    result = {
        "benchmark": "train_step",
        "command": "python benchmarks/train_step.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "results": records,
        "machine": machine_info(),
        "load_average_1_5_15min": {"before": list(load_before), "after": list(os.getloadavg())},
        "note": "forward + backward + AdamW update of one cached batch (train_on_batch); "
                "a load average above the CPU count means other jobs shared the CPU, and "
                "the figures are then pessimistic.",
    }
    write_json_atomic(args.output, result)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
