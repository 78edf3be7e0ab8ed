"""Evaluator: test metrics of the trained model, and the blessing.

The metrics are computed here, from the trainer's `predictions/test.csv` (column
`fused` against `label`) with `m3sa_tf.metrics.compute_metrics` and the dataset's
metric family, not copied from the trainer's own report.

Blessing: the model is blessed only when, on the chosen metric,
1. it beats the threshold (when one is given), and
2. it beats the last model pushed to the same serving directory and model name (when
   there is one; see `pipelines.stages.pusher.last_pushed`).
"Beats" means strictly better: lower for `MAE`, higher for every other metric. The
verdict and its reason are recorded.

Artifact (`ROOT/evaluator/<id>/`): `evaluation.json` (metrics, metric, value, direction,
threshold, baseline, blessed, reason) and an empty marker file `BLESSED` or
`NOT_BLESSED`, as TFX's model blessing has.

Parameters: `metric`, `threshold` (or None), and `baseline`: the last pushed model as
{"pusher_execution", "model_fingerprint", "value"} or None. The baseline is a parameter
so that a newly pushed model re-decides the blessing of later candidates.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Dict, Mapping, Optional

import numpy as np

from msa_core.io import read_json, write_json_atomic
from pipelines.stages import trainer
from pipelines.stages.execution import Execution, PipelineError

NAME = "evaluator"
EVALUATION_FILE = "evaluation.json"
LOWER_IS_BETTER = ("MAE",)


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def beats(value: float, reference: float, metric: str) -> bool:
    """Strictly better on `metric`."""
    return value < reference if lower_is_better(metric) else value > reference


def parameters(metric: str, threshold: Optional[float], baseline: Optional[dict]) -> dict:
    return {"metric": metric, "threshold": None if threshold is None else float(threshold),
            "baseline": baseline}


def read_predictions(path: str) -> Dict[str, np.ndarray]:
    """The `label` and `fused` columns of a predictions CSV."""
    labels, fused = [], []
    try:
        with open(path, "r", encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                labels.append(float(row["label"]))
                fused.append(float(row["fused"]))
    except (OSError, KeyError, ValueError) as err:
        raise PipelineError(f"cannot read predictions {path}: {err}") from err
    if not labels:
        raise PipelineError(f"{path} holds no predictions")
    return {"label": np.asarray(labels), "fused": np.asarray(fused)}


def bless(value: float, metric: str, threshold: Optional[float],
          baseline: Optional[Mapping[str, Any]]) -> tuple:
    """(blessed, reason) for a model scoring `value` on `metric`."""
    better = "lower" if lower_is_better(metric) else "higher"
    if value is None or not math.isfinite(value):
        return False, f"{metric} is {value}, not a finite number"
    reasons = []
    if threshold is not None:
        if not beats(value, threshold, metric):
            return False, (f"{metric} {value:.6g} does not beat the threshold {threshold:.6g} "
                           f"({better} is better)")
        reasons.append(f"beats the threshold {threshold:.6g}")
    if baseline is not None:
        if not beats(value, baseline["value"], metric):
            return False, (f"{metric} {value:.6g} does not beat the last pushed model's "
                           f"{baseline['value']:.6g} (pusher execution "
                           f"{baseline['pusher_execution']}; {better} is better)")
        reasons.append(f"beats the last pushed model's {baseline['value']:.6g} (pusher "
                       f"execution {baseline['pusher_execution']})")
    else:
        reasons.append("no model was pushed before")
    if threshold is None:
        reasons.append("no threshold set")
    return True, f"{metric} {value:.6g}: " + "; ".join(reasons)


def run(artifact_dir: str, inputs: Mapping[str, Execution], params: Mapping[str, Any]) -> dict:
    from m3sa_tf.metrics import compute_metrics, metric_names

    run_path = trainer.run_dir(inputs["model"])
    dataset = read_json(os.path.join(run_path, "dataset.json"), error=PipelineError)
    family = dataset["family"]
    metric = params["metric"]
    if metric not in metric_names(family):
        raise PipelineError(
            f"blessing metric {metric!r} is not one of the {family!r} metrics "
            f"{list(metric_names(family))}"
        )
    predictions = read_predictions(os.path.join(run_path, "predictions", "test.csv"))
    metrics = compute_metrics(family, predictions["label"], predictions["fused"])
    value = float(metrics[metric])
    blessed, reason = bless(value, metric, params["threshold"], params["baseline"])
    evaluation = {
        "split": "test",
        "examples": int(len(predictions["label"])),
        "family": family,
        "metrics": metrics,
        "metric": metric,
        "value": value,
        "direction": "lower" if lower_is_better(metric) else "higher",
        "threshold": params["threshold"],
        "baseline": params["baseline"],
        "model_fingerprint": inputs["model"].fingerprint,
        "blessed": blessed,
        "reason": reason,
    }
    write_json_atomic(os.path.join(artifact_dir, EVALUATION_FILE), evaluation)
    with open(os.path.join(artifact_dir, "BLESSED" if blessed else "NOT_BLESSED"), "w"):
        pass
    print(f"[{NAME}] {'blessed' if blessed else 'NOT blessed'}: {reason}", flush=True)
    return {"metric": metric, "value": value, "blessed": blessed, "reason": reason}


def read_evaluation(execution: Execution) -> dict:
    return read_json(os.path.join(execution.path, EVALUATION_FILE), error=PipelineError)
