"""Runs a hyper-parameter search end to end: data, tuner, distribution, result files.

`run_search` is the library behind `python -m tuning.search`. It loads the train and
validation splits (never test), builds an `M3SAHyperModel` over the training library for
the model `base_config.model` names (M³SA or a baseline: the searched space is the
model's, `tuning.space`), and runs a keras-tuner search whose state lives in
`OUTPUT_DIR/keras_tuner`. The result files:

    OUTPUT_DIR/search.json         the settings of the search (checked on resume)
    OUTPUT_DIR/trials.csv          one row per trial, rewritten after every trial
    OUTPUT_DIR/best_hparams.json   the best trial's full M3SAConfig (its `model` and,
                                   for a baseline, `model_hparams` with the searched
                                   values), the JSON `pipelines.train --hparams` reads
    OUTPUT_DIR/summary.json        objective, best trial, trial counts, time
    OUTPUT_DIR/trial_tuners.json   which tuner (KERASTUNER_TUNER_ID) ran each trial

All are written atomically (temp file + rename). Rerunning the same command continues an
interrupted search (keras-tuner reloads its oracle, `overwrite=False`): finished trials are
kept, the trial that was cut short runs again, `max_trials` counts them all.

Example:

>>> result = run_search(M3SAConfig.for_dataset("synthetic-mosi"), data_dir="DATA",
...                     output_dir="TUNE", tuner="bayesian", max_trials=10,
...                     epochs=5)                                     # doctest: +SKIP
>>> result["best"]["objective"]                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Iterable, Optional

import keras_tuner

from m3sa_tf.config import M3SAConfig
from msa_core.io import default_data_dir, write_csv_atomic, write_json_atomic, write_text_atomic
from tuning import results as results_module
from tuning.hypermodel import M3SAHyperModel
from tuning.objective import objective_for
from tuning.trial_owners import OWNERS_FILE, TrialOwners
from tuning.tuners import PROJECT_NAME, distributed_role, make_tuner, serve_oracle

SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best_hparams.json"
SUMMARY_FILE = "summary.json"
DEFAULT_OBJECTIVE = "val_MAE"

# Settings that may change between sessions of one search; any other difference means the
# directory holds a different search and continuing it would mix incomparable trials.
_RESUMABLE_SETTINGS = ("max_trials", "verbose")


class SearchSettingsError(ValueError):
    """The output directory holds a search with different settings."""


class NoCompletedTrialError(RuntimeError):
    """The search ended without a single completed trial."""


def _check_or_record_settings(output_dir: str, settings: Dict[str, Any]) -> None:
    path = os.path.join(output_dir, SEARCH_FILE)
    project = os.path.join(output_dir, PROJECT_NAME)
    if os.path.exists(path) and os.path.isdir(project):
        with open(path, "r", encoding="utf-8") as handle:
            previous = json.load(handle)
        differing = sorted(
            key for key in set(previous) | set(settings)
            if key not in _RESUMABLE_SETTINGS and previous.get(key) != settings.get(key)
        )
        if differing:
            details = "; ".join(
                f"{k}: was {previous.get(k)!r}, now {settings.get(k)!r}" for k in differing
            )
            raise SearchSettingsError(
                f"{output_dir} holds a search with other settings ({details}); rerun with "
                "the same settings to continue it, or use a new --output-dir"
            )
    write_json_atomic(path, settings)


def load_search_data(config: M3SAConfig, data_dir: Optional[str], *, scale: float,
                     data_seed: int):
    """Train and validation datasets plus `DatasetInfo`, loaded as the training library
    loads them (`pipelines.training.load_data`). The test split is not loaded: a search
    must never see it."""
    from pipelines import training

    data_dir = os.path.expanduser(data_dir or default_data_dir())
    return training.load_data(config, data_dir, scale=scale, data_seed=data_seed,
                              splits=("train", "valid"))


@keras_tuner.synchronized
def _snapshot(oracle, tuner_ids=None):
    """Trial rows and the best completed trial, read under the oracle's lock.

    On the chief, gRPC threads update the oracle while the serve loop writes the table.
    """
    rows = results_module.trial_rows(oracle, tuner_ids)
    best = [t for t in oracle.get_best_trials(1) if t.status == "COMPLETED"]
    if not best:
        return rows, None
    trial = best[0]
    return rows, {"trial_id": trial.trial_id, "objective": float(trial.score),
                  "hyperparameters": dict(trial.hyperparameters.values)}


def write_outputs(output_dir: str, oracle, hypermodel: M3SAHyperModel,
                  *, seconds: Optional[float] = None,
                  owners: Optional[TrialOwners] = None) -> Dict[str, Any]:
    """Writes trials.csv, and best_hparams.json + summary.json once a trial completed."""
    rows, best = _snapshot(oracle, owners.snapshot() if owners is not None else None)
    write_csv_atomic(os.path.join(output_dir, TRIALS_FILE), rows,
                     header=results_module.table_columns(rows))
    counts: Dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary: Dict[str, Any] = {
        "objective": {"name": oracle.objective.name, "direction": oracle.objective.direction},
        "trials": len(rows),
        "status_counts": counts,
        "trial_seconds_total": round(sum(r["seconds"] or 0.0 for r in rows), 3),
    }
    if seconds is not None:
        summary["session_seconds"] = round(seconds, 3)
    if best is not None:
        config = hypermodel.config_for_values(best["hyperparameters"])
        write_text_atomic(os.path.join(output_dir, BEST_FILE), config.to_json() + "\n")
        summary["best"] = best
        summary["best_config"] = config.to_dict()
        write_json_atomic(os.path.join(output_dir, SUMMARY_FILE), summary)
    return summary


def run_search(base_config: M3SAConfig, data_dir: Optional[str], output_dir: str, *,
               tuner: str = "bayesian", max_trials: int = 10, epochs: Optional[int] = None,
               objective: str = DEFAULT_OBJECTIVE, scale: float = 1.0, data_seed: int = 0,
               seed: int = 0, fixed: Iterable[str] = (), initial_points: Optional[int] = None,
               verbose: int = 0, extra_callbacks=()) -> Dict[str, Any]:
    """Runs (or continues) a search; returns the summary (see module docstring).

    Args:
        base_config: every value that is not searched; searched values start from it.
            Its `model` decides the space (M³SA's, or the baseline spec's).
        epochs: per-trial epoch budget (default `base_config.epochs`); early stopping
            still applies. best_hparams.json keeps `base_config.epochs` for training.
        objective: a validation metric (`objective_for`); "val_MAE" by default.
        fixed: configuration keys held at their base value instead of searched (a
            baseline's own hyper-parameter as `model_hparams.NAME`, `tuning.space`).
        extra_callbacks: Keras callbacks added to every trial's fit (after the
            training library's; they are used as they are, not copied).

    In distributed mode (KERASTUNER_* environment variables) the chief serves the oracle
    and writes the result files; a worker runs trials and writes none of them. The
    returned dict then also says the role and, for a worker, the trials it ran.
    """
    role = distributed_role()
    if max_trials < 1:
        raise ValueError(f"max_trials={max_trials} must be >= 1")
    epochs = base_config.epochs if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"epochs={epochs} must be >= 1")
    tuning_objective = objective_for(objective, base_config.family)

    datasets, info = load_search_data(base_config, data_dir, scale=scale,
                                      data_seed=data_seed)
    # A baseline may search batch_size: its trials get the splits batched their way,
    # loaded once per batch size.
    by_batch_size = {base_config.batch_size: datasets}

    def data_loader(config: M3SAConfig):
        if config.batch_size not in by_batch_size:
            by_batch_size[config.batch_size], _ = load_search_data(
                base_config.replace(batch_size=config.batch_size), data_dir, scale=scale,
                data_seed=data_seed)
        return by_batch_size[config.batch_size]

    hypermodel = M3SAHyperModel(
        base_config, info, fixed=fixed, objective=objective, epochs=epochs,
        verbose=verbose, extra_callbacks=extra_callbacks, data_loader=data_loader,
    )
    writes_results = role != "worker"
    if writes_results:
        os.makedirs(output_dir, exist_ok=True)
        _check_or_record_settings(output_dir, {
            "dataset": base_config.dataset, "tuner": tuner, "objective": objective,
            "epochs": epochs, "scale": scale, "data_seed": data_seed, "seed": seed,
            "fixed": sorted(set(fixed)), "initial_points": initial_points,
            "base_config": base_config.to_dict(), "max_trials": max_trials,
            "search_space": hypermodel.search_space_names(),
        })

    started = time.monotonic()
    owners = TrialOwners(os.path.join(output_dir, OWNERS_FILE)) if writes_results else None

    def on_trial_end(tuner_obj):
        if writes_results:
            write_outputs(output_dir, tuner_obj.oracle, hypermodel,
                          seconds=time.monotonic() - started, owners=owners)

    keras_tuner_obj = make_tuner(
        tuner, hypermodel, tuning_objective, max_trials=max_trials, epochs=epochs,
        seed=seed, directory=output_dir, initial_points=initial_points,
        trial_end_hook=on_trial_end,
    )
    if owners is not None:
        owners.attach(keras_tuner_obj.oracle)
    if role == "chief":
        serve_oracle(keras_tuner_obj, trial_end_hook=on_trial_end)
    else:
        keras_tuner_obj.search(datasets["train"], validation_data=datasets["valid"],
                               verbose=verbose)
    seconds = time.monotonic() - started
    if role == "worker":
        return {"role": "worker", "tuner_id": os.environ["KERASTUNER_TUNER_ID"],
                "trials_run": list(keras_tuner_obj.trials_run),
                "session_seconds": round(seconds, 3)}
    summary = write_outputs(output_dir, keras_tuner_obj.oracle, hypermodel, seconds=seconds,
                            owners=owners)
    summary["role"] = role or "single"
    summary["trials_run"] = list(keras_tuner_obj.trials_run)
    if "best" not in summary:
        raise NoCompletedTrialError(
            f"no trial completed (statuses: {summary['status_counts']}); "
            f"{os.path.join(output_dir, TRIALS_FILE)} lists each trial's error"
        )
    return summary
