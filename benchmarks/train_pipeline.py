"""Training throughput of the full pipeline (input + step) next to the step alone.

    python benchmarks/train_pipeline.py [--dataset synthetic-mosi] [--scale 1.0]
        [--data-dir DIR] [--epochs 3] [--steps 20] [--output benchmarks/results/train_pipeline.json]

Both figures use the same compiled model (`M3SAConfig.for_dataset(dataset)`, the default
configuration, batch 64) and Keras `fit`, so they differ only in where batches come from:

- pipeline: the training split read from the TFRecords by `tfrecords.load_dataset`
  (parse, shuffle, pad, batch, prefetch), as `pipelines.train` reads it;
- step only: one batch of that split, cached in memory and repeated
  (`tf.data.Dataset.from_tensors(batch).repeat(steps)`).

Each is timed over whole epochs after one untimed epoch that traces the graphs, and the
timed epochs alternate (pipeline, step only, pipeline, ...) so that a slow spell of a
shared machine hits both figures alike. Besides wall time, each epoch records the
process's CPU time: work the input pipeline adds shows there even when the wall clock is
noisy. If the pipeline's samples/s is well below the step-only figure, input stalls the
training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


class EpochTimer:
    """Wall and CPU time of each epoch (a Keras callback, built lazily to import Keras late)."""

    @staticmethod
    def make():
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []
                self.cpu_seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()
                self._cpu_start = time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)
                self.cpu_seconds.append(time.process_time() - self._cpu_start)

        return _Timer()


def run_epoch(model, dataset):
    """One `fit` epoch; returns (wall seconds, process CPU seconds)."""
    timer = EpochTimer.make()
    model.fit(dataset, epochs=1, verbose=0, callbacks=[timer])
    return timer.seconds[0], timer.cpu_seconds[0]


def summarise(epochs, samples_per_epoch: int, first_epoch) -> dict:
    walls = [wall for wall, _ in epochs]
    cpus = [cpu for _, cpu in epochs]
    median_wall = statistics.median(walls)
    return {
        "samples_per_s": samples_per_epoch / median_wall,
        "samples_per_s_each_epoch": [samples_per_epoch / wall for wall in walls],
        "epoch_seconds": walls,
        "epoch_cpu_seconds": cpus,
        "median_epoch_seconds": median_wall,
        "median_epoch_cpu_seconds": statistics.median(cpus),
        "first_epoch_seconds_with_tracing": first_epoch[0],
        "samples_per_epoch": samples_per_epoch,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic-mosi")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=3,
                        help="timed epochs per figure (alternating; medians reported)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per step-only epoch (default: as many as the pipeline's)")
    parser.add_argument("--output", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results", "train_pipeline.json"))
    args = parser.parse_args(argv)

    import tensorflow as tf
    import keras

    from m3sa_tf import M3SAConfig
    from pipelines import training
    from msa_core.io import default_data_dir, write_json_atomic

    load_at_start = list(os.getloadavg())
    config = M3SAConfig.for_dataset(args.dataset)
    datasets, info = training.load_data(
        config, default_data_dir(args.data_dir), scale=args.scale,
        splits=("train",),
    )
    train = datasets["train"]
    samples = info.split_sizes["train"]
    steps = args.steps or -(-samples // config.batch_size)
    model = training.build_compiled_model(config, info, key_modality=None)

    batch = next(iter(train))
    cached = tf.data.Dataset.from_tensors(batch).repeat(steps)
    first = {"pipeline": run_epoch(model, train), "step_only": run_epoch(model, cached)}
    timed = {"pipeline": [], "step_only": []}
    for round_index in range(args.epochs):
        timed["pipeline"].append(run_epoch(model, train))
        timed["step_only"].append(run_epoch(model, cached))
        print(f"round {round_index + 1}/{args.epochs}: pipeline "
              f"{timed['pipeline'][-1][0]:.1f} s, step only {timed['step_only'][-1][0]:.1f} s")
    pipeline = summarise(timed["pipeline"], samples, first["pipeline"])
    step_only = summarise(timed["step_only"], steps * config.batch_size, first["step_only"])

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
        "pipeline_cpu_over_step_only_cpu": (pipeline["median_epoch_cpu_seconds"]
                                            / pipeline["samples_per_epoch"])
        / (step_only["median_epoch_cpu_seconds"] / step_only["samples_per_epoch"]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
        },
        "note": "Compare the two figures with each other (medians over alternating "
                "epochs); a load average above cpu_count means other jobs shared the CPU "
                "and both are then pessimistic. CPU seconds per sample compare the work "
                "done, whatever the wall clock's noise.",
    }
    write_json_atomic(args.output, result)
    print(json.dumps({k: result[k] for k in ("dataset", "batch_size", "pipeline_over_step_only")}))
    for name, figures in (("pipeline ", pipeline), ("step only", step_only)):
        print(f"{name} {figures['samples_per_s']:.1f} samples/s (median epoch "
              f"{figures['median_epoch_seconds']:.1f} s wall, "
              f"{figures['median_epoch_cpu_seconds']:.1f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
