"""keras-tuner tuners for M³SA, and the chief's side of distributed tuning.

The three tuners are keras-tuner's own (`BayesianOptimization`, `Hyperband`,
`RandomSearch`) with one addition: they remember which trials this process ran and call a
hook after every finished trial (the search writes its trial table there, so an
interrupted search never loses a finished trial's row).

Distributed tuning is keras-tuner's chief/worker mode: every process runs the same
command; `KERASTUNER_TUNER_ID` ("chief" or "tuner0", "tuner1", …), `KERASTUNER_ORACLE_IP`
and `KERASTUNER_ORACLE_PORT` say who is who. The chief serves the oracle over gRPC with
keras-tuner's `OracleServicer`; workers ask it for trials, run them and report back.
`serve_oracle` is the chief's loop: keras-tuner's `start_server` re-checks for the end of
the search every 20 s, this one every `poll_seconds`, stops the gRPC server when done, and
calls a hook whenever a trial ends.

Example:

>>> tuner = make_tuner("random", hypermodel, keras_tuner.Objective("val_loss", "min"),
...                    max_trials=4, epochs=3, seed=0, directory="TUNE")  # doctest: +SKIP
>>> tuner.search(train, validation_data=valid)                            # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from concurrent import futures
from typing import Callable, List, Optional

import keras_tuner

TUNER_KINDS = ("bayesian", "hyperband", "random")
# Subdirectory of the output directory where keras-tuner keeps its oracle and trials.
PROJECT_NAME = "keras_tuner"
# Hyperband's reduction factor (keras-tuner's default).
HYPERBAND_FACTOR = 3


class DistributedTuningError(RuntimeError):
    """The distributed-tuning environment variables are incomplete or unusable."""


def distributed_role() -> Optional[str]:
    """"chief", "worker", or None when not tuning distributed (no KERASTUNER_ORACLE_IP)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
               if not os.environ.get(v)]
    if missing:
        raise DistributedTuningError(
            f"KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not; distributed "
            "tuning needs KERASTUNER_TUNER_ID ('chief' or 'tuner0', 'tuner1', ...), "
            "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT"
        )
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedTuningError(
            f"KERASTUNER_ORACLE_PORT={port!r} is not a port number (1-65535)"
        )
    # keras-tuner's own rule (distribute/utils.py): the chief's id contains "chief".
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


class _TrialRecorder:
    """Mixin: records the trials this process ran, calls `trial_end_hook(tuner)` after
    each, and hands the hypermodel's `fit` the trial's directory (`trial_dir=`)."""

    def __init__(self, *args, trial_end_hook: Optional[Callable] = None, **kwargs):
        self.trials_run: List[str] = []
        self._trial_end_hook = trial_end_hook
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        # The hypermodel keeps its per-epoch checkpoints in the trial's directory, so a
        # trial that an interruption cut short resumes at its last finished epoch.
        kwargs["trial_dir"] = self.get_trial_dir(trial.trial_id)
        return super().run_trial(trial, *args, **kwargs)

    def on_trial_begin(self, trial):
        self.trials_run.append(trial.trial_id)
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self._trial_end_hook is not None:
            self._trial_end_hook(self)


class BayesianTuner(_TrialRecorder, keras_tuner.BayesianOptimization):
    """keras-tuner's `BayesianOptimization` that records its trials."""


class HyperbandTuner(_TrialRecorder, keras_tuner.Hyperband):
    """keras-tuner's `Hyperband` that records its trials."""


class RandomTuner(_TrialRecorder, keras_tuner.RandomSearch):
    """keras-tuner's `RandomSearch` that records its trials."""


def make_tuner(kind: str, hypermodel, objective, *, max_trials: int, epochs: int,
               seed: int, directory: str, initial_points: Optional[int] = None,
               trial_end_hook: Optional[Callable] = None):
    """A tuner over `hypermodel` whose state lives in `directory/keras_tuner`.

    Args:
        kind: "bayesian", "hyperband" or "random".
        objective: a `keras_tuner.Objective`.
        max_trials: the number of trials (a cap on Hyperband's schedule too).
        epochs: per-trial epoch budget; Hyperband's `max_epochs`.
        seed: seed of the oracle's sampling.
        initial_points: random trials before Bayesian optimisation fits its Gaussian
            process (default: a third of `max_trials`, at least 2; keras-tuner's own
            default, 3 × the number of hyper-parameters, would leave a short search
            purely random).
        trial_end_hook: called with the tuner after each trial this process finishes.

    An existing search in `directory` is reloaded and continued (`overwrite=False`):
    finished trials are kept, a trial cut short by an interruption runs again.
    """
    if kind not in TUNER_KINDS:
        raise ValueError(f"tuner {kind!r} is not one of {list(TUNER_KINDS)}")
    common = dict(
        hypermodel=hypermodel, objective=objective, seed=seed, directory=directory,
        project_name=PROJECT_NAME, overwrite=False, trial_end_hook=trial_end_hook,
    )
    if kind == "bayesian":
        if initial_points is None:
            initial_points = max(2, max_trials // 3)
        tuner = BayesianTuner(max_trials=max_trials, num_initial_points=initial_points,
                              **common)
    elif kind == "random":
        tuner = RandomTuner(max_trials=max_trials, **common)
    else:
        tuner = HyperbandTuner(max_epochs=epochs, factor=HYPERBAND_FACTOR, **common)
        if isinstance(tuner.oracle, keras_tuner.Oracle):
            # Hyperband sizes its brackets from max_epochs; the oracle's max_trials (None
            # for Hyperband) is the cap every other oracle honours, so honour it here too.
            tuner.oracle.max_trials = max_trials
    return tuner


def serve_oracle(tuner, *, poll_seconds: float = 0.5,
                 trial_end_hook: Optional[Callable] = None) -> None:
    """Runs the chief: serves `tuner.oracle` to the workers until the search is over.

    Returns once a worker has been told the search is over and no worker is left with
    a trial or a request outstanding (keras-tuner's own exit rule).
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    oracle = tuner.oracle
    address = (f"{os.environ['KERASTUNER_ORACLE_IP']}:"
               f"{os.environ['KERASTUNER_ORACLE_PORT']}")
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as err:  # grpc >= 1.50 raises instead of returning 0
        bound = 0
        reason = f": {err}"
    else:
        reason = ""
    if not bound:
        raise DistributedTuningError(
            f"the chief cannot listen on {address}{reason}; is the port in use? set "
            "KERASTUNER_ORACLE_PORT to a free port"
        )
    server.start()
    try:
        finished = -1
        while True:
            time.sleep(poll_seconds)
            if trial_end_hook is not None and len(oracle.end_order) != finished:
                finished = len(oracle.end_order)
                trial_end_hook(tuner)
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                break
    finally:
        server.stop(grace=2).wait()
    if trial_end_hook is not None:
        trial_end_hook(tuner)
