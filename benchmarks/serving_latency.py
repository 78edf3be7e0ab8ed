"""Latency of the exported SavedModel's `serving_default`, loaded in a fresh process.

    python benchmarks/serving_latency.py [--run-dir RUN] [--calls 200] [--warmup 10]
        [--max-case-seconds 30] [--seed 0] [--threads N] [--note TEXT]
        [--output benchmarks/results/serving_latency.json]

What a client of TensorFlow Serving (or of `tf.saved_model.load`) waits for one answer.
The model is the default M³SA for MOSI shapes (text 768, audio 5, vision 20 features
per step), randomly initialised (latency does not depend on the weights), or with
`--run-dir` the model of a finished training run on feature sequences (`text_path`
"features"; `pipelines.export.load_run`, and of a seeds directory the seed
`pipelines.export.choose_run` would export). It is
exported with `pipelines.export.export_model` into a temporary directory; then a FRESH
Python process (nothing traced or cached from the export) loads it with
`tf.saved_model.load`, takes `signatures["serving_default"]` and times these cases:

| case | batch | lengths | padded T (text, audio, vision) |
|---|---|---|---|
| `batch1_trimmed` | 1 | one MOSI-like clip: 34 / 183 / 241 | the clip's own lengths |
| `batch1_padded` | 1 | the same clip | MOSI's maxima 50 / 375 / 500 |
| `batch32_trimmed` | 32 | drawn like MOSI (below) | the batch's longest per modality |
| `batch32_padded` | 32 | the same | 50 / 375 / 500 |

Batch-32 lengths follow the synthetic data's model of MOSI (`tfrecords/synthetic.py`):
text lognormal around 0.42·T, audio and vision Beta(2, 1.5)·T (mean ≈ 0.57·T, i.e.
about 214 of 375 audio and 286 of 500 vision steps; real MMSA MOSI averages about 223 and
288), at least 1 step. Every case gets `--warmup` untimed calls; then the cases are
called in turn, one call each per round, for `--calls` rounds (fewer when the budget of
`--max-case-seconds` × the number of cases runs out; the record says how many), so that
a change in the machine's load touches every case alike. Each call converts its NumPy
inputs to tensors as a client would, and ends when the outputs are read back as NumPy. Reported per case: p50, p90, mean, min and max in milliseconds.

Output: `--output`, with the cases, the model's parameter count and config summary, the
TensorFlow version, thread settings, the load average before and after, and the
command. On a shared CPU (a load average above the CPU count) the figures are
pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

DEFAULT_OUTPUT = os.path.join(HERE, "results", "serving_latency.json")
CLIP_LENGTHS = {"text": 34, "audio": 183, "vision": 241}
MOSI_MAX = {"text": 50, "audio": 375, "vision": 500}
MOSI_DIMS = {"text": 768, "audio": 5, "vision": 20}
CASES = (("batch1_trimmed", 1, True), ("batch1_padded", 1, False),
         ("batch32_trimmed", 32, True), ("batch32_padded", 32, False))


def mosi_like_lengths(rng, batch: int, modality: str, max_length: int):
    """Valid lengths drawn like tfrecords/synthetic.py's model of MOSI (none zero)."""
    import numpy as np

    if modality == "text":
        raw = rng.lognormal(np.log(0.42 * max_length), 0.35, size=batch)
        return np.clip(np.round(raw), 3, max_length).astype("int32")
    raw = rng.beta(2.0, 1.5, size=batch) * max_length
    return np.clip(np.round(raw), 1, max_length).astype("int32")


def make_case(batch: int, trimmed: bool, feature_dims: dict, max_lengths: dict, seed: int):
    """Feature dict of NumPy arrays: random values, zero past each row's length."""
    import numpy as np

    rng = np.random.default_rng(seed)
    features = {}
    for m, dim in feature_dims.items():
        if batch == 1:
            lengths = np.array([min(CLIP_LENGTHS[m], max_lengths[m])], dtype="int32")
        else:
            lengths = mosi_like_lengths(rng, batch, m, max_lengths[m])
        steps = int(lengths.max()) if trimmed else max_lengths[m]
        values = rng.normal(size=(batch, steps, dim)).astype("float32")
        values *= np.arange(steps)[None, :, None] < lengths[:, None, None]
        features[m] = values
        features[f"{m}_length"] = lengths
    return features


