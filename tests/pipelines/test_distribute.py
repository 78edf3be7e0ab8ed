"""Strategies: resolution, MirroredStrategy on 2 logical CPUs, two real workers."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.pipelines.conftest import SCALE, TINY, WORKER, REPO, subprocess_env, worker_result

DISTRIBUTED = {**TINY, "key_modality": "text", "epochs": 2}


def test_auto_strategy_is_the_default_one_on_a_single_device(monkeypatch):
    import tensorflow as tf
    from pipelines import distribute

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.resolve_strategy("auto") is tf.distribute.get_strategy()
    assert distribute.is_chief(distribute.resolve_strategy("default"))


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    from pipelines import distribute

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(distribute.StrategyError, match="TF_CONFIG"):
        distribute.resolve_strategy("multi-worker")
    with pytest.raises(distribute.StrategyError, match="unknown strategy"):
        distribute.resolve_strategy("tpu")


def test_tf_config_naming_a_cluster_makes_auto_multi_worker(monkeypatch):
    from pipelines import distribute

    cluster = {"cluster": {"worker": ["localhost:1", "localhost:2"]},
               "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert distribute.cluster_size() == 2
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(distribute.StrategyError, match="not valid JSON"):
        distribute.tf_config()


def test_the_keras_patch_refuses_a_trainer_of_another_shape(monkeypatch):
    from pipelines import distribute

    module = distribute._keras_trainer_module()
    monkeypatch.setattr(module, "reduce_per_replica", lambda values, strategy: values)
    with pytest.raises(distribute.KerasPatchError, match="reduce_per_replica"):
        distribute._check_patch_targets(module)


def test_mirrored_strategy_on_two_logical_cpus_trains(data_dir, tmp_path):
    from tests.pipelines.conftest import run_worker

    run_dir = str(tmp_path / "run")
    completed = run_worker({
        "dataset": "synthetic-sims", "data_dir": data_dir, "output_dir": run_dir,
        "scale": SCALE, "overrides": DISTRIBUTED, "strategy": "mirrored", "logical_cpus": 2,
    })
    result = worker_result(completed)
    assert result["strategy"] == "MirroredStrategy" and result["num_replicas"] == 2
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    losses = [r["loss"] for r in metrics["epoch_log"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_multi_worker_processes_train_to_the_same_weights(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    processes = []
    for index in range(2):
        spec = {
            "dataset": "synthetic-mosi", "data_dir": data_dir, "output_dir": run_dir,
            "scale": SCALE, "overrides": DISTRIBUTED, "strategy": "multi-worker",
            "weights_out": str(tmp_path / f"weights{index}.npy"),
        }
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [sys.executable, WORKER, json.dumps(spec)], cwd=REPO,
            env=subprocess_env({"TF_CONFIG": json.dumps(tf_config)}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=400)
            outputs.append(subprocess.CompletedProcess(process.args, process.returncode,
                                                       stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    results = [worker_result(o) for o in outputs]
    assert [r["chief"] for r in results] == [True, False]
    assert all(r["num_replicas"] == 2 for r in results)
    first, second = (np.load(tmp_path / f"weights{i}.npy") for i in range(2))
    assert first.shape == second.shape and np.isfinite(first).all()
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)
    assert results[0]["test"] == results[1]["test"]
    # Only the chief wrote the run directory; the worker's scratch directory is gone.
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        assert json.load(handle)["num_replicas"] == 2
