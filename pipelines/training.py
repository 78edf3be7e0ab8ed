"""M³SA's training protocol (SPEC §3) as reusable pieces and one driver.

The driver, `train_and_evaluate`, runs one seed end to end:

1. load (on first use, build) the dataset; the batch size is global;
2. key modality "auto": train a warm-up model (provisional key "text") for
   `config.key_warmup_epochs` epochs, rank the unimodal heads by `unimodal_accuracy` on
   VALIDATION data, keep the best, build the real model with that key and copy every
   matching weight from the warm-up model;
3. fit with early stopping on the validation loss named by `config.best_epoch_monitor`
   (the fused head's by default; patience `config.early_stopping_patience`),
   a checkpoint each epoch (a rerun resumes after the last finished epoch), TensorBoard
   logs and the subtask-weight schedule;
4. restore the best epoch's weights and test ONCE with them;
5. write the run directory atomically (docs/interfaces.md §4).

The pieces (`make_optimizer`, `compile_model`, `build_compiled_model`, `make_callbacks`,
`load_data`, `predict_dataset`, `select_key_modality`, `evaluate_predictions`) are what
the tuner and the TFX entry point reuse.

Example:

>>> from m3sa_tf import M3SAConfig
>>> config = M3SAConfig.for_dataset("synthetic-mosi", epochs=3)
>>> metrics = train_and_evaluate(config, "~/tensorflow_datasets", "runs/demo",
...                              scale=0.05)                           # doctest: +SKIP
>>> metrics["test"]["Has0_acc_2"]                                      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import keras

import tfrecords
from m3sa_tf import MODALITIES, ConfigError, M3SAConfig
from m3sa_tf import metrics as msa_metrics
from m3sa_tf import models as msa_models
from m3sa_tf.losses import SubtaskWeightScheduler
from pipelines import distribute
from pipelines.checkpointing import ResumableEarlyStopping
from pipelines.io_utils import (
    save_model_atomic,
    write_csv_atomic,
    write_json_atomic,
)

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
    """An output directory that holds a different run than the one asked for."""


# ============================================================================ pieces
def default_data_dir() -> str:
    """$M3SA_DATA_DIR, else ~/tensorflow_datasets (docs/interfaces.md §1)."""
    return os.environ.get("M3SA_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def make_optimizer(config: M3SAConfig) -> keras.optimizers.Optimizer:
    """AdamW with the config's learning rate, weight decay and gradient-norm clipping."""
    kwargs = {}
    if config.gradient_clip_norm is not None:
        kwargs["clipnorm"] = float(config.gradient_clip_norm)
    return keras.optimizers.AdamW(
        learning_rate=float(config.learning_rate),
        weight_decay=float(config.weight_decay),
        **kwargs,
    )


def compile_model(model: keras.Model, config: M3SAConfig) -> keras.Model:
    """Compiles `model` with `make_optimizer(config)`; the loss is the model's own
    (`M3SAModel.compute_loss`, eq. 25 or eqs 26–27). Returns the model."""
    model.compile(optimizer=make_optimizer(config))
    return model


def build_compiled_model(
    config: M3SAConfig,
    info,
    *,
    key_modality: Optional[str] = None,
    strategy: Optional[tf.distribute.Strategy] = None,
) -> keras.Model:
    """Builds (seeded with `config.seed`) and compiles the model under `strategy`."""
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = msa_models.build_model(
            config,
            dict(info.feature_dims),
            bool(info.has_unimodal_labels),
            key_modality=key_modality,
        )
        compile_model(model, config)
    return model


