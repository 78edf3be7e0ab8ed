"""The result files of a search: the trial table (CSV) and atomic JSON/CSV writes.

Everything here reads keras-tuner's `Oracle` (its `trials` dict), never a tuner's private
state, so the same code writes the table for a single-process search and for the chief
of a distributed one (whose oracle holds every worker's trials).

Example:

>>> rows = trial_rows(tuner.oracle)            # doctest: +SKIP
>>> write_csv_atomic("TUNE/trials.csv", rows)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Sequence

# Metrics that `M3SAHyperModel.fit` reports next to the objective; they ride along in the
# oracle's trial records (and so through keras-tuner's gRPC in distributed tuning).
EPOCHS_RUN = "epochs_run"
BEST_EPOCH = "best_epoch"
SECONDS = "seconds"

# Columns before and after the hyper-parameters, in this order.
LEADING_COLUMNS = ("trial_id", "status", "tuner_id")
TRAILING_COLUMNS = ("objective_name", "objective", EPOCHS_RUN, BEST_EPOCH, SECONDS, "error")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path next to `path`; on success it is renamed onto `path`.

    Readers see the old file or the new one, never half of one; on an error the
    temporary file is removed and `path` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
    )
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp's 0600 would survive the rename
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def write_text_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp_path:
        with open(tmp_path, "w", encoding="utf-8", newline="") as out:
            out.write(text)


def write_json_atomic(path: str, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_csv_atomic(path: str, rows: Sequence[Mapping[str, Any]],
                     columns: Sequence[str] | None = None) -> None:
    """Writes dict rows as CSV (header = `columns`, or the union of keys in order)."""
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    write_text_atomic(path, buffer.getvalue())


def read_csv(path: str) -> List[Dict[str, str]]:
    with open(path, "r", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


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
    write_csv_atomic(path, rows, table_columns(rows))
    return rows


def _int_or_none(value):
    return None if value is None else int(round(value))


def _round_or_none(value):
    return None if value is None else round(value, 3)
