"""The result file of a search: the trial table (CSV).

Everything here reads keras-tuner's `Oracle` (its `trials` dict), never a tuner's private
state, so the same code writes the table for a single-process search and for the chief
of a distributed one (whose oracle holds every worker's trials).

Example:

>>> rows = write_trial_table("TUNE/trials.csv", tuner.oracle)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping

# read_csv is re-exported: the tables are read back through this module.
from msa_core.io import read_csv, write_csv_atomic  # noqa: F401

# Metrics that `M3SAHyperModel.fit` reports next to the objective; they ride along in the
# oracle's trial records (and so through keras-tuner's gRPC in distributed tuning).
EPOCHS_RUN = "epochs_run"
BEST_EPOCH = "best_epoch"
SECONDS = "seconds"

# Columns before and after the hyper-parameters, in this order.
LEADING_COLUMNS = ("trial_id", "status", "tuner_id")
TRAILING_COLUMNS = ("objective_name", "objective", EPOCHS_RUN, BEST_EPOCH, SECONDS, "error")


def _last_metric(trial, name: str):
    if trial.metrics.exists(name):
        value = trial.metrics.get_last_value(name)
        return None if value is None else float(value)
    return None


def trial_rows(oracle, tuner_ids: Mapping[str, str] | None = None
               ) -> List[Dict[str, Any]]:
    """One dict per trial of `oracle`, ordered by trial id.

    Keys: trial_id, status, tuner_id (from `tuner_ids`, trial id -> the tuner that ran
    it, see `tuning.trial_owners`; None where unknown), every hyper-parameter name seen in any trial (keras-tuner's
    own `tuner/...` bookkeeping of Hyperband included), objective_name, objective (the
    trial's score: the best value of the objective it reported), epochs_run, best_epoch,
    seconds and error (the last line of keras-tuner's message for a failed trial).
    """
    objective_name = oracle.objective.name
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        row: Dict[str, Any] = {"trial_id": trial.trial_id, "status": trial.status,
                               "tuner_id": (tuner_ids or {}).get(trial.trial_id)}
        row.update(trial.hyperparameters.values)
        score = trial.score
        if score is None:
            score = _last_metric(trial, objective_name)
        message = (trial.message or "").strip().splitlines()
        row.update(
            {
                "objective_name": objective_name,
                "objective": None if score is None else float(score),
                EPOCHS_RUN: _int_or_none(_last_metric(trial, EPOCHS_RUN)),
                BEST_EPOCH: _int_or_none(_last_metric(trial, BEST_EPOCH)),
                SECONDS: _round_or_none(_last_metric(trial, SECONDS)),
                "error": message[-1] if message and trial.status != "COMPLETED" else None,
            }
        )
        rows.append(row)
    return rows


def table_columns(rows: Iterable[Mapping[str, Any]]) -> List[str]:
    """Leading columns, the hyper-parameters (sorted), then the trailing columns."""
    hp_names = set()
    for row in rows:
        hp_names.update(k for k in row if k not in LEADING_COLUMNS + TRAILING_COLUMNS)
    # keras-tuner's own "tuner/..." bookkeeping goes after the searched hyper-parameters.
    ordered = sorted(hp_names, key=lambda name: (name.startswith("tuner/"), name))
    return list(LEADING_COLUMNS) + ordered + list(TRAILING_COLUMNS)


def write_trial_table(path: str, oracle, tuner_ids: Mapping[str, str] | None = None
                      ) -> List[Dict[str, Any]]:
    """Writes the oracle's trial table to `path` (CSV, atomically); returns the rows."""
    rows = trial_rows(oracle, tuner_ids)
    write_csv_atomic(path, rows, header=table_columns(rows))
    return rows


def _int_or_none(value):
    return None if value is None else int(round(value))


def _round_or_none(value):
    return None if value is None else round(value, 3)
