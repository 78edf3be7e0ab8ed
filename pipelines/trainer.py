"""`run_fn(fn_args)`: the entry point TFX's Trainer component calls.

TFX calls a module's `run_fn` with an `FnArgs` object; this one reads the attributes
below (any object with them works — `types.SimpleNamespace` in tests, TFX's `FnArgs`
in a real pipeline):

- `custom_config` (dict): `dataset` (required unless the hyper-parameters name it),
  `data_dir` (the TFRecord directory of the data layer), and optionally `scale`,
  `data_seed`, `seeds` (a list: several seeds, mean ± std), `strategy`
  ("auto"/"default"/"mirrored"/"multi-worker"), `verbose`.
- `hyperparameters`: the JSON form of `M3SAConfig` (partial is fine: it goes over the
  dataset's defaults), as a dict, a keras-tuner `HyperParameters` object, or its
  `get_config()` dict (TFX's Tuner hands this one over; its `values` are used).
- `model_run_dir`: where the run directory (metrics.json, predictions, checkpoints,
  TensorBoard logs, model.keras) is written.
- `serving_model_dir`: where the SavedModel for serving is written (TFX's Pusher copies
  it from there), via `pipelines.export`.
- `train_files`, `eval_files`: TFX's file patterns of the examples. The data layer
  reads its TFRecords by name from `data_dir`; when these patterns are given they must
  match existing files, so that a miswired pipeline fails here rather than training on
  something else.

The protocol is epoch-based with early stopping, so TFX's `train_steps`/`eval_steps`
are not used: `epochs` in the hyper-parameters bounds the training.

Example:

>>> from types import SimpleNamespace
>>> run_fn(SimpleNamespace(
...     custom_config={"dataset": "synthetic-mosi", "data_dir": "/data", "scale": 0.05},
...     hyperparameters={"epochs": 3}, model_run_dir="/tmp/run",
...     serving_model_dir="/tmp/serving", train_files=None, eval_files=None))  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping

from m3sa_tf.config import ConfigError, M3SAConfig


def hyperparameters_dict(hyperparameters: Any) -> Dict[str, Any]:
    """The plain {field: value} dict from any of the forms TFX may hand over."""
    if hyperparameters is None:
        return {}
    if hasattr(hyperparameters, "values") and not isinstance(hyperparameters, Mapping):
        return dict(hyperparameters.values)  # keras_tuner.HyperParameters
    if not isinstance(hyperparameters, Mapping):
        raise ConfigError(
            f"fn_args.hyperparameters must be a dict or keras-tuner HyperParameters, got "
            f"{type(hyperparameters).__name__}"
        )
    if "space" in hyperparameters and "values" in hyperparameters:
        return dict(hyperparameters["values"])  # HyperParameters.get_config()
    return dict(hyperparameters)


def _check_patterns(name: str, patterns: Any) -> None:
    if not patterns:
        return
    if isinstance(patterns, str):
        patterns = [patterns]
    for pattern in patterns:
        if not glob.glob(pattern):
            raise ConfigError(f"fn_args.{name}: {pattern!r} matches no file")


def config_from_fn_args(fn_args: Any) -> M3SAConfig:
    """The M3SAConfig named by `fn_args.hyperparameters` over the dataset's defaults."""
    custom = dict(getattr(fn_args, "custom_config", None) or {})
    values = hyperparameters_dict(getattr(fn_args, "hyperparameters", None))
    dataset = values.pop("dataset", None) or custom.get("dataset")
    if custom.get("dataset") and dataset != custom["dataset"]:
        raise ConfigError(
            f"custom_config names dataset {custom['dataset']!r} but the hyper-parameters "
            f"name {dataset!r}"
        )
    if not dataset:
        raise ConfigError("fn_args.custom_config['dataset'] is required (e.g. 'synthetic-mosi')")
    # Dotted names ("hidden_sizes.text") set one entry of a mapping, as `--set` does.
    dotted = [f"{k}={json.dumps(v)}" for k, v in values.items() if "." in k]
    plain = {k: v for k, v in values.items() if "." not in k}
    return M3SAConfig.from_overrides(
        dataset, assignments=dotted + list(custom.get("set", [])), **plain)


def run_fn(fn_args: Any) -> Dict[str, Any]:
    """Trains and evaluates M³SA from TFX-style `fn_args`, writes the run directory to
    `fn_args.model_run_dir` and the serving SavedModel to `fn_args.serving_model_dir`;
    returns the metrics dict (one seed) or the mean ± std summary (several)."""
    from pipelines import distribute, training

    config = config_from_fn_args(fn_args)
    custom = dict(getattr(fn_args, "custom_config", None) or {})
    _check_patterns("train_files", getattr(fn_args, "train_files", None))
    _check_patterns("eval_files", getattr(fn_args, "eval_files", None))
    run_dir = getattr(fn_args, "model_run_dir", None)
    serving_dir = getattr(fn_args, "serving_model_dir", None)
    if not run_dir:
        raise ConfigError("fn_args.model_run_dir is required")
    strategy = distribute.resolve_strategy(custom.get("strategy", "auto"))
    kwargs = dict(
        scale=float(custom.get("scale", 1.0)),
        data_seed=int(custom.get("data_seed", 0)),
        strategy=strategy,
        verbose=int(custom.get("verbose", 1)),
    )
    seeds = custom.get("seeds")
    if seeds:
        result = training.train_seeds(config, seeds, custom.get("data_dir"), run_dir, **kwargs)
        # The seed served is the one with the lowest validation loss (never test).
        losses = dict(zip(result["seeds"], result["validation"]["loss"]["values"]))
        best_run = os.path.join(run_dir, f"seed_{min(losses, key=losses.get)}")
    else:
        result = training.train_and_evaluate(config, custom.get("data_dir"), run_dir, **kwargs)
        best_run = run_dir
    if serving_dir and distribute.is_chief(strategy):
        _export_to(best_run, serving_dir)
    return result


def _export_to(run_dir: str, serving_dir: str) -> None:
    """TFX expects the SavedModel itself in `serving_model_dir` (the Pusher versions
    it); `pipelines.export` writes NAME/VERSION/ below a directory, so export to a
    scratch directory beside the target and move the version directory into place."""
    from pipelines import export

    parent = os.path.dirname(os.path.abspath(serving_dir))
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".tmp-serving-", dir=parent)
    try:
        version_dir = export.export_run(run_dir, scratch, model_name="m3sa", version=1)
        if os.path.exists(serving_dir):
            shutil.rmtree(serving_dir)
        os.replace(version_dir, serving_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