def percentile(values, q: float) -> float:
    """Linear-interpolated percentile (NumPy's default), q in [0, 100]."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_cases(args) -> int:
    """The fresh process: loads the SavedModel and times every case; writes JSON."""
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    with open(args.worker_info, "r", encoding="utf-8") as handle:
        info = json.load(handle)
    start = time.perf_counter()
    loaded = tf.saved_model.load(args.worker_model)
    serve = loaded.signatures["serving_default"]
    load_s = time.perf_counter() - start

    def make_call(features):
        def call():
            outputs = serve(**{k: tf.constant(v) for k, v in features.items()})
            return {k: v.numpy() for k, v in outputs.items()}
        return call

    cases, first_ms = {}, {}
    for name, batch, trimmed in CASES:
        # Seeded by the batch size: the trimmed and padded cases hold the same clips.
        features = make_case(batch, trimmed, info["feature_dims"], info["max_lengths"],
                             args.seed + batch)
        cases[name] = (batch, features, make_call(features))
        start = time.perf_counter()
        cases[name][2]()
        first_ms[name] = 1000.0 * (time.perf_counter() - start)
        for _ in range(args.warmup - 1):
            cases[name][2]()
    # Round robin: one call of each case in turn, so that a change in the machine's
    # load during the run touches every case alike.
    times = {name: [] for name in cases}
    deadline = time.perf_counter() + args.max_case_seconds * len(cases)
    for _ in range(args.calls):
        for name, (_, _, call) in cases.items():
            start = time.perf_counter()
            call()
            times[name].append(1000.0 * (time.perf_counter() - start))
        if time.perf_counter() > deadline:
            break
    results = {}
    for name, (batch, features, _) in cases.items():
        timed = times[name]
        results[name] = {
            "batch_size": batch,
            "padded_lengths": {m: int(features[m].shape[1]) for m in info["feature_dims"]},
            "valid_lengths_mean": {m: float(features[f"{m}_length"].mean())
                                   for m in info["feature_dims"]},
            "first_call_ms": first_ms[name],
            "warmup_calls": args.warmup,
            "timed_calls": len(timed),
            "calls_reduced": len(timed) < args.calls,
            "p50_ms": percentile(timed, 50),
            "p90_ms": percentile(timed, 90),
            "mean_ms": statistics.fmean(timed),
            "min_ms": min(timed),
            "max_ms": max(timed),
        }
        print(f"{name}: p50 {results[name]['p50_ms']:.1f} ms, p90 "
              f"{results[name]['p90_ms']:.1f} ms ({len(timed)} calls)", flush=True)
    record = {
        "load_seconds": load_s,
        "cases": results,
        "tensorflow": tf.__version__,
        "threads": {
            "tf.intra_op_parallelism_threads":
                tf.config.threading.get_intra_op_parallelism_threads(),
            "tf.inter_op_parallelism_threads":
                tf.config.threading.get_inter_op_parallelism_threads(),
        },
    }
    with open(args.worker_output, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return 0


def export_default_model(export_dir: str, run_dir: str = None, seed: int = 0) -> dict:
    """Exports the model (a run's, or a fresh default M³SA for MOSI) into `export_dir`;
    returns what the timing process and the record need."""
    import keras

    from m3sa_tf import M3SAConfig
    from m3sa_tf.models import build_model
    from pipelines.export import choose_run, export_model, load_run
    from tfrecords.specs import spec_for

    if run_dir:
        chosen, _ = choose_run(run_dir)
        model, config, feature_dims = load_run(chosen)
        source = {"run_dir": os.path.abspath(run_dir), "exported_run_dir": chosen}
        if config.text_path != "features":
            raise ValueError(f"{chosen}: text_path={config.text_path!r}; this benchmark "
                             "sends feature sequences (text_path='features') only")
    else:
        config = M3SAConfig.for_dataset("mosi")
        feature_dims = dict(spec_for("mosi").feature_dims)
        keras.utils.set_random_seed(seed)
        model = build_model(config, feature_dims, has_unimodal_labels=False)
        source = {"run_dir": None, "weights": "random (seeded), never trained"}
    try:  # real and synthetic names ("synthetic-sims" has SIMS's shapes)
        max_lengths = dict(spec_for(config.dataset).max_lengths)
    except KeyError:
        max_lengths = dict(MOSI_MAX)
    start = time.perf_counter()
    path = export_model(model, export_dir, "m3sa", 1)
    export_s = time.perf_counter() - start
    dims = {m: int(feature_dims[m]) for m in config.modalities}
    return {
        "path": path,
        "export_seconds": export_s,
        "source": source,
        "feature_dims": dims,
        "max_lengths": {m: int(max_lengths.get(m, MOSI_MAX[m])) for m in dims},
        "parameters": int(sum(int(v.numpy().size) for v in model.weights)),
        "config": {k: config.to_dict()[k] for k in (
            "dataset", "n_scales", "channel_ratio", "hidden_sizes", "fusion_dim", "num_heads",
            "fusion", "extractor", "readout", "text_path")},
        "key_modality": getattr(model, "key_modality", None),
    }


# The benchmarks share one parser of counts (this folder is on sys.path when run).
from train_step import positive_int  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=None,
                        help="a finished training run (default: a random default M³SA)")
    parser.add_argument("--calls", type=positive_int, default=200,
                        help="timed calls per case")
    parser.add_argument("--warmup", type=positive_int, default=10,
                        help="untimed calls per case first")
    parser.add_argument("--max-case-seconds", type=float, default=30.0,
                        help="timed rounds stop after this many seconds × the number of "
                             "cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and inputs")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="TensorFlow intra- and inter-op threads (default: TF's own)")
    parser.add_argument("--note", default=None, help="free text kept in the JSON")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--worker-model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-info", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_model:
        return time_cases(args)

    if args.run_dir:
        from pipelines.export import ExportError, choose_run

        try:  # a missing or unfinished run fails before any model is built
            choose_run(args.run_dir)
        except ExportError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        print(f"error: the output directory {out_dir} is not writable", file=sys.stderr)
        return 2

    from msa_core.io import write_json_atomic

    command = "python benchmarks/serving_latency.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="serving_latency_") as workdir:
        try:
            exported = export_default_model(os.path.join(workdir, "export"), args.run_dir,
                                             args.seed)
        except ValueError as err:  # ExportError included
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"exported to a temporary directory in {exported['export_seconds']:.1f} s",
              flush=True)
        info_path = os.path.join(workdir, "info.json")
        with open(info_path, "w", encoding="utf-8") as handle:
            json.dump(exported, handle)
        timing_path = os.path.join(workdir, "timing.json")
        worker = [sys.executable, os.path.abspath(__file__), "--worker-model",
                  exported["path"], "--worker-info", info_path, "--worker-output",
                  timing_path, "--calls", str(args.calls), "--warmup", str(args.warmup),
                  "--max-case-seconds", str(args.max_case_seconds), "--seed", str(args.seed)]
        if args.threads:
            worker += ["--threads", str(args.threads)]
        done = subprocess.run(worker, cwd=ROOT)
        if done.returncode != 0 or not os.path.exists(timing_path):
            print(f"error: the timing process failed (exit status {done.returncode})",
                  file=sys.stderr)
            return 1
        with open(timing_path, "r", encoding="utf-8") as handle:
            timing = json.load(handle)

    result = {
        "benchmark": "serving_latency",
        "command": command,
        "model": {k: exported[k] for k in ("source", "feature_dims", "max_lengths",
                                           "parameters", "config", "key_modality")},
        "export_seconds": exported["export_seconds"],
        "fresh_process_load_seconds": timing["load_seconds"],
        "cases": timing["cases"],
        "threads": timing["threads"],
        "versions": {"tensorflow": timing["tensorflow"], "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "load_average_1_5_15min": {"before": list(load_before),
                                   "after": list(os.getloadavg())},
        "note": "serving_default of the exported SavedModel, loaded with "
                "tf.saved_model.load in a fresh process; each call from NumPy inputs to "
                "NumPy outputs. Threads 0 = TensorFlow's default (one per core). A load "
                "average above the CPU count means other jobs shared the CPU: the "
                "figures are then pessimistic.",
    }
    if args.note:
        result["run_note"] = args.note
    write_json_atomic(args.output, result)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
