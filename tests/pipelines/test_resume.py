"""Fault tolerance: a run killed after an epoch resumes after it, repeating nothing."""

import json
import os
import subprocess
import sys

from tests.pipelines.conftest import REPO, SCALE, TINY, run_worker, subprocess_env, tiny_set_flags


def test_a_killed_run_resumes_after_its_last_finished_epoch(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    overrides = {**TINY, "key_modality": "text"}
    killed = run_worker({
        "dataset": "synthetic-mosi", "data_dir": data_dir, "output_dir": run_dir,
        "scale": SCALE, "overrides": overrides, "exit_after_epochs": 1,
    })
    assert killed.returncode == 17, killed.stderr[-3000:]
    assert not os.path.exists(os.path.join(run_dir, "metrics.json"))
    with open(os.path.join(run_dir, "checkpoints", "main", "state.json")) as handle:
        assert json.load(handle)["epochs_done"] == 1

    # The same run again, through the CLI.
    rerun = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--dataset", "synthetic-mosi",
         "--data-dir", data_dir, "--output-dir", run_dir, "--scale", str(SCALE),
         "--key-modality", "text", "--strategy", "default", "--quiet"]
        + tiny_set_flags(),
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    log = [(r["epoch"], r["session"]) for r in metrics["epoch_log"] if r["phase"] == "main"]
    assert log == [(0, 0), (1, 1), (2, 1)]  # epoch 1 by the killed session, 2 and 3 resumed
    assert metrics["epochs_trained"] == 3
    assert os.path.isfile(os.path.join(run_dir, "predictions", "test.csv"))
    assert metrics["task"] == "contrastive"
    assert {"Has0_acc_2", "Non0_acc_2", "Mult_acc_7", "MAE", "Corr"} <= set(metrics["test"])
