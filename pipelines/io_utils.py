"""Atomic writes: a reader sees either the old file or the complete new one, never half.

Every result file of a run goes through these helpers: the content is written to a
temporary file in the same directory (same filesystem, so the rename is atomic) and then
moved over the target with `os.replace`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from typing import Any, Iterable, Sequence


def write_text_atomic(path: str, text: str) -> None:
    """Writes `text` to `path` atomically, creating the parent directory."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def write_json_atomic(path: str, value: Any) -> None:
    """Writes `value` as indented, key-sorted JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_csv_atomic(path: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Writes a CSV file (header, then rows) atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def save_model_atomic(model, path: str) -> None:
    """`model.save(path)` (a .keras file) through a temporary file and a rename."""
    if not path.endswith(".keras"):
        raise ValueError(f"model path must end with .keras, got {path}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        model.save(temp)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