def load_data(
    config: M3SAConfig,
    data_dir: Optional[str],
    *,
    scale: float = 1.0,
    data_seed: int = 0,
    keep_ids: bool = False,
    shuffle: bool = True,
    build_if_missing: bool = True,
    splits: Sequence[str] = ("train", "valid", "test"),
):
    """`tfrecords.load_dataset` with the config's global batch size and seed.

    The training order then depends on `config.seed` alone, whatever ran before in this
    process: tf.data's shuffle mixes its own seed with TensorFlow's global seed, which
    an earlier run (the previous entry of `--seeds`, an earlier tuner trial) left set by
    seeding its model. The global seed is cleared here, as a fresh process has it, so
    the same seed trains to the same numbers alone, in a list of seeds or in a search;
    every model build sets it again (`build_compiled_model`).
    """
    tf.random.set_seed(None)
    return tfrecords.load_dataset(
        config.dataset,
        data_dir,
        scale=scale,
        seed=data_seed,
        batch_size=config.batch_size,
        shuffle=shuffle,
        shuffle_seed=config.seed,
        keep_ids=keep_ids,
        build_if_missing=build_if_missing,
        splits=tuple(splits),
    )


def make_callbacks(
    config: M3SAConfig,
    *,
    checkpoint: Optional[ResumableEarlyStopping] = None,
    tensorboard_dir: Optional[str] = None,
    extra_callbacks: Iterable[keras.callbacks.Callback] = (),
) -> List[keras.callbacks.Callback]:
    """The callbacks of one fit: the subtask-weight schedule, the checkpoint/early
    stopping callback, TensorBoard, then `extra_callbacks` (which therefore see an
    epoch only after it is checkpointed)."""
    callbacks: List[keras.callbacks.Callback] = [SubtaskWeightScheduler(config)]
    if checkpoint is not None:
        callbacks.append(checkpoint)
    if tensorboard_dir is not None:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=tensorboard_dir,
                histogram_freq=0,
                write_graph=False,
                update_freq="epoch",
                profile_batch=0,
            )
        )
    callbacks.extend(extra_callbacks)
    return callbacks


def predict_dataset(model: keras.Model, dataset: tf.data.Dataset) -> Dict[str, np.ndarray]:
    """Runs `model` over `dataset` (no strategy, no shuffling of its own) and returns
    numpy arrays: `id` (when the dataset has ids), `label_<key>` per label and one array
    per output among fused/text/audio/vision.

    A plain loop rather than `model.predict`: every worker of a multi-worker run
    computes the same full predictions with no collective op, in dataset order.
    """

    @tf.function(reduce_retracing=True)
    def forward(features):
        return model(features, training=False)

    collected: Dict[str, List[np.ndarray]] = {}
    for features, labels in dataset:
        features = dict(features)
        ids = features.pop("id", None)
        outputs = forward(features)
        if ids is not None:
            collected.setdefault("id", []).append(ids.numpy())
        for key, value in labels.items():
            collected.setdefault(f"label_{key}", []).append(value.numpy())
        for key in ("fused",) + MODALITIES:
            if key in outputs:
                collected.setdefault(key, []).append(np.asarray(outputs[key]).reshape(-1))
    result = {key: np.concatenate(parts) for key, parts in collected.items()}
    if "id" in result:
        result["id"] = np.array([v.decode("utf-8") for v in result["id"]], dtype=object)
    return result


def unimodal_scores(
    predictions: Mapping[str, np.ndarray], family: str, modalities: Sequence[str]
) -> Dict[str, float]:
    """`unimodal_accuracy` of each unimodal head, against the modality's own label when
    the data has one (SIMS) and against the fused label otherwise (MOSI/MOSEI)."""
    scores = {}
    for modality in modalities:
        if modality not in predictions:
            continue
        truth = predictions.get(f"label_{modality}", predictions["label_fused"])
        scores[modality] = float(
            msa_metrics.unimodal_accuracy(family, truth, predictions[modality])
        )
    return scores


def select_key_modality(
    model: keras.Model,
    valid_dataset: tf.data.Dataset,
    family: str,
    modalities: Sequence[str],
) -> Tuple[str, Dict[str, float]]:
    """The paper's key-modality rule (§III-B): the modality whose unimodal head is most
    accurate on VALIDATION data (ties go to the earlier modality in `modalities`).
    Returns (key, {modality: accuracy})."""
    predictions = predict_dataset(model, valid_dataset)
    scores = unimodal_scores(predictions, family, modalities)
    if not scores:
        raise ConfigError(f"the model has no unimodal head among {list(modalities)}")
    best = max(scores.values())
    key = next(m for m in modalities if scores.get(m) == best)
    return key, scores


