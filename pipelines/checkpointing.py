"""Per-epoch checkpoints with early stopping whose state survives a kill.

`ResumableEarlyStopping` is one Keras callback doing two jobs that must stay consistent
with each other: the protocol's early stopping (best epoch = lowest validation loss,
stop after `patience` epochs without improvement) and a checkpoint at the end of every
epoch. Keras' own pair (`EarlyStopping` + `BackupAndRestore`) does not fit: Keras 3's
BackupAndRestore saves weights, optimizer and epoch but not EarlyStopping's best value,
wait counter or best weights, so a resumed run would forget its best epoch.

A checkpoint directory holds, per phase:

    state.json                  epochs done, per-epoch log, best value/epoch, wait, stopped
    epoch_0003.weights.h5       model + optimizer after the last finished epoch
    best_0002.weights.h5        model weights of the best epoch so far

Weight files are named by epoch and written before `state.json` (itself replaced
atomically), so a kill at any instant leaves a state that points at complete files;
older files are removed only after the new state is in place.

Example:

>>> ckpt = ResumableEarlyStopping("RUN/checkpoints/main", "RUN/checkpoints/main",
...                               patience=8)                         # doctest: +SKIP
>>> initial_epoch = ckpt.restore(model)                               # doctest: +SKIP
>>> model.fit(train, validation_data=valid, epochs=50,
...           initial_epoch=initial_epoch, callbacks=[ckpt])          # doctest: +SKIP
>>> ckpt.load_best(model)                                             # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, List, Optional

import keras

from msa_core.io import read_json, write_json_atomic

STATE_FILE = "state.json"


class CheckpointError(RuntimeError):
    """A checkpoint directory that cannot be resumed from."""


class ResumableEarlyStopping(keras.callbacks.Callback):
    """Early stopping on a monitored value plus a resumable checkpoint every epoch.

    Args:
        read_dir: where an earlier session's checkpoint is read from.
        write_dir: where this session writes (the same as `read_dir`, except on
            non-chief multi-worker tasks, which write to a scratch directory).
        monitor: the epoch log to minimise ("val_loss").
        patience: epochs without improvement before stopping; None never stops early.
        session: a label recorded with each epoch of this session (the resume test
            reads it to see where a session started).
    """

    def __init__(
        self,
        read_dir: str,
        write_dir: str,
        *,
        monitor: str = "val_loss",
        patience: Optional[int] = None,
        session: int = 0,
    ):
        super().__init__()
        self.read_dir = read_dir
        self.write_dir = write_dir
        self.monitor = monitor
        self.patience = patience
        self.session = session
        self.state: Dict[str, Any] = {
            "epochs_done": 0,
            "best_value": None,
            "best_epoch": None,
            "wait": 0,
            "stopped": False,
            "latest_weights": None,
            "best_weights": None,
            "log": [],
        }
        self._epoch_start = None
        self._train_start = None
        self._first_step_seconds = None

    # ---------------------------------------------------------------- resume
    @staticmethod
    def read_state(directory: str) -> Optional[Dict[str, Any]]:
        path = os.path.join(directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        return read_json(path, error=CheckpointError)

    def restore(self, model: keras.Model) -> int:
        """Loads the last finished epoch into `model` (weights and optimizer) and
        returns the number of finished epochs (the `initial_epoch` for `fit`); 0 and
        no change when there is no checkpoint."""
        state = self.read_state(self.read_dir)
        if state is None:
            return 0
        self.state = state
        latest = state.get("latest_weights")
        if latest:
            path = os.path.join(self.read_dir, latest)
            if not os.path.exists(path):
                raise CheckpointError(
                    f"checkpoint state names {path}, which is missing; delete "
                    f"{self.read_dir} to start this phase again"
                )
            # An unbuilt optimizer silently skips its saved slots on load.
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(path)
        return int(state["epochs_done"])

    @property
    def finished(self) -> bool:
        """True once early stopping fired (a resumed run must not train further)."""
        return bool(self.state["stopped"])

    def load_best(self, model: keras.Model) -> bool:
        """Loads the best epoch's weights into `model`; False when none was recorded."""
        name = self.state.get("best_weights")
        if not name:
            return False
        directory = self.write_dir if os.path.exists(os.path.join(self.write_dir, name)) else self.read_dir
        model.load_weights(os.path.join(directory, name), skip_mismatch=False)
        return True

    # ---------------------------------------------------------------- callback
    def on_train_begin(self, logs=None):
        self._train_start = time.perf_counter()
        self._first_step_seconds = None

    def on_train_batch_end(self, batch, logs=None):
        # Time from fit's start to the end of its first step: mostly tracing (and
        # compiling) the training function, which every model build pays once.
        if self._first_step_seconds is None and self._train_start is not None:
            self._first_step_seconds = time.perf_counter() - self._train_start

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = time.perf_counter() - (self._epoch_start or time.perf_counter())
        value = logs.get(self.monitor)
        if value is None:
            raise CheckpointError(
                f"epoch logs have no {self.monitor!r} (got {sorted(logs)}); pass "
                "validation data to fit"
            )
        value = float(value)
        state = self.state
        improved = math.isfinite(value) and (
            state["best_value"] is None or value < state["best_value"]
        )
        os.makedirs(self.write_dir, exist_ok=True)
        old_files = {state.get("latest_weights"), state.get("best_weights")}
        if improved:
            state["best_value"] = value
            state["best_epoch"] = epoch
            state["wait"] = 0
            state["best_weights"] = f"best_{epoch:04d}.weights.h5"
            self.model.save_weights(os.path.join(self.write_dir, state["best_weights"]))
        else:
            state["wait"] += 1
        if self.patience is not None and not improved and state["wait"] >= self.patience:
            state["stopped"] = True
            self.model.stop_training = True
        state["latest_weights"] = f"epoch_{epoch:04d}.weights.h5"
        self.model.save_weights(os.path.join(self.write_dir, state["latest_weights"]))
        state["epochs_done"] = epoch + 1
        record = {"epoch": epoch, "session": self.session, "seconds": seconds}
        if self._first_step_seconds is not None and not any(
                r.get("session") == self.session and "first_step_seconds" in r
                for r in state["log"]):
            record["first_step_seconds"] = self._first_step_seconds
        record.update({k: float(v) for k, v in logs.items() if _is_number(v)})
        state["log"].append(record)
        write_json_atomic(os.path.join(self.write_dir, STATE_FILE), state)
        for name in old_files - {state["latest_weights"], state["best_weights"], None}:
            try:
                os.remove(os.path.join(self.write_dir, name))
            except FileNotFoundError:
                pass

    @property
    def log(self) -> List[Dict[str, Any]]:
        return list(self.state["log"])


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
