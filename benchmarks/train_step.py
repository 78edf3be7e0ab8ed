"""Speed of one training step (forward + backward + AdamW update) at the real shapes.

    python benchmarks/train_step.py [--model m3sa | NAME ... | all]
        [--dataset mosi [sims ...]] [--batch-size 64] [--steps 20] [--warmup 3]
        [--n-scales 5] [--channel-ratio 4] [--widths D] [--seed 0]
        [--max-model-seconds S] [--output benchmarks/results/train_step.json]

`--model` names models of the zoo (`m3sa_tf.models.model_names()`; `all` = every one,
default m3sa). Each is built through the registry (`build_model`) with its own defaults
for the dataset's family (`M3SAConfig.for_dataset(dataset, model=NAME)`; for M³SA the
paper's n = 5, r = 4 unless `--n-scales`/`--channel-ratio` say otherwise, and its
default widths d_m unless `--widths D` sets every modality's d_m to D, e.g. 64 to
compare with a peer implementation at equal widths; the record names the d_m used) for
the dataset's real feature widths, and compiled as training compiles it
(`pipelines.protocol.compile_model`: AdamW with the model's learning rate, weight decay
and clipping, the model's own loss). A model that trains on unimodal labels (MLF-DNN,
MTFN) is timed at the shapes of the datasets that have them (SIMS) only. Every model
gets the same `--batch-size` (default 64) so that samples/s compare; the record also
names the model's own default batch size.

One random batch at the dataset's full padded shapes (MOSI: text 50×768, audio 375×5,
vision 500×20; valid lengths drawn from the seed) stays in memory, so only the step is
timed: each `train_on_batch` call separately, after `--warmup` untimed calls (the first
traces the graph). With `--max-model-seconds`, a model whose warm steps show that its
planned steps would take longer gets fewer timed steps (at least `--min-steps`) and no
further warm-up; its record says `steps_reduced`. Reported per model and dataset: the
median step time and samples/s = batch size / median step, the trainable and total
parameter counts, and the load average around it; for the run, the machine and its load
average before and after (the figures are only as quiet as the machine was).

Output: `--output`, by default benchmarks/results/train_step.json for `--model m3sa`
and benchmarks/results/train_step_zoo.json for any other selection, rewritten after
every model so that a long run leaves its finished records behind.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

DATASETS = ("mosi", "sims", "mosei")
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_OUTPUT = os.path.join(RESULTS_DIR, "train_step.json")
ZOO_OUTPUT = os.path.join(RESULTS_DIR, "train_step_zoo.json")


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


def model_config(model: str, dataset: str, batch_size: int, n_scales: int,
                 channel_ratio: int, widths: int = None):
    """The config a model trains with on `dataset` (its family's defaults), at the
    benchmark's batch size (None: the model's own); M³SA takes `n_scales`,
    `channel_ratio` and `widths` (None: the default d_m; else every modality's d_m)."""
    from m3sa_tf import M3SAConfig

    overrides = {"model": model}
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    if model == "m3sa":
        overrides.update(n_scales=n_scales, channel_ratio=channel_ratio)
        if widths is not None:
            modalities = M3SAConfig.for_dataset(dataset).modalities
            overrides["hidden_sizes"] = {m: int(widths) for m in modalities}
    return M3SAConfig.for_dataset(dataset, **overrides)


def plan_runs(models, datasets):
    """([(model, dataset)] to time, [skipped {model, dataset, reason}]): a model that
    needs unimodal labels runs on the requested datasets that have them, else on SIMS."""
    from m3sa_tf.models import get_spec
    from tfrecords.specs import spec_for

    runs, skipped = [], []
    for name in models:
        chosen = list(datasets)
        if get_spec(name).needs_unimodal_labels:
            chosen = [d for d in datasets if spec_for(d).has_unimodal_labels] or ["sims"]
            skipped.extend(
                {"model": name, "dataset": d,
                 "reason": "trains on unimodal labels, which this dataset lacks"}
                for d in datasets if d not in chosen)
        runs.extend((name, d) for d in chosen)
    return runs, skipped


def _loss_value(logs) -> float:
    return float(logs if not isinstance(logs, (list, tuple)) else logs[0])


def benchmark_model(model_name: str, dataset: str, batch_size: int, steps: int,
                    warmup: int, n_scales: int, channel_ratio: int, seed: int,
                    max_model_seconds: float = None, min_steps: int = 3,
                    widths: int = None, batch=None) -> dict:
    """Builds, compiles and times one model at one dataset's shapes; its JSON record.

    `widths` sets every modality's d_m (M³SA only); `batch` = (features, labels) of
    NumPy arrays replaces the random batch drawn from `seed` (a peer benchmark passes
    the batch both implementations train on)."""
    import keras
    import tensorflow as tf

    from m3sa_tf.models import build_model, get_spec
    from pipelines.protocol import compile_model
    from tfrecords.specs import spec_for

    load_before = os.getloadavg()
    spec = spec_for(dataset)
    model_spec = get_spec(model_name)
    config = model_config(model_name, dataset, batch_size, n_scales, channel_ratio, widths)
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, dict(spec.feature_dims), spec.has_unimodal_labels)
    compile_model(model, config)
    features, labels = batch if batch is not None else synthetic_batch(spec, batch_size, seed)
    # Tensors up front, so no step pays for a NumPy-to-tensor copy.
    features = {k: tf.constant(v) for k, v in features.items()}
    labels = {k: tf.constant(v) for k, v in labels.items()}

    start = time.perf_counter()
    model.train_on_batch(features, labels)
    first_step_s = time.perf_counter() - start
    warm_done, reduced = 1, False
    while warm_done < warmup:
        start = time.perf_counter()
        model.train_on_batch(features, labels)
        warm_s = time.perf_counter() - start
        warm_done += 1
        planned = (warmup - warm_done + steps) * warm_s
        if max_model_seconds is not None and planned > max_model_seconds:
            # A model of seconds-to-minutes per step: fewer steps, none left untimed.
            steps = max(min_steps, min(steps, int(max_model_seconds // warm_s)))
            reduced = True
            break
    step_seconds, losses = [], []
    for _ in range(steps):
        start = time.perf_counter()
        loss = model.train_on_batch(features, labels)
        step_seconds.append(time.perf_counter() - start)
        losses.append(_loss_value(loss))
    if not all(map(lambda x: x == x and abs(x) != float("inf"), losses)):
        raise FloatingPointError(
            f"{model_name} on {dataset}: the training loss became non-finite: {losses}")

    median_s = statistics.median(step_seconds)
    record = {
        "model": model_name,
        "title": model_spec.title,
        "dataset": dataset,
        "shapes": {m: [spec.max_lengths[m], spec.feature_dims[m]] for m in spec.max_lengths},
        "batch_size": batch_size,
        "task": getattr(model, "task", None),
    }
    if model_name == "m3sa":
        record.update(n_scales=config.n_scales, channel_ratio=config.channel_ratio,
                      widths=widths, hidden_sizes=dict(config.hidden_sizes))
    else:
        record["model_hparams"] = dict(config.model_hparams)
    record.update({
        "model_default_batch_size": model_config(model_name, dataset, None, n_scales,
                                                 channel_ratio).batch_size,
        "parameters": parameter_counts(model),
        "warmup_steps": warm_done,
        "timed_steps": steps,
        "steps_reduced": reduced,
        "first_step_seconds_with_tracing": first_step_s,
        "step_ms_median": 1000.0 * median_s,
        "step_ms_min": 1000.0 * min(step_seconds),
        "step_ms_max": 1000.0 * max(step_seconds),
        "step_ms_all": [1000.0 * s for s in step_seconds],
        "samples_per_s": batch_size / median_s,
        "final_loss": losses[-1],
        "load_average_1_5_15min": {"before": list(load_before),
                                   "after": list(os.getloadavg())},
        "config": config.to_dict(),
    })
    del model
    keras.backend.clear_session()
    gc.collect()
    return record


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
    parser.add_argument("--model", nargs="+", default=["m3sa"],
                        help="models of the zoo to time, or 'all' (default: m3sa)")
    parser.add_argument("--dataset", nargs="+", choices=DATASETS, default=["mosi"],
                        help="real-data shapes to time (several: one record each)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=positive_int, default=3,
                        help="untimed steps first (the first one traces the graph)")
    parser.add_argument("--max-model-seconds", type=positive_int, default=None,
                        help="time budget of one model's warm and timed steps; a slower "
                             "model gets fewer timed steps (at least --min-steps)")
    parser.add_argument("--min-steps", type=positive_int, default=3)
    parser.add_argument("--n-scales", type=positive_int, default=5, help="M³SA's n")
    parser.add_argument("--channel-ratio", type=positive_int, default=4, help="M³SA's r")
    parser.add_argument("--widths", type=positive_int, default=None, metavar="D",
                        help="M³SA only: every modality's hidden size d_m = D (default: "
                             "the config's own d_m)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random batch")
    parser.add_argument("--output", default=None,
                        help="default: results/train_step.json for --model m3sa, "
                             "results/train_step_zoo.json otherwise")
    args = parser.parse_args(argv)

    from m3sa_tf import ConfigError
    from m3sa_tf.models import get_spec, model_names
    from msa_core.io import write_json_atomic

    if "all" in args.model:
        models = list(model_names())
    else:
        models = list(dict.fromkeys(args.model))
        try:
            for name in models:
                get_spec(name)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    if args.widths is not None and models != ["m3sa"]:
        print("error: --widths sets M³SA's d_m; use it with --model m3sa alone",
              file=sys.stderr)
        return 2
    output = args.output or (DEFAULT_OUTPUT if models == ["m3sa"] else ZOO_OUTPUT)

    # Fail before minutes of timing, not after them.
    out_dir = os.path.dirname(os.path.abspath(output))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create the output directory {out_dir}: {err}", file=sys.stderr)
        return 2
    if not os.access(out_dir, os.W_OK):
        print(f"error: the output directory {out_dir} is not writable", file=sys.stderr)
        return 2

    runs, skipped = plan_runs(models, args.dataset)
    for entry in skipped:
        print(f"{entry['model']} on {entry['dataset']}: skipped ({entry['reason']})")
    load_before = os.getloadavg()
    machine = machine_info()
    command = "python benchmarks/train_step.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    records = []

    def write():
        result = {
            "benchmark": "train_step",
            "command": command,
            "widths": args.widths,
            "results": records,
            "machine": machine,
            "load_average_1_5_15min": {"before": list(load_before),
                                       "after": list(os.getloadavg())},
            "note": "forward + backward + AdamW update of one cached batch "
                    "(train_on_batch); a load average above the CPU count means other "
                    "jobs shared the CPU, and the figures are then pessimistic.",
        }
        if models != ["m3sa"]:
            result["models"] = models
            result["datasets"] = list(args.dataset)
            result["skipped"] = skipped
            result["complete"] = len(records) == len(runs)
        write_json_atomic(output, result)

    for name, dataset in runs:
        record = benchmark_model(name, dataset, args.batch_size, args.steps, args.warmup,
                                 args.n_scales, args.channel_ratio, args.seed,
                                 args.max_model_seconds, args.min_steps, args.widths)
        records.append(record)
        print(f"{name} on {dataset}: {record['samples_per_s']:.1f} samples/s, "
              f"{record['step_ms_median']:.0f} ms/step (median of "
              f"{record['timed_steps']}), {record['parameters']['trainable']} trainable / "
              f"{record['parameters']['total']} parameters", flush=True)
        if models != ["m3sa"]:
            write()  # a long zoo run leaves its finished records behind
    write()
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