def evaluate_predictions(
    predictions: Mapping[str, np.ndarray], family: str, modalities: Sequence[str]
) -> Dict[str, Any]:
    """The dataset's metrics of the fused predictions, plus each unimodal head's
    `unimodal_accuracy` under "unimodal_accuracy"."""
    metrics: Dict[str, Any] = dict(
        msa_metrics.compute_metrics(family, predictions["label_fused"], predictions["fused"])
    )
    metrics["unimodal_accuracy"] = unimodal_scores(predictions, family, modalities)
    return metrics


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
    write_csv_atomic(path, PREDICTION_COLUMNS, rows)


def run_fingerprint(config: M3SAConfig, scale: float, data_seed: int) -> str:
    """What a run directory's checkpoints and results belong to."""
    payload = json.dumps(
        {"config": config.to_dict(), "scale": float(scale), "data_seed": int(data_seed)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# ============================================================================ driver
def _say(verbose: int, message: str) -> None:
    if verbose:
        print(message, flush=True)


def _check_run_dir(output_dir: str, fingerprint: str, config: M3SAConfig) -> Optional[dict]:
    """Returns the finished run's metrics when `output_dir` already holds this run;
    raises RunDirError when it holds checkpoints or results of a different one."""
    run_file = os.path.join(output_dir, CHECKPOINT_DIR, RUN_FILE)
    metrics_file = os.path.join(output_dir, METRICS_FILE)
    for path in (run_file, metrics_file):
        if not os.path.exists(path):
            continue
        try:
            with open(path, "r", encoding="utf-8") as handle:
                recorded = json.load(handle).get("run_fingerprint")
        except (OSError, json.JSONDecodeError) as err:
            raise RunDirError(f"cannot read {path}: {err}") from err
        if recorded != fingerprint:
            raise RunDirError(
                f"{output_dir} holds a run with other hyper-parameters or data "
                f"({path} has fingerprint {recorded}, this run is {fingerprint}); use "
                "another --output-dir, or delete that directory to start over"
            )
    if os.path.exists(metrics_file):
        with open(metrics_file, "r", encoding="utf-8") as handle:
            return json.load(handle)
    return None


def _fit_phase(
    *,
    name: str,
    model: keras.Model,
    config: M3SAConfig,
    datasets: Mapping[str, tf.data.Dataset],
    epochs: int,
    patience: Optional[int],
    read_dir: str,
    write_dir: str,
    strategy: tf.distribute.Strategy,
    session: int,
    verbose: int,
    extra_callbacks: Iterable[keras.callbacks.Callback],
) -> ResumableEarlyStopping:
    """Fits one phase ("warmup" or "main") with resume; returns its checkpoint callback
    (its state holds the epoch log and the best epoch)."""
    checkpoint = ResumableEarlyStopping(
        os.path.join(read_dir, CHECKPOINT_DIR, name),
        os.path.join(write_dir, CHECKPOINT_DIR, name),
        monitor="val_" + config.best_epoch_monitor,
        patience=patience,
        session=session,
    )
    with strategy.scope():
        initial_epoch = checkpoint.restore(model)
    if initial_epoch:
        _say(verbose, f"[{name}] resuming after {initial_epoch} finished epoch(s)")
    if initial_epoch >= epochs or checkpoint.finished:
        return checkpoint
    callbacks = make_callbacks(
        config,
        checkpoint=checkpoint,
        tensorboard_dir=os.path.join(write_dir, TENSORBOARD_DIR, name),
        extra_callbacks=extra_callbacks,
    )
    with distribute.multi_worker_keras_fix(strategy):
        model.fit(
            datasets["train"],
            validation_data=datasets["valid"],
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
    return checkpoint


def _barrier(strategy: tf.distribute.Strategy) -> None:
    """Blocks until every worker reaches it (a collective all-reduce of a constant)."""
    if distribute.is_multi_worker(strategy):
        strategy.reduce(
            "SUM", strategy.run(lambda: tf.constant(1.0)), axis=None
        ).numpy()


def _fit_datasets(datasets, strategy):
    if not distribute.is_multi_worker(strategy):
        return datasets
    options = distribute.shard_policy_options()
    return {split: ds.with_options(options) for split, ds in datasets.items()}


def train_and_evaluate(
    config: M3SAConfig,
    data_dir: Optional[str],
    output_dir: str,
    *,
    scale: float = 1.0,
    data_seed: int = 0,
    strategy: Optional[tf.distribute.Strategy] = None,
    verbose: int = 1,
    extra_callbacks: Iterable[keras.callbacks.Callback] = (),
) -> Dict[str, Any]:
    """Runs the whole protocol for one seed (module docstring) and returns the metrics
    dict it wrote to `output_dir/metrics.json`. `extra_callbacks` join the main fit
    (not the key-modality warm-up) after the checkpoint callback.

    Rerunning with the same arguments after a kill resumes after the last finished
    epoch; rerunning a finished run returns its metrics without training. Under a
    multi-worker strategy every worker calls this; only the chief writes `output_dir`.

    Raises:
        ConfigError: a configuration the data cannot serve (e.g. multitask on MOSI).
        tfrecords.DatasetNotBuiltError: a real dataset that is not built yet.
        RunDirError: `output_dir` holds a different run.
    """
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    verbose = verbose if chief else 0
    data_dir = os.path.expanduser(data_dir or default_data_dir())
    output_dir = os.path.abspath(os.path.expanduser(output_dir))
    extra_callbacks = list(extra_callbacks)
    if config.fusion == "key" and config.key_modality == "auto" and config.key_warmup_epochs < 1:
        raise ConfigError(
            "key_modality='auto' needs key_warmup_epochs >= 1 to rank the unimodal heads; "
            "set key_warmup_epochs or a fixed key_modality"
        )

    fingerprint = run_fingerprint(config, scale, data_seed)
    finished = _check_run_dir(output_dir, fingerprint, config)
    if finished is not None:
        _say(verbose, f"{output_dir} already holds this finished run; not training again")
        return finished

    # Only the chief builds a missing synthetic dataset; the others wait for it.
    if chief:
        load_data(config, data_dir, scale=scale, data_seed=data_seed, splits=("train",))
    _barrier(strategy)
    datasets, info = load_data(config, data_dir, scale=scale, data_seed=data_seed)
    eval_sets, _ = load_data(
        config, data_dir, scale=scale, data_seed=data_seed, keep_ids=True, shuffle=False,
        splits=("valid", "test"),
    )
    task = config.resolve_task(bool(info.has_unimodal_labels))
    fit_sets = _fit_datasets(datasets, strategy)

    with distribute.write_dir_for(output_dir, strategy) as write_dir:
        os.makedirs(os.path.join(write_dir, CHECKPOINT_DIR), exist_ok=True)
        checkpoint_root = os.path.join(output_dir, CHECKPOINT_DIR)
        previous = _read_json(os.path.join(checkpoint_root, RUN_FILE)) or {}
        session = int(previous.get("sessions", 0))
        write_json_atomic(
            os.path.join(write_dir, CHECKPOINT_DIR, RUN_FILE),
            {"run_fingerprint": fingerprint, "sessions": session + 1,
             "config": config.to_dict(), "scale": scale, "data_seed": data_seed},
        )
        phase_args = dict(
            config=config, datasets=fit_sets, read_dir=output_dir, write_dir=write_dir,
            strategy=strategy, session=session, verbose=verbose,
        )

        # ---- key modality
        selection: Dict[str, Any] = {"requested": config.key_modality}
        warm_log: List[dict] = []
        key = None
        if config.fusion == "key":
            key = config.key_modality
            if key == "auto":
                key, scores, warm_log, warm_model = _warm_up_and_choose(
                    info, eval_sets["valid"], phase_args, write_dir, verbose
                )
                selection.update(
                    warmup_epochs=config.key_warmup_epochs,
                    warmup_learning_rate=config.warmup_learning_rate,
                    unimodal_validation_accuracy=scores,
                )
        selection["key_modality"] = key

        # ---- main fit
        model = build_compiled_model(config, info, key_modality=key, strategy=strategy)
        if config.fusion == "key" and config.key_modality == "auto":
            with strategy.scope():
                selection["copied_layers"] = list(
                    msa_models.copy_matching_weights(warm_model, model)
                )
            del warm_model
        checkpoint = _fit_phase(
            name="main", model=model, epochs=config.epochs,
            patience=config.early_stopping_patience, extra_callbacks=extra_callbacks,
            **phase_args,
        )
        with strategy.scope():
            checkpoint.load_best(model)

        # ---- test once, with the best weights
        valid_predictions = predict_dataset(model, eval_sets["valid"])
        test_predictions = predict_dataset(model, eval_sets["test"])
        modalities = tuple(config.modalities)
        validation = evaluate_predictions(valid_predictions, info.family, modalities)
        validation["loss"] = checkpoint.state["best_value"]
        test = evaluate_predictions(test_predictions, info.family, modalities)

        main_log = checkpoint.log
        # The median ignores the first epoch of a session, which also traces the graphs.
        seconds = [r["seconds"] for r in main_log]
        resolved = config.replace(key_modality=key) if key else config
        metrics: Dict[str, Any] = {
            "dataset": info.name,
            "family": info.family,
            "task": task,
            "seed": config.seed,
            "scale": scale,
            "data_seed": data_seed,
            "key_modality": key,
            "key_modality_selection": selection,
            "unimodal_validation_scores": selection.get(
                "unimodal_validation_accuracy", validation["unimodal_accuracy"]
            ),
            "best_epoch": None if checkpoint.state["best_epoch"] is None
            else int(checkpoint.state["best_epoch"]) + 1,
            "epochs_trained": int(checkpoint.state["epochs_done"]),
            "stopped_early": bool(checkpoint.state["stopped"]),
            "test": test,
            "validation": validation,
            "bayes_reference": (info.bayes_reference or {}).get("test"),
            "hyperparameters": resolved.to_dict(),
            "requested_hyperparameters": config.to_dict(),
            "wall_time_per_epoch_s": float(np.median(seconds)) if seconds else None,
            "epoch_log": [dict(r, phase="warmup") for r in warm_log]
            + [dict(r, phase="main") for r in main_log],
            "strategy": type(strategy).__name__,
            "num_replicas": int(strategy.num_replicas_in_sync),
            "run_fingerprint": fingerprint,
        }
        write_predictions_csv(os.path.join(write_dir, PREDICTIONS_DIR, "test.csv"), test_predictions)
        write_json_atomic(os.path.join(write_dir, CONFIG_FILE), resolved.to_dict())
        write_json_atomic(os.path.join(write_dir, DATASET_FILE), info.to_dict())
        save_model_atomic(model, os.path.join(write_dir, MODEL_FILE))
        # metrics.json last: its presence marks the run as finished.
        write_json_atomic(os.path.join(write_dir, METRICS_FILE), metrics)
    if verbose:
        print(format_results_table(metrics), flush=True)
    return metrics


def _warm_up_and_choose(info, valid_eval, phase_args, write_dir, verbose):
    """Warm-up phase with the provisional key, then the validation ranking. The choice
    is stored in checkpoints/key_modality.json so that a resumed run keeps it."""
    config: M3SAConfig = phase_args["config"]
    strategy = phase_args["strategy"]
    provisional = "text" if "text" in config.modalities else config.modalities[0]
    # The heads are ranked by how well they predict, so the warm-up must train them:
    # it always uses the multi-task loss (eq. 25). Data without unimodal labels
    # (MOSI, MOSEI) trains them on the fused label, the only label there is; the
    # contrastive loss of the main fit gives the unimodal heads no gradient at all.
    warm_info = info
    warm_sets = dict(phase_args["datasets"])
    if not info.has_unimodal_labels:
        import dataclasses

        warm_info = dataclasses.replace(info, has_unimodal_labels=True)
        modalities = tuple(config.modalities)

        def proxy_labels(features, labels):
            return features, {**labels, **{m: labels["fused"] for m in modalities}}

        warm_sets = {split: ds.map(proxy_labels) for split, ds in warm_sets.items()}
    warm_config = config.replace(task="multitask", learning_rate=config.warmup_learning_rate)
    warm_model = build_compiled_model(
        warm_config, warm_info, key_modality=provisional, strategy=strategy
    )
    warm_args = dict(phase_args, config=warm_config, datasets=warm_sets)
    checkpoint = _fit_phase(
        name="warmup", model=warm_model, epochs=config.key_warmup_epochs, patience=None,
        extra_callbacks=(), **warm_args,
    )
    stored = _read_json(os.path.join(phase_args["read_dir"], CHECKPOINT_DIR, KEY_FILE))
    if stored is not None:
        key, scores = stored["key_modality"], stored["unimodal_validation_accuracy"]
    else:
        key, scores = select_key_modality(
            warm_model, valid_eval, info.family, tuple(config.modalities)
        )
        write_json_atomic(
            os.path.join(write_dir, CHECKPOINT_DIR, KEY_FILE),
            {"key_modality": key, "unimodal_validation_accuracy": scores},
        )
    _say(verbose, f"key modality: {key} (validation accuracy of the unimodal heads: "
         + ", ".join(f"{m} {v:.4f}" for m, v in scores.items()) + ")")
    return key, scores, checkpoint.log, warm_model


def _read_json(path: str) -> Optional[dict]:
    if not os.path.exists(path):
        return None
    with open(path, "r", encoding="utf-8") as handle:
        return json.load(handle)


# ============================================================================ seeds
def _mean_std(values: Sequence[float]) -> Dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std()), "values": [float(v) for v in array]}


def summarize_seeds(per_seed: Mapping[int, Mapping[str, Any]]) -> Dict[str, Any]:
    """Mean ± std (population std, as MMSA reports it) of every numeric test and
    validation metric over the seeds' metrics dicts."""
    seeds = sorted(per_seed)
    summary: Dict[str, Any] = {"seeds": seeds, "runs": {str(s): f"seed_{s}" for s in seeds}}
    for split in ("test", "validation"):
        names = [k for k, v in per_seed[seeds[0]][split].items() if isinstance(v, (int, float))]
        summary[split] = {
            name: _mean_std([per_seed[s][split][name] for s in seeds]) for name in names
        }
    summary["key_modality"] = {str(s): per_seed[s]["key_modality"] for s in seeds}
    summary["best_epoch"] = {str(s): per_seed[s]["best_epoch"] for s in seeds}
    first = per_seed[seeds[0]]
    for key in ("dataset", "family", "task", "bayes_reference"):
        summary[key] = first.get(key)
    return summary


def train_seeds(
    config: M3SAConfig,
    seeds: Sequence[int],
    data_dir: Optional[str],
    output_dir: str,
    **kwargs: Any,
) -> Dict[str, Any]:
    """`train_and_evaluate` once per seed into `output_dir/seed_<s>/`, then writes
    `output_dir/metrics.json` with mean ± std over the seeds and returns it. Finished
    seeds are not trained again on a rerun. `kwargs` go to `train_and_evaluate`."""
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct integers, got {seeds}")
    verbose = kwargs.get("verbose", 1)
    per_seed = {}
    for seed in seeds:
        _say(verbose, f"=== seed {seed}")
        per_seed[seed] = train_and_evaluate(
            config.replace(seed=seed), data_dir, os.path.join(output_dir, f"seed_{seed}"), **kwargs
        )
    summary = summarize_seeds(per_seed)
    if distribute.is_chief(kwargs.get("strategy")):
        write_json_atomic(os.path.join(output_dir, METRICS_FILE), summary)
    if verbose:
        print(format_seeds_table(summary), flush=True)
    return summary


# ============================================================================ tables
def format_results_table(metrics: Mapping[str, Any]) -> str:
    """A short text table of the test (and validation) metrics next to the synthetic
    generator's Bayes-optimal reference when there is one."""
    reference = metrics.get("bayes_reference") or {}
    names = [k for k, v in metrics["test"].items() if isinstance(v, (int, float))]
    lines = [
        f"{metrics['dataset']} seed {metrics['seed']}: key modality {metrics['key_modality']}, "
        f"best epoch {metrics['best_epoch']} of {metrics['epochs_trained']}, "
        f"{metrics['wall_time_per_epoch_s']:.1f} s/epoch"
        if metrics.get("wall_time_per_epoch_s") is not None
        else f"{metrics['dataset']} seed {metrics['seed']}",
        f"{'metric':<14}{'test':>10}{'valid':>10}{'Bayes ref':>11}",
    ]
    for name in names:
        ref = reference.get(name)
        valid = metrics["validation"].get(name)
        lines.append(
            f"{name:<14}{metrics['test'][name]:>10.4f}"
            f"{(valid if valid is not None else float('nan')):>10.4f}"
            + (f"{ref:>11.4f}" if isinstance(ref, (int, float)) else f"{'':>11}")
        )
    return "\n".join(lines)


def format_seeds_table(summary: Mapping[str, Any]) -> str:
    """Mean ± std of the test metrics over seeds, one line per metric."""
    lines = [f"{summary['dataset']}: {len(summary['seeds'])} seeds {summary['seeds']}"]
    for name, stats in summary["test"].items():
        lines.append(f"{name:<14}{stats['mean']:>10.4f} ± {stats['std']:.4f}")
    return "\n".join(lines)


# ============================================================================ evaluate
def evaluate_run(
    run_dir: str, split: str = "test", data_dir: Optional[str] = None, *, write: bool = True
) -> Dict[str, Any]:
    """Re-evaluates a finished run directory's model on `split` ("train", "valid",
    "test"): loads RUN/model.keras and RUN/dataset.json, predicts the split, and (when
    `write`) writes RUN/evaluation_<split>.json and RUN/predictions/<split>.csv."""
    if split not in ("train", "valid", "test"):
        raise ConfigError(f"split {split!r} is not one of ['train', 'valid', 'test']")
    paths = {name: os.path.join(run_dir, name) for name in (CONFIG_FILE, DATASET_FILE, MODEL_FILE)}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        raise RunDirError(
            f"{run_dir} is not a finished run directory: missing {missing}"
        )
    with open(paths[CONFIG_FILE], "r", encoding="utf-8") as handle:
        config = M3SAConfig.from_json(handle.read())
    with open(paths[DATASET_FILE], "r", encoding="utf-8") as handle:
        info = tfrecords.DatasetInfo.from_dict(json.load(handle))
    model = keras.models.load_model(paths[MODEL_FILE])
    datasets, _ = load_data(
        config, data_dir or default_data_dir(), scale=info.scale, data_seed=info.seed,
        keep_ids=True, shuffle=False, build_if_missing=False, splits=(split,),
    )
    predictions = predict_dataset(model, datasets[split])
    result = evaluate_predictions(predictions, info.family, tuple(config.modalities))
    if write:
        write_predictions_csv(os.path.join(run_dir, PREDICTIONS_DIR, f"{split}.csv"), predictions)
        write_json_atomic(os.path.join(run_dir, f"evaluation_{split}.json"), result)
    return result
