"""Constants and helpers of the serving and pipeline tests."""

import csv
import json
import os

import numpy as np

DATASET = "synthetic-mosi"
SCALE = 0.03  # 39 / 7 / 21 examples
# Small widths, one epoch, a fixed key and a dense extractor keep a training run to a
# few seconds of compute; the export path does not depend on the model's size.
TINY_OVERRIDES = {
    "epochs": 1,
    "batch_size": 32,
    "key_modality": "text",
    "extractor": "dense",
    "n_scales": 2,
    "channel_ratio": 1,
    "hidden_sizes": {"text": 8, "audio": 4, "vision": 4},
    "fusion_dim": 8,
    "num_heads": 1,
    "contrastive_dim": 8,
}


def load_split_arrays(data_dir, split="test"):
    """All of one split as numpy arrays (ids as str), in the file's order."""
    import tfrecords

    datasets, _ = tfrecords.load_dataset(
        DATASET, data_dir, scale=SCALE, seed=0, batch_size=1024, shuffle=False,
        keep_ids=True, splits=(split,),
    )
    features, labels = next(iter(datasets[split]))
    arrays = {name: value.numpy() for name, value in features.items()}
    arrays["id"] = np.array([v.decode("utf-8") for v in arrays["id"]])
    return arrays, {name: value.numpy() for name, value in labels.items()}


def read_predictions_csv(path):
    """{id: {column: float}} of a run's predictions/test.csv."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            row["id"]: {k: float(v) for k, v in row.items() if k != "id" and v != ""}
            for row in csv.DictReader(handle)
        }


def project_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pipeline_argv(root, data_dir, *extra):
    """`python -m pipelines.run` arguments for the tiny model on the tiny dataset."""
    import json

    argv = ["--dataset", DATASET, "--data-dir", data_dir, "--pipeline-root", str(root),
            "--scale", str(SCALE), "--verbose", "0", "--set"]
    argv += [f"{k}={json.dumps(v)}" for k, v in TINY_OVERRIDES.items()]
    return argv + list(extra)


def run_pipeline(argv):
    """Runs the pipeline as the CLI would; returns (executions, log lines)."""
    from pipelines import run

    lines = []
    options = run.options_from_args(run.build_parser().parse_args(argv))
    executions = run.run_pipeline(options, log=lines.append)
    return executions, lines


# The tiny model the export tests build without training: TINY_OVERRIDES' architecture
# on small feature widths.
TINY_FEATURE_DIMS = {"text": 6, "audio": 3, "vision": 4}


def tiny_config(**overrides):
    """An M3SAConfig for DATASET with TINY_OVERRIDES and `overrides` on top."""
    from m3sa_tf.config import M3SAConfig

    return M3SAConfig.for_dataset(DATASET, **{**TINY_OVERRIDES, **overrides})


def build_tiny_model(config, has_unimodal_labels=False, seed=0):
    """A random-initialised (untrained) model of `config` on TINY_FEATURE_DIMS."""
    import keras

    from m3sa_tf.models import build_model

    keras.utils.set_random_seed(seed)
    dims = {m: TINY_FEATURE_DIMS[m] for m in config.modalities}
    return build_model(config, dims, has_unimodal_labels)


def random_features(signature, batch=3, time=5, seed=0):
    """Random arrays for a model's `input_signature()` (interfaces §2): normal
    float sequences of `time` steps, lengths in [1, time], 0/1 masks as bools."""
    rng = np.random.default_rng(seed)
    features = {}
    for name, spec in signature.items():
        dtype = spec.dtype.as_numpy_dtype
        if spec.shape.rank == 3:
            features[name] = rng.standard_normal((batch, time, spec.shape[-1])).astype(dtype)
        elif name.endswith("_length"):
            features[name] = rng.integers(1, time + 1, size=batch).astype(dtype)
        elif dtype == np.bool_:
            features[name] = rng.integers(0, 2, size=(batch, time)).astype(bool)
        else:
            features[name] = rng.integers(0, 100, size=(batch, time)).astype(dtype)
    return features


def write_run_dir(run_dir, model, config, metrics=None):
    """A run directory as pipelines.training leaves it, as far as export reads it:
    model.keras, config.json, dataset.json and (when given) metrics.json, for a model
    of `build_tiny_model`."""
    import json

    os.makedirs(run_dir, exist_ok=True)
    model.save(os.path.join(run_dir, "model.keras"))
    files = {"config.json": config.to_dict(),
             "dataset.json": {"name": DATASET, "feature_dims": {
                 m: TINY_FEATURE_DIMS[m] for m in config.modalities}}}
    if metrics is not None:
        files["metrics.json"] = metrics
    for name, content in files.items():
        with open(os.path.join(run_dir, name), "w", encoding="utf-8") as handle:
            json.dump(content, handle)
    return run_dir


def serve_in_fresh_process(args, cwd):
    """Runs standalone_serve.py with `args` in a fresh interpreter that cannot see the
    project (-I: no PYTHONPATH, user site, script or working directory on sys.path);
    returns its report.json (written into `cwd`)."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    report = os.path.join(str(cwd), "report.json")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "standalone_serve.py")
    result = subprocess.run([sys.executable, "-I", script, *map(str, args), report],
                            cwd=str(cwd), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(report, encoding="utf-8") as handle:
        return json.load(handle)


def serve_jobs(root, jobs, results):
    """Serves every job (`name`, `version_dir`, `features`, `outputs` paths) in ONE fresh
    process and adds each job's `report` and `served` outputs to `results[name]`;
    `results["_process"]` is the process's own report."""
    (root / "jobs.json").write_text(json.dumps(jobs))
    report = serve_in_fresh_process(["--many", root / "jobs.json"], cwd=root)
    for job in jobs:
        results[job["name"]]["report"] = report["jobs"][job["name"]]
        if os.path.exists(job["outputs"]):
            with np.load(job["outputs"]) as data:
                results[job["name"]]["served"] = dict(data)
    results["_process"] = report
    return results
