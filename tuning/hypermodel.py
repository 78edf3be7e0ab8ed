"""`M3SAHyperModel`: a keras-tuner HyperModel over the model and training code of
`pipelines.train`, for any model of the zoo (`base_config.model`: M³SA or a baseline).

There is no second training loop here. `build(hp)` turns the trial's hyper-parameters
into an `M3SAConfig` (`base_config.replace(...)`; the space is the model's, see
`tuning.space`) and builds and compiles the model with
`pipelines.protocol.build_compiled_model` (seeded from the config; it builds
`config.model` through the model registry). `fit(hp, model, ...)` trains it with the
training library's callbacks (`pipelines.protocol.make_callbacks`: the subtask-weight
schedule for a model with an `M3SALoss`; the protocol's early
stopping on validation loss, `ResumableEarlyStopping`, which also checkpoints every epoch
into the trial's directory so that a trial cut short resumes at its last finished
epoch) plus `MSAMetricsCallback` on the validation split, and returns the objective.
The metrics and the best-epoch loss (`val_fused_loss`) come from the `fused` output,
which every model has, so models without unimodal heads are scored the same way.

A baseline's space may search `batch_size`; a trial whose batch size is not the base
configuration's trains on data loaded with its own (`data_loader`), as
`pipelines.train` would load it.

The objective of a trial is read at the epoch the training protocol would keep, the one
with the lowest validation loss (early stopping's best epoch), not at the epoch where the
objective itself happened to peak; so it is the number `pipelines.train` would report on
validation data for these hyper-parameters, at the trial's epoch budget.

Example:

>>> hypermodel = M3SAHyperModel(M3SAConfig.for_dataset("synthetic-mosi"), info,
...                             objective="val_MAE", epochs=5)        # doctest: +SKIP
>>> tuner = keras_tuner.RandomSearch(hypermodel, objective=..., max_trials=3)
...                                                                   # doctest: +SKIP
>>> tuner.search(train, validation_data=valid)                        # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional

import keras_tuner

from m3sa_tf.config import M3SAConfig
from m3sa_tf.metrics import MSAMetricsCallback
from m3sa_tf.models.registry import check_data_supports
from pipelines import protocol
from pipelines import run_dir as rundir
from pipelines.checkpointing import ResumableEarlyStopping
from tuning import results, space
from tuning.objective import is_metric_objective



def early_stopping_monitor(config: M3SAConfig) -> str:
    """The validation loss that picks a trial's best epoch, as in pipelines.train
    (`M3SAConfig.best_epoch_monitor`), so a trial scores the epoch a run would keep."""
    return "val_" + config.best_epoch_monitor


class M3SAHyperModel(keras_tuner.HyperModel):
    """Search space, model and training of a model of the zoo for keras-tuner.

    Args:
        base_config: the configuration every trial starts from; searched fields are
            overridden per trial (`tuning.space` lists them and their ranges).
        dataset_info: the `tfrecords.DatasetInfo` of the data (feature widths, whether it
            has unimodal labels, the metric family).
        fixed: configuration keys held at their base value instead of searched (e.g. the
            keys a user set on the command line).
        objective: the validation quantity a trial reports (`tuning.objective`).
        epochs: per-trial epoch budget (default `base_config.epochs`); Hyperband passes
            its own per-round budget to `fit`.
        verbose: Keras' fit verbosity.
        extra_callbacks: Keras callbacks added to every trial's fit, used as they are.
        data_loader: `data_loader(config) -> {"train": ..., "valid": ...}`, the splits
            batched with `config.batch_size`; used for a trial whose batch size is not
            the base configuration's (the data handed to `fit` is batched with that).
        name: keras-tuner's name of the hypermodel (default: the model's name).

    `fit` expects the training dataset as its first argument and `validation_data=`
    (what `tuner.search(train, validation_data=valid)` passes on) and returns a dict:
    the objective plus `epochs_run`, `best_epoch` (0-based) and `seconds`, which the
    oracle stores with the trial (so they travel to the chief in distributed tuning).
    """

    def __init__(self, base_config: M3SAConfig, dataset_info, *, fixed: Iterable[str] = (),
                 objective: str = "val_MAE", epochs: Optional[int] = None, verbose: int = 0,
                 extra_callbacks=(), data_loader=None, name: Optional[str] = None):
        super().__init__(name=name or base_config.model, tunable=True)
        self.base_config = base_config
        self.dataset_info = dataset_info
        self.fixed = frozenset(fixed)
        self.objective = objective
        self.epochs = int(epochs if epochs is not None else base_config.epochs)
        self.verbose = verbose
        self.extra_callbacks = list(extra_callbacks)
        self.data_loader = data_loader
        # Fail now, not in the first trial, on a base configuration the data cannot serve.
        base_config.resolve_task(bool(dataset_info.has_unimodal_labels))
        check_data_supports(base_config.model, bool(dataset_info.has_unimodal_labels),
                            base_config.dataset)
        # ... or on a model whose space names something it cannot set.
        self.search_space_names()

    # ------------------------------------------------------------------ configurations
    def search_space_names(self) -> List[str]:
        """Names of the searched hyper-parameters."""
        hp = keras_tuner.HyperParameters()
        space.declare(hp, self.base_config, bool(self.dataset_info.has_unimodal_labels),
                      self.fixed)
        return sorted(hp.values)

    def config_for_values(self, values: Mapping[str, Any]) -> M3SAConfig:
        """The full configuration for a trial's hyper-parameter values, with the base
        configuration's `epochs` (the budget of a real training run, not of a trial)."""
        return space.config_from_values(values, self.base_config)

    def trial_config(self, hp) -> M3SAConfig:
        """Declares the space on `hp`; the trial's configuration with the trial budget."""
        config = space.config_from_hyperparameters(
            hp, self.base_config, bool(self.dataset_info.has_unimodal_labels), self.fixed
        )
        return config.replace(epochs=self.epochs)

    # ------------------------------------------------------------------ keras-tuner API
    def build(self, hp):
        config = self.trial_config(hp)
        return protocol.build_compiled_model(config, self.dataset_info)

    def fit(self, hp, model, x, *, validation_data=None, callbacks=(), epochs=None,
            initial_epoch: int = 0, verbose=None, trial_dir: Optional[str] = None,
            **unused) -> Dict[str, float]:
        if validation_data is None:
            raise ValueError("M3SAHyperModel.fit needs validation_data (the valid split)")
        config = self.trial_config(hp)
        epochs = int(epochs if epochs is not None else config.epochs)
        x, validation_data = self.trial_data(config, x, validation_data)
        scratch = None
        if trial_dir is None:
            scratch = trial_dir = tempfile.mkdtemp(prefix="m3sa_trial_")
        checkpoint_dir = os.path.join(trial_dir, rundir.CHECKPOINT_DIR)
        checkpoint = ResumableEarlyStopping(
            checkpoint_dir, checkpoint_dir, monitor=early_stopping_monitor(config),
            patience=config.early_stopping_patience,
        )
        started = time.monotonic()
        try:
            restored = checkpoint.restore(model)
            initial_epoch = max(int(initial_epoch), restored)
            if initial_epoch < epochs and not checkpoint.finished:
                # The metrics callback goes first: the checkpoint's epoch log, early
                # stopping and keras-tuner's own callbacks all read its val_ metrics.
                trial_callbacks = protocol.make_callbacks(
                    config,
                    model=model,  # the subtask-weight schedule only for an M3SALoss
                    checkpoint=None,
                    tensorboard_dir=None,
                    extra_callbacks=[
                        MSAMetricsCallback(validation_data, self.dataset_info.family,
                                           prefix="val_", on_nonfinite="nan"),
                        checkpoint,
                        *self.extra_callbacks,
                        *list(callbacks or ()),
                    ],
                )
                # shuffle=False: tf.data reshuffles the training split every epoch.
                model.fit(x, validation_data=validation_data, epochs=epochs,
                          initial_epoch=initial_epoch, callbacks=trial_callbacks,
                          shuffle=False,
                          verbose=self.verbose if verbose is None else verbose)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        seconds = time.monotonic() - started + _previous_seconds(checkpoint.log, restored)
        return self.trial_result(checkpoint.log, seconds, early_stopping_monitor(config))

    def trial_data(self, config: M3SAConfig, train, valid):
        """The (train, valid) data of a trial: as given when its batch size is the base
        configuration's, else loaded with its own through `data_loader`."""
        if config.batch_size == self.base_config.batch_size:
            return train, valid
        if self.data_loader is None:
            raise ValueError(
                f"the trial's batch_size={config.batch_size} differs from the base "
                f"configuration's {self.base_config.batch_size}, and the hypermodel has "
                "no data_loader to batch the data with it"
            )
        datasets = self.data_loader(config)
        return datasets["train"], datasets["valid"]

    def trial_result(self, epoch_log: List[Mapping[str, Any]], seconds: float,
                     monitor: Optional[str] = None) -> Dict[str, float]:
        """The objective at the protocol's best epoch (lowest `monitor`, by default the
        base configuration's best-epoch loss), plus the trial's epochs_run, best_epoch
        and seconds, from the checkpoint's per-epoch log."""
        if not epoch_log:
            raise ValueError("the trial finished no epoch")
        monitor = monitor or early_stopping_monitor(self.base_config)
        losses = [row.get(monitor, math.nan) for row in epoch_log]
        finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
        best = min(finite, key=lambda i: losses[i]) if finite else len(epoch_log) - 1
        row = epoch_log[best]
        if self.objective not in row:
            where = ("the MSA metrics callback" if is_metric_objective(self.objective)
                     else "Keras' validation logs")
            raise ValueError(
                f"objective {self.objective!r} is not among the epoch logs "
                f"{sorted(row)} (expected from {where})"
            )
        return {
            self.objective: float(row[self.objective]),
            results.EPOCHS_RUN: float(len(epoch_log)),
            results.BEST_EPOCH: float(row.get("epoch", best)),
            results.SECONDS: float(seconds),
        }


def _previous_seconds(epoch_log, restored_epochs: int) -> float:
    """Training seconds of the epochs an earlier session of this trial finished."""
    return float(sum(row.get("seconds", 0.0) for row in epoch_log[:restored_epochs]))
