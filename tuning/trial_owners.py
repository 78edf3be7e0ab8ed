"""Which tuner ran which trial: the `tuner_id` column of the trial table.

keras-tuner's oracle forgets who ran a trial once it has ended (`ongoing_trials` only
holds the running ones), yet in distributed tuning that is what shows the work was
shared. `TrialOwners` wraps the oracle's `create_trial` (the one call every tuner, local
or over the chief's gRPC service, makes to get a trial) and keeps `trial_id -> tuner_id`
in `OUTPUT_DIR/trial_tuners.json`, rewritten atomically at every new trial and read back
on resume. A single-process search shows keras-tuner's default id, "tuner0".

Example:

>>> owners = TrialOwners("TUNE/trial_tuners.json")   # doctest: +SKIP
>>> owners.attach(tuner.oracle)                       # doctest: +SKIP
>>> owners.snapshot()                                 # doctest: +SKIP
{'0': 'tuner0', '1': 'tuner1'}
"""

from __future__ import annotations

import os
import threading
from typing import Dict

from msa_core.io import read_json, write_json_atomic

OWNERS_FILE = "trial_tuners.json"
_RUNNING = "RUNNING"


class TrialOwners:
    """The tuner id that was handed each trial, persisted in `path` (JSON object).

    Args:
        path: the JSON file; an existing one (an earlier session of the search) is read.
    """

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._owners: Dict[str, str] = {}
        if os.path.exists(path):
            loaded = read_json(path, error=ValueError)
            if not isinstance(loaded, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
                raise ValueError(f"{path} must hold a JSON object of trial id -> tuner id")
            self._owners.update(loaded)

    def attach(self, oracle) -> None:
        """Records, from now on, the tuner id of every trial `oracle` hands out."""
        create_trial = oracle.create_trial

        def recording_create_trial(tuner_id):
            trial = create_trial(tuner_id)
            if trial.status == _RUNNING:
                self.record(trial.trial_id, tuner_id)
            return trial

        oracle.create_trial = recording_create_trial

    def record(self, trial_id: str, tuner_id: str) -> None:
        with self._lock:
            if self._owners.get(trial_id) == tuner_id:
                return
            self._owners[trial_id] = tuner_id
            write_json_atomic(self.path, dict(self._owners))

    def snapshot(self) -> Dict[str, str]:
        with self._lock:
            return dict(self._owners)
