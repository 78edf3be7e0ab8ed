"""The run directory (docs/interfaces.md §4): its file names, what its checkpoints
belong to, and the files a finished run leaves.

A run directory is the unit everything else builds on: `pipelines.train` writes one per
seed, `pipelines.export` and `pipelines.evaluate` read one, the tuner and the experiment
runner keep one per trial or cell. Its `metrics.json` is written last, so its presence
marks a finished run; `checkpoints/run.json` holds the fingerprint of the configuration
and data the checkpoints belong to, so a rerun resumes only the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping, Optional

import numpy as np

from m3sa_tf import MODALITIES, M3SAConfig
from msa_core.io import read_json, write_csv_atomic

PREDICTION_COLUMNS = ("id", "label", "fused", "text", "audio", "vision")
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
MODEL_FILE = "model.keras"
PREDICTIONS_DIR = "predictions"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
RUN_FILE = "run.json"  # in checkpoints/: what the checkpoints belong to
KEY_FILE = "key_modality.json"  # in checkpoints/: the warm-up's choice


class RunDirError(ValueError):
    """An output directory that holds a different run than the one asked for, or is
    not the finished run a reader expects."""


def say(verbose: int, message: str) -> None:
    """Progress output of the pipeline (silent when `verbose` is 0)."""
    if verbose:
        print(message, flush=True)


def read_optional_json(path: str) -> Optional[Any]:
    """The JSON in `path`, or None when there is no such file."""
    if not os.path.exists(path):
        return None
    return read_json(path, error=RunDirError)


def write_predictions_csv(path: str, predictions: Mapping[str, np.ndarray]) -> None:
    """predictions/<split>.csv with columns id,label,fused,text,audio,vision (a column
    of a modality the model does not have is left empty)."""
    n = len(predictions["fused"])
    ids = predictions.get("id", np.array([str(i) for i in range(n)], dtype=object))

    def cell(key, i):
        return "" if key not in predictions else format(float(predictions[key][i]), ".9g")

    rows = (
        [ids[i], cell("label_fused", i), cell("fused", i)]
        + [cell(m, i) for m in MODALITIES]
        for i in range(n)
    )
    write_csv_atomic(path, rows, header=PREDICTION_COLUMNS)


def run_fingerprint(config: M3SAConfig, scale: float, data_seed: int) -> str:
    """What a run directory's checkpoints and results belong to."""
    payload = json.dumps(
        {"config": config.to_dict(), "scale": float(scale), "data_seed": int(data_seed)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def check_run_dir(output_dir: str, fingerprint: str) -> Optional[dict]:
    """Returns the finished run's metrics when `output_dir` already holds this run;
    raises RunDirError when it holds checkpoints or results of a different one."""
    run_file = os.path.join(output_dir, CHECKPOINT_DIR, RUN_FILE)
    metrics_file = os.path.join(output_dir, METRICS_FILE)
    for path in (run_file, metrics_file):
        if not os.path.exists(path):
            continue
        recorded = (read_json(path, error=RunDirError) or {}).get("run_fingerprint")
        if recorded != fingerprint:
            raise RunDirError(
                f"{output_dir} holds a run with other hyper-parameters or data "
                f"({path} has fingerprint {recorded}, this run is {fingerprint}); use "
                "another --output-dir, or delete that directory to start over"
            )
    if os.path.exists(metrics_file):
        return read_json(metrics_file, error=RunDirError)
    return None
