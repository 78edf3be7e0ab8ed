"""Trainer: one model trained and tested by the training library.

Calls `pipelines.training.train_and_evaluate` (the same protocol as
`python -m pipelines.train`) on the examples of `example_gen`, with the scale and seed
they were built with.

Artifact (`ROOT/trainer/<id>/run/`): the run directory of docs/interfaces.md §4
(`metrics.json`, `predictions/test.csv`, `config.json`, `dataset.json`, `model.keras`,
`checkpoints/`, `tensorboard/`). An interrupted trainer continues from its checkpoints
when the pipeline is run again with the same inputs.

Parameters: `config`, the resolved `M3SAConfig` as a dict (dataset defaults, then
`--epochs` and every `--set k=v`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from pipelines.stages import example_gen
from pipelines.stages.execution import Execution, PipelineError

NAME = "trainer"
RUN_DIR = "run"


def parameters(config) -> dict:
    return {"config": config.to_dict()}


def run_dir(execution: Execution) -> str:
    return os.path.join(execution.path, RUN_DIR)


def run(artifact_dir: str, inputs: Mapping[str, Execution], params: Mapping[str, Any],
        *, verbose: int = 1) -> dict:
    from m3sa_tf import M3SAConfig
    from pipelines.training import train_and_evaluate

    examples = example_gen.read_examples(inputs["examples"])
    config = M3SAConfig.from_dict(params["config"])
    if config.dataset != examples["dataset"]:
        raise PipelineError(
            f"the trainer's configuration is for dataset {config.dataset!r} but the "
            f"examples are {examples['dataset']!r}"
        )
    metrics = train_and_evaluate(
        config, examples["data_dir"], os.path.join(artifact_dir, RUN_DIR),
        scale=examples["scale"], data_seed=examples["seed"], verbose=verbose,
    )
    return {
        "run_dir": RUN_DIR,
        "key_modality": metrics.get("key_modality"),
        "best_epoch": metrics.get("best_epoch"),
        "epochs_trained": metrics.get("epochs_trained"),
        "validation_loss": metrics.get("validation", {}).get("loss"),
    }
