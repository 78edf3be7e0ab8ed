"""Fixtures of the pipeline tests: tiny synthetic datasets built once, a tiny model."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKER = os.path.join(os.path.dirname(__file__), "train_worker.py")
SCALE = 0.03

# A model small enough to trace and train in seconds on a CPU; the protocol is the same.
TINY = {
    "hidden_sizes": {"text": 8, "audio": 4, "vision": 4},
    "fusion_dim": 8,
    "num_heads": 2,
    "n_scales": 2,
    "channel_ratio": 1,
    "head_hidden_size": 8,
    "contrastive_dim": 8,
    "extractor": "dense",
    "batch_size": 16,
    "learning_rate": 0.01,
    "epochs": 3,
    "key_warmup_epochs": 1,
}


def tiny_set_flags(overrides=None):
    """The TINY config as `--set key=value` CLI arguments."""
    values = {**TINY, **(overrides or {})}
    return ["--set"] + [f"{k}={json.dumps(v)}" for k, v in values.items()]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A data directory holding synthetic-sims and synthetic-mosi at SCALE."""
    import tfrecords

    path = str(tmp_path_factory.mktemp("data"))
    for name in ("synthetic-sims", "synthetic-mosi"):
        tfrecords.build_dataset(name, path, scale=SCALE, seed=0)
    return path


def subprocess_env(extra=None):
    env = dict(os.environ)
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
                "PYTHONPATH": REPO + os.pathsep + env.get("PYTHONPATH", "")})
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def run_worker(spec, env=None, timeout=300):
    """Runs tests/pipelines/train_worker.py with `spec` in a fresh process."""
    return subprocess.run(
        [sys.executable, WORKER, json.dumps(spec)], cwd=REPO, env=subprocess_env(env),
        capture_output=True, text=True, timeout=timeout,
    )


def worker_result(completed):
    """The RESULT line a train_worker.py process printed, parsed."""
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise AssertionError(
        f"no RESULT line (exit {completed.returncode}):\n{completed.stdout[-3000:]}\n"
        f"{completed.stderr[-3000:]}"
    )
