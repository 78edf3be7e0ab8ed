"""Pusher: exports a blessed model for TF Serving (`pipelines.export`).

When the evaluator blessed the model, the trainer's run directory is exported as
`SERVING_DIR/MODEL_NAME/<next version>/` with `pipelines.export.export_run`; otherwise
nothing is exported and the record says why.

Artifact (`ROOT/pusher/<id>/push.json`): pushed (bool), reason, the export path and
version, the model's fingerprint, the blessing metric and value and every test metric.
`last_pushed` reads these to give the evaluator its baseline.

Parameters: `serving_dir` (absolute) and `model_name`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from pipelines.stages import evaluator, trainer
from msa_core.io import read_json, write_json_atomic
from pipelines.stages.execution import Execution, PipelineError, list_executions

NAME = "pusher"
PUSH_FILE = "push.json"


def parameters(serving_dir: str, model_name: str = "m3sa") -> dict:
    return {"serving_dir": os.path.abspath(os.path.expanduser(serving_dir)),
            "model_name": model_name}


def run(artifact_dir: str, inputs: Mapping[str, Execution], params: Mapping[str, Any]) -> dict:
    from pipelines.export import export_run

    evaluation = evaluator.read_evaluation(inputs["blessing"])
    push = {
        "model_fingerprint": inputs["model"].fingerprint,
        "metric": evaluation["metric"],
        "value": evaluation["value"],
        "metrics": evaluation["metrics"],
        "serving_dir": params["serving_dir"],
        "model_name": params["model_name"],
    }
    if evaluation["model_fingerprint"] != inputs["model"].fingerprint:
        raise PipelineError("the blessing was given to another model than the one to push")
    if evaluation["blessed"]:
        path = export_run(trainer.run_dir(inputs["model"]), params["serving_dir"],
                          params["model_name"])
        push.update(pushed=True, path=path, version=int(os.path.basename(path)),
                    reason=f"blessed: {evaluation['reason']}")
        print(f"[{NAME}] pushed version {push['version']} to {path}", flush=True)
    else:
        push.update(pushed=False, path=None, version=None,
                    reason=f"not blessed: {evaluation['reason']}")
        print(f"[{NAME}] not pushed ({push['reason']})", flush=True)
    write_json_atomic(os.path.join(artifact_dir, PUSH_FILE), push)
    return {key: push[key] for key in ("pushed", "version", "path", "reason")}


def read_push(execution: Execution) -> dict:
    return read_json(os.path.join(execution.path, PUSH_FILE), error=PipelineError)


def last_pushed(root: str, serving_dir: str, model_name: str, metric: str,
                exclude_model_fingerprint: Optional[str] = None) -> Optional[dict]:
    """The latest push of a model other than `exclude_model_fingerprint` to
    `serving_dir`/`model_name`, with its test score on `metric`: {"pusher_execution",
    "model_fingerprint", "version", "metric", "value"}, or None when there is none.

    Leaving the candidate model itself out keeps a rerun of an unchanged pipeline from
    comparing a pushed model with itself (which it cannot beat) and lets it skip."""
    serving_dir = os.path.abspath(os.path.expanduser(serving_dir))
    for execution in reversed(list_executions(root, NAME)):
        push = read_push(execution)
        if (push.get("pushed") and push["serving_dir"] == serving_dir
                and push["model_name"] == model_name
                and push["model_fingerprint"] != exclude_model_fingerprint):
            return {"pusher_execution": execution.execution_id,
                    "model_fingerprint": push["model_fingerprint"],
                    "version": push["version"], "metric": metric,
                    "value": push["metrics"][metric]}
    return None
