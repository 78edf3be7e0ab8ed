"""Training throughput of the full pipeline (input + step) next to the step alone.

    python benchmarks/train_pipeline.py [--dataset synthetic-mosi] [--scale 1.0]
        [--data-dir DIR] [--epochs 2] [--steps 20] [--output benchmarks/results/train_pipeline.json]

Both figures use the same compiled model (`M3SAConfig.for_dataset(dataset)`, the default
configuration, batch 64) and Keras `fit`, so they differ only in where batches come from:

- pipeline: the training split read from the TFRecords by `tfrecords.load_dataset`
  (parse, shuffle, pad, batch, prefetch), as `pipelines.train` reads it;
- step only: one batch of that split, cached in memory and repeated
  (`tf.data.Dataset.from_tensors(batch).repeat(steps)`).

Each is timed over whole epochs after one untimed epoch that traces the graphs. If the
pipeline figure is well below the step-only one, input stalls the training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


class EpochTimer:
    """Wall time of each epoch (a Keras callback, built lazily to import Keras late)."""

    @staticmethod
    def make():
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return _Timer()


def measure(model, dataset, samples_per_epoch: int, epochs: int) -> dict:
    timer = EpochTimer.make()
    model.fit(dataset, epochs=epochs + 1, verbose=0, callbacks=[timer])
    timed = timer.seconds[1:]  # the first epoch also traces the step
    seconds = sum(timed)
    return {
        "samples_per_s": samples_per_epoch * len(timed) / seconds,
        "epoch_seconds": timed,
        "first_epoch_seconds_with_tracing": timer.seconds[0],
        "samples_per_epoch": samples_per_epoch,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic-mosi")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per figure")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per step-only epoch (default: as many as the pipeline's)")
    parser.add_argument("--output", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", "train_pipeline.json"))
    args = parser.parse_args(argv)

    import tensorflow as tf
    import keras

    from m3sa_tf import M3SAConfig
    from pipelines import training
    from pipelines.io_utils import write_json_atomic

    load_at_start = list(os.getloadavg())
    config = M3SAConfig.for_dataset(args.dataset)
    datasets, info = training.load_data(
        config, args.data_dir or training.default_data_dir(), scale=args.scale,
        splits=("train",),
    )
    train = datasets["train"]
    samples = info.split_sizes["train"]
    steps = args.steps or -(-samples // config.batch_size)
    model = training.build_compiled_model(config, info, key_modality=None)

    pipeline = measure(model, train, samples, args.epochs)
    batch = next(iter(train))
    cached = tf.data.Dataset.from_tensors(batch).repeat(steps)
    step_only = measure(model, cached, steps * config.batch_size, args.epochs)

    result = {
        "benchmark": "train_pipeline",
        "command": "python benchmarks/train_pipeline.py " + " ".join(argv or sys.argv[1:]),
        "dataset": args.dataset,
        "scale": args.scale,
        "batch_size": config.batch_size,
        "train_samples": samples,
        "config": config.to_dict(),
        "pipeline": pipeline,
        "step_only": step_only,
        "pipeline_over_step_only": pipeline["samples_per_s"] / step_only["samples_per_s"],
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
        },
        "note": "Compare the two figures with each other; a load average above cpu_count "
                "means other jobs shared the CPU and both are then pessimistic.",
    }
    write_json_atomic(args.output, result)
    print(json.dumps({k: result[k] for k in ("dataset", "batch_size", "pipeline_over_step_only")}))
    print(f"pipeline  {pipeline['samples_per_s']:.1f} samples/s")
    print(f"step only {step_only['samples_per_s']:.1f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
