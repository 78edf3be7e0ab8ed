"""Executions of pipeline stages: where their artifacts live, what they were made from,
and when an earlier one can be reused instead of running the stage again.

Every execution of a stage owns one directory, `ROOT/<stage>/<execution_id>/` (ids are
1, 2, 3, … per stage), holding the stage's artifacts and `execution.json`, the record:

    {"stage": "trainer", "execution_id": 2,
     "input_fingerprint": "…",          # sha256 of everything below
     "inputs": {"examples": {"stage": "example_gen", "execution_id": 1,
                             "fingerprint": "…"}},
     "parameters": {...},                # the stage's own parameters, JSON
     "artifact_fingerprint": "…",        # sha256 of the artifact files, at the end
     "outputs": {...},                   # the stage's summary of what it made
     "started": "…", "finished": "…", "seconds": 12.3}

Skip rule: before running a stage, `run_stage` computes the input fingerprint from the
upstream artifacts' fingerprints and the stage's parameters. If a finished execution of
the stage has the same input fingerprint and its artifact files still hash to its
recorded artifact fingerprint, the stage is skipped and that execution reused; otherwise
the stage runs into a new execution. A changed upstream artifact therefore reruns every
stage downstream of it, and an unchanged one skips them.

Atomicity: a stage runs in `ROOT/<stage>/.staging-<input fingerprint>/` and the
directory is renamed to its execution id only after the stage returned and its record
was written, so an execution directory is always complete. A killed stage leaves its
staging directory behind; the next run with the same inputs continues in it (the
trainer resumes from its checkpoints there), so finished work is not lost.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from msa_core.io import read_json, write_json_atomic

RECORD_FILE = "execution.json"
STAGING_PREFIX = ".staging-"


class PipelineError(RuntimeError):
    """A stage that cannot run with what it was given (bad input, failed upstream)."""


@dataclasses.dataclass(frozen=True)
class Execution:
    """One finished execution of a stage (what `execution.json` records)."""

    stage: str
    execution_id: int
    path: str
    record: Mapping[str, Any]
    skipped: bool = False

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the artifact: what downstream stages depend on."""
        return self.record["artifact_fingerprint"]

    @property
    def outputs(self) -> Mapping[str, Any]:
        return self.record.get("outputs", {})

    def reference(self) -> Dict[str, Any]:
        """How a downstream record names this artifact."""
        return {"stage": self.stage, "execution_id": self.execution_id,
                "fingerprint": self.fingerprint}


