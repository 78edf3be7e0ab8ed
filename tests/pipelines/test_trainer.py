"""`run_fn(fn_args)`, TFX Trainer's entry point: trains from fn_args, several seeds."""

import json
import os
from types import SimpleNamespace

import pytest

from tests.pipelines.conftest import SCALE, TINY


def test_run_fn_trains_seeds_from_fn_args_and_writes_a_serving_model(data_dir, tmp_path):
    from pipelines.trainer import run_fn

    hyperparameters = {"space": [], "values": {**TINY, "epochs": 1, "key_modality": "text"}}
    fn_args = SimpleNamespace(
        custom_config={"dataset": "synthetic-sims", "data_dir": data_dir, "scale": SCALE,
                       "seeds": [1, 2], "strategy": "default", "verbose": 0},
        hyperparameters=hyperparameters,
        model_run_dir=str(tmp_path / "run"),
        serving_model_dir=str(tmp_path / "serving"),
        train_files=[os.path.join(data_dir, "**")],
        eval_files=None,
    )
    summary = run_fn(fn_args)
    assert summary["seeds"] == [1, 2]
    for seed in (1, 2):
        assert os.path.isfile(tmp_path / "run" / f"seed_{seed}" / "metrics.json")
    mae = summary["test"]["MAE"]
    assert len(mae["values"]) == 2
    assert mae["mean"] == pytest.approx(sum(mae["values"]) / 2)
    assert mae["std"] == pytest.approx(abs(mae["values"][0] - mae["values"][1]) / 2)
    with open(tmp_path / "run" / "metrics.json") as handle:
        assert json.load(handle)["test"]["MAE"] == mae
    assert os.path.isfile(tmp_path / "serving" / "saved_model.pb")


def test_run_fn_rejects_missing_dataset_and_unmatched_files(tmp_path):
    from m3sa_tf import ConfigError
    from pipelines.trainer import run_fn

    with pytest.raises(ConfigError, match="dataset"):
        run_fn(SimpleNamespace(custom_config={}, hyperparameters=None,
                               model_run_dir=str(tmp_path), serving_model_dir=None))
    with pytest.raises(ConfigError, match="matches no file"):
        run_fn(SimpleNamespace(
            custom_config={"dataset": "synthetic-sims"}, hyperparameters={},
            model_run_dir=str(tmp_path), serving_model_dir=None,
            train_files=[str(tmp_path / "nothing*.tfrecord")], eval_files=None))
