"""Distributed tuning in keras-tuner's own chief/worker mode, with real processes.

A chief (KERASTUNER_TUNER_ID=chief) and two workers (tuner0, tuner1) run the same
`python -m tuning.search` command on 127.0.0.1. Each worker has its own output directory,
as it would on its own machine; the chief's directory gets the one result table.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from m3sa_tf.config import M3SAConfig
from tests.tuning.helpers import DATASET, SCALE, set_args
from tuning import results
from tuning.runner import BEST_FILE, SUMMARY_FILE, TRIALS_FILE
from tuning.trial_owners import OWNERS_FILE

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_TRIALS = 3
DEADLINE_SECONDS = 300  # a hung chief or worker fails the test instead of CI


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tuner_id, port, data_dir, output_dir, log_path):
    env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
               KERASTUNER_ORACLE_PORT=str(port), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT,
                                                        os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "tuning.search", "--dataset", DATASET,
               "--data-dir", data_dir, "--output-dir", output_dir, "--tuner", "random",
               "--max-trials", str(MAX_TRIALS), "--epochs", "1", "--scale", str(SCALE),
               "--seed", "5", *set_args()]
    log = open(log_path, "w")
    try:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    finally:
        log.close()  # the child holds its own copy of the descriptor


@pytest.fixture(scope="module")
def distributed_search(tuning_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    port = _free_port()
    names = ("chief", "tuner0", "tuner1")
    dirs = {name: str(root / name) for name in names}
    logs = {name: str(root / f"{name}.log") for name in names}
    processes = {}
    try:
        for name in names:
            processes[name] = _start(name, port, tuning_data_dir, dirs[name], logs[name])
        codes = {name: proc.wait(timeout=DEADLINE_SECONDS)
                 for name, proc in processes.items()}
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outputs = {name: open(path).read() for name, path in logs.items()}
    return {"codes": codes, "outputs": outputs, "dirs": dirs}


def test_the_chief_and_both_workers_exit_zero(distributed_search):
    for name, code in distributed_search["codes"].items():
        assert code == 0, f"{name} exited {code}:\n{distributed_search['outputs'][name][-3000:]}"


def test_both_workers_ran_trials_and_the_chief_ran_none(distributed_search):
    chief_dir = distributed_search["dirs"]["chief"]
    rows = results.read_csv(os.path.join(chief_dir, TRIALS_FILE))
    assert len(rows) == MAX_TRIALS
    assert all(row["status"] == "COMPLETED" for row in rows)
    owners = {row["trial_id"]: row["tuner_id"] for row in rows}
    assert set(owners.values()) == {"tuner0", "tuner1"}
    with open(os.path.join(chief_dir, OWNERS_FILE)) as handle:
        assert json.load(handle) == owners
    # Each worker says which trials it ran; together they are exactly the table's.
    ran = {}
    for worker in ("tuner0", "tuner1"):
        lines = [line for line in distributed_search["outputs"][worker].splitlines()
                 if line.startswith(f"worker {worker} ran trials")]
        assert len(lines) == 1, distributed_search["outputs"][worker][-3000:]
        for trial_id, owner in owners.items():
            if owner == worker:
                ran[trial_id] = worker
                assert repr(trial_id) in lines[0]
    assert ran == owners


def test_only_the_chief_writes_the_result_table_and_best_hparams(distributed_search):
    dirs = distributed_search["dirs"]
    for filename in (TRIALS_FILE, BEST_FILE, SUMMARY_FILE):
        assert os.path.exists(os.path.join(dirs["chief"], filename)), filename
    for worker in ("tuner0", "tuner1"):
        for filename in (TRIALS_FILE, BEST_FILE, SUMMARY_FILE, OWNERS_FILE):
            assert not os.path.exists(os.path.join(dirs[worker], filename)), filename
    rows = results.read_csv(os.path.join(dirs["chief"], TRIALS_FILE))
    best_row = min(rows, key=lambda r: float(r["objective"]))
    with open(os.path.join(dirs["chief"], BEST_FILE)) as handle:
        config = M3SAConfig.from_json(handle.read())
    assert config.n_scales == int(best_row["n_scales"])
    assert config.channel_ratio == int(best_row["channel_ratio"])
    assert config.learning_rate == pytest.approx(float(best_row["learning_rate"]))
    with open(os.path.join(dirs["chief"], SUMMARY_FILE)) as handle:
        summary = json.load(handle)
    assert summary["best"]["trial_id"] == best_row["trial_id"]
    assert summary["status_counts"] == {"COMPLETED": MAX_TRIALS}
    assert "chief: all workers are done" in distributed_search["outputs"]["chief"]