# ---------------------------------------------------------------------------- hashing
def fingerprint_value(value: Any) -> str:
    """sha256 of a JSON-able value (key order does not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint_tree(path: str, exclude: tuple = (RECORD_FILE,)) -> str:
    """sha256 over the relative paths and contents of every file under `path` (or of the
    file `path`), in sorted order; names in `exclude` at the top level are left out."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        files = [("", path)]
    else:
        files = []
        for directory, subdirs, names in os.walk(path):
            subdirs.sort()
            for name in names:
                full = os.path.join(directory, name)
                rel = os.path.relpath(full, path)
                if rel in exclude:
                    continue
                files.append((rel, full))
        files.sort()
    for rel, full in files:
        digest.update(rel.encode("utf-8") + b"\0")
        with open(full, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


# ---------------------------------------------------------------------------- records
def list_executions(root: str, stage: str) -> List[Execution]:
    """Finished executions of `stage` under `root`, oldest first. Directories without a
    readable record (none should exist: they appear by rename) are ignored."""
    stage_dir = os.path.join(root, stage)
    if not os.path.isdir(stage_dir):
        return []
    found = []
    for name in os.listdir(stage_dir):
        path = os.path.join(stage_dir, name)
        if not name.isdigit() or not os.path.isfile(os.path.join(path, RECORD_FILE)):
            continue
        try:
            record = read_json(os.path.join(path, RECORD_FILE), error=PipelineError)
        except PipelineError:
            continue
        found.append(Execution(stage, int(name), path, record))
    return sorted(found, key=lambda e: e.execution_id)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _commit(stage_dir: str, staging: str) -> tuple:
    """Renames `staging` to the next free execution id; returns (id, path)."""
    while True:
        taken = [int(n) for n in os.listdir(stage_dir) if n.isdigit()]
        execution_id = max(taken, default=0) + 1
        path = os.path.join(stage_dir, str(execution_id))
        try:
            os.rename(staging, path)  # fails if another process took the id meanwhile
            return execution_id, path
        except OSError:
            if not os.path.exists(path):
                raise


# ---------------------------------------------------------------------------- running
StageFn = Callable[[str, Mapping[str, Execution], Mapping[str, Any]], Mapping[str, Any]]


def run_stage(
    root: str,
    stage: str,
    fn: StageFn,
    inputs: Mapping[str, Execution],
    parameters: Mapping[str, Any],
    *,
    log: Callable[[str], None] = print,
) -> Execution:
    """Runs `fn(artifact_dir, inputs, parameters) -> outputs` as an execution of `stage`,
    or reuses a finished execution with the same inputs (module docstring).

    `inputs` maps the stage's input names to upstream executions; `parameters` must be
    JSON-able. `fn` writes its artifacts under `artifact_dir` and returns a small
    JSON-able summary stored in the record as "outputs".
    """
    stage_dir = os.path.join(root, stage)
    os.makedirs(stage_dir, exist_ok=True)
    input_refs = {name: execution.reference() for name, execution in sorted(inputs.items())}
    parameters = json.loads(json.dumps(dict(parameters), sort_keys=True, allow_nan=True))
    input_fingerprint = fingerprint_value(
        {"stage": stage, "inputs": input_refs, "parameters": parameters}
    )

    for previous in reversed(list_executions(root, stage)):
        if previous.record.get("input_fingerprint") != input_fingerprint:
            continue
        if fingerprint_tree(previous.path) != previous.fingerprint:
            log(f"[{stage}] execution {previous.execution_id} has the same inputs but its "
                "artifacts changed on disk; running again")
            continue
        log(f"[{stage}] skipped (inputs unchanged): reusing {previous.path}")
        return dataclasses.replace(previous, skipped=True)

    staging = os.path.join(stage_dir, STAGING_PREFIX + input_fingerprint[:16])
    resumed = os.path.isdir(staging)
    os.makedirs(staging, exist_ok=True)
    log(f"[{stage}] running" + (" (continuing an interrupted execution)" if resumed else ""))
    started, clock = _now(), time.perf_counter()
    outputs = fn(staging, inputs, parameters)
    record = {
        "stage": stage,
        "input_fingerprint": input_fingerprint,
        "inputs": input_refs,
        "parameters": parameters,
        "outputs": json.loads(json.dumps(dict(outputs or {}), sort_keys=True, allow_nan=True)),
        "artifact_fingerprint": fingerprint_tree(staging),
        "started": started,
        "finished": _now(),
        "seconds": round(time.perf_counter() - clock, 3),
    }
    # The id is only known at commit; the record names it after the rename below, and
    # readers look for the record only inside numbered directories.
    execution_id, path = _commit_with_record(stage_dir, staging, record)
    log(f"[{stage}] done in {record['seconds']:.1f} s: {path}")
    return Execution(stage, execution_id, path, {**record, "execution_id": execution_id})


def _commit_with_record(stage_dir: str, staging: str, record: dict) -> tuple:
    """Writes the record into `staging` and renames it to the next execution id. The
    record carries the id it was committed under; its file is written before the
    rename (so a numbered directory always has one) and rewritten with the id after."""
    write_json_atomic(os.path.join(staging, RECORD_FILE), record)
    execution_id, path = _commit(stage_dir, staging)
    write_json_atomic(os.path.join(path, RECORD_FILE), {**record, "execution_id": execution_id})
    return execution_id, path


def remove_stale_staging(root: str, stage: str, keep: Optional[str] = None) -> None:
    """Deletes staging directories of `stage` other than `keep` (housekeeping only)."""
    stage_dir = os.path.join(root, stage)
    if not os.path.isdir(stage_dir):
        return
    for name in os.listdir(stage_dir):
        if name.startswith(STAGING_PREFIX) and name != keep:
            shutil.rmtree(os.path.join(stage_dir, name), ignore_errors=True)
