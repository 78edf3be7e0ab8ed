"""One training run of any model of the zoo under the paper's protocol (SPEC §3), and
a list of seeds.

`train_and_evaluate` runs one seed end to end:

1. load (on first use, build) the dataset; the batch size is global;
2. M³SA with key fusion and key modality "auto": train a warm-up model for
   `config.key_warmup_epochs` epochs, rank the unimodal heads on VALIDATION data and
   keep the best (`pipelines.key_selection`). When that is the provisional key, the
   warm-up model continues as the main model (one traced graph for both phases);
   otherwise the model is built with the chosen key and every matching weight is
   copied from the warm-up model. Other models skip this step;
3. fit with early stopping on the validation loss named by `config.best_epoch_monitor`
   (the fused head's by default; patience `config.early_stopping_patience`),
   a checkpoint each epoch (a rerun resumes after the last finished epoch), TensorBoard
   logs and, for M³SA, the subtask-weight schedule;
4. restore the best epoch's weights and test ONCE with them;
5. write the run directory atomically (`pipelines.run_dir`, docs/interfaces.md §4).

`train_seeds` does that per seed and writes mean ± std (`pipelines.reporting`). The
pieces the driver strings together live in `pipelines.protocol`.

Example:

>>> from m3sa_tf import M3SAConfig
>>> config = M3SAConfig.for_dataset("synthetic-mosi", epochs=3)
>>> metrics = train_and_evaluate(config, "~/tensorflow_datasets", "runs/demo",
...                              scale=0.05)                           # doctest: +SKIP
>>> metrics["test"]["Has0_acc_2"]                                      # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import keras

from m3sa_tf import ConfigError, M3SAConfig
from m3sa_tf.models import check_data_supports, copy_matching_weights, get_spec
from msa_core.io import default_data_dir, save_model_atomic, write_json_atomic
from pipelines import distribute, key_selection
from pipelines import run_dir as rundir
from pipelines.checkpointing import ResumableEarlyStopping
from pipelines.experiments import perturbations
from pipelines.protocol import (
    build_compiled_model,
    evaluate_predictions,
    load_data,
    make_callbacks,
    predict_dataset,
)
from pipelines.reporting import format_results_table, format_seeds_table, summarize_seeds
from pipelines.run_dir import RunDirError  # noqa: F401  (raised from here; CLIs catch it)


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
        os.path.join(read_dir, rundir.CHECKPOINT_DIR, name),
        os.path.join(write_dir, rundir.CHECKPOINT_DIR, name),
        monitor="val_" + config.best_epoch_monitor,
        patience=patience,
        session=session,
    )
    with strategy.scope():
        initial_epoch = checkpoint.restore(model)
    if initial_epoch:
        rundir.say(verbose, f"[{name}] resuming after {initial_epoch} finished epoch(s)")
    if initial_epoch >= epochs or checkpoint.finished:
        return checkpoint
    callbacks = make_callbacks(
        config,
        model=model,
        checkpoint=checkpoint,
        tensorboard_dir=os.path.join(write_dir, rundir.TENSORBOARD_DIR, name),
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
            # tf.data already reshuffles every epoch with the run's seed.
            shuffle=False,
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
    if config.uses_key_modality and config.key_modality == "auto" and config.key_warmup_epochs < 1:
        raise ConfigError(
            "key_modality='auto' needs key_warmup_epochs >= 1 to rank the unimodal heads; "
            "set key_warmup_epochs or a fixed key_modality"
        )

    fingerprint = rundir.run_fingerprint(config, scale, data_seed)
    finished = rundir.check_run_dir(output_dir, fingerprint)
    if finished is not None:
        rundir.say(verbose, f"{output_dir} already holds this finished run; not training again")
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
    check_data_supports(config.model, bool(info.has_unimodal_labels), info.name)
    # The task names M³SA's loss; a baseline has its own (docs/baselines.md).
    task = (config.resolve_task(bool(info.has_unimodal_labels))
            if config.model == "m3sa" else None)
    if config.modality_dropout > 0:
        # Per clip and used modality, removed before the model sees it (training only).
        datasets = dict(datasets, train=perturbations.apply_modality_dropout(
            datasets["train"], config.modality_dropout, config.modalities, seed=config.seed))
    fit_sets = _fit_datasets(datasets, strategy)

    with distribute.write_dir_for(output_dir, strategy) as write_dir:
        os.makedirs(os.path.join(write_dir, rundir.CHECKPOINT_DIR), exist_ok=True)
        checkpoint_root = os.path.join(output_dir, rundir.CHECKPOINT_DIR)
        previous = rundir.read_optional_json(os.path.join(checkpoint_root, rundir.RUN_FILE)) or {}
        session = int(previous.get("sessions", 0))
        write_json_atomic(
            os.path.join(write_dir, rundir.CHECKPOINT_DIR, rundir.RUN_FILE),
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
        warm_model, continue_warm_model = None, False
        if config.uses_key_modality:
            key = config.key_modality
            if key == "auto":
                (key, scores, rankings, warm_log, warm_model,
                 continue_warm_model) = key_selection.warm_up_and_choose(
                    info, eval_sets["valid"], phase_args, write_dir, verbose, _fit_phase
                )
                selection.update(
                    warmup_epochs=config.key_warmup_epochs,
                    warmup_learning_rate=config.warmup_learning_rate,
                    rule=config.key_modality_rule,
                    unimodal_validation_accuracy=scores,
                    rankings=rankings,
                )
        selection["key_modality"] = key

        # ---- main fit
        if continue_warm_model:
            # The key stayed the provisional one: the warm-up model is the main model
            # (same layers, the warm-up's weights) and keeps its traced functions.
            model = warm_model
            with strategy.scope():
                key_selection.continue_after_warmup(model, config)
            selection["main_fit_start"] = "warm-up model continued"
        else:
            model = build_compiled_model(config, info, key_modality=key, strategy=strategy)
            if warm_model is not None:
                with strategy.scope():
                    selection["copied_layers"] = list(
                        copy_matching_weights(warm_model, model)
                    )
                selection["main_fit_start"] = "rebuilt with the chosen key"
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
            "model": config.model,
            "model_title": get_spec(config.model).title,
            "parameters": int(model.count_params()),
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
            "hyperparameters": resolved.reported_dict(),
            "requested_hyperparameters": config.to_dict(),
            "wall_time_per_epoch_s": float(np.median(seconds)) if seconds else None,
            "epoch_log": [dict(r, phase="warmup") for r in warm_log]
            + [dict(r, phase="main") for r in main_log],
            "strategy": type(strategy).__name__,
            "num_replicas": int(strategy.num_replicas_in_sync),
            "run_fingerprint": fingerprint,
        }
        # The "embedding" text path started from config.word_vectors (protocol).
        if getattr(model, "word_vectors_coverage", None) is not None:
            metrics["word_vectors_coverage"] = float(model.word_vectors_coverage)
        rundir.write_predictions_csv(
            os.path.join(write_dir, rundir.PREDICTIONS_DIR, "test.csv"), test_predictions)
        write_json_atomic(os.path.join(write_dir, rundir.CONFIG_FILE), resolved.to_dict())
        write_json_atomic(os.path.join(write_dir, rundir.DATASET_FILE), info.to_dict())
        save_model_atomic(model, os.path.join(write_dir, rundir.MODEL_FILE))
        # metrics.json last: its presence marks the run as finished.
        write_json_atomic(os.path.join(write_dir, rundir.METRICS_FILE), metrics)
    if verbose:
        print(format_results_table(metrics), flush=True)
    return metrics


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
        rundir.say(verbose, f"=== seed {seed}")
        per_seed[seed] = train_and_evaluate(
            config.replace(seed=seed), data_dir, os.path.join(output_dir, f"seed_{seed}"), **kwargs
        )
    summary = summarize_seeds(per_seed)
    if distribute.is_chief(kwargs.get("strategy")):
        write_json_atomic(os.path.join(output_dir, rundir.METRICS_FILE), summary)
    if verbose:
        print(format_seeds_table(summary), flush=True)
    return summary
