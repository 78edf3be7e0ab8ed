"""The protocol drives the baselines exactly as it drives M³SA: seeds, resume, the run
directory, re-evaluation, a mirrored strategy."""

import json
import os

import pytest

from tests.pipelines.conftest import SCALE, worker_result

EPOCHS = {"epochs": 2, "batch_size": 16}


def _tiny(name, **extra):
    from m3sa_tf.models import get_spec

    hparams = dict(getattr(get_spec(name).model_class, "TINY_HPARAMS", {}))
    return {"model": name, "model_hparams": hparams, **EPOCHS, **extra}


@pytest.fixture(scope="module")
def mlf_dnn_seeds(data_dir, tmp_path_factory):
    from m3sa_tf import M3SAConfig
    from pipelines import training

    config = M3SAConfig.for_dataset("synthetic-sims", **_tiny("mlf_dnn"))
    run_dir = str(tmp_path_factory.mktemp("mlf_dnn"))
    summary = training.train_seeds(config, [1111, 1112], data_dir, run_dir, scale=SCALE,
                                   verbose=0)
    return config, run_dir, summary


def test_a_baseline_trains_over_seeds_into_ordinary_run_directories(mlf_dnn_seeds):
    _, run_dir, summary = mlf_dnn_seeds
    assert summary["seeds"] == [1111, 1112] and "Mult_acc_2" in summary["test"]
    with open(os.path.join(run_dir, "seed_1111", "metrics.json")) as handle:
        metrics = json.load(handle)
    assert metrics["model"] == "mlf_dnn" and metrics["model_title"] == "MLF-DNN"
    assert metrics["parameters"] > 0 and metrics["key_modality"] is None
    reported = metrics["hyperparameters"]
    assert reported["model"] == "mlf_dnn" and "post_fusion_dim" in reported["model_hparams"]
    assert "n_scales" not in reported  # M³SA's fields are not the baseline's
    # The unimodal heads are served and scored like M³SA's.
    assert set(metrics["test"]["unimodal_accuracy"]) == {"text", "audio", "vision"}
    with open(os.path.join(run_dir, "seed_1111", "predictions", "test.csv")) as handle:
        header = handle.readline().strip().split(",")
        first = handle.readline().strip().split(",")
    assert header == ["id", "label", "fused", "text", "audio", "vision"] and all(first)


def test_a_finished_baseline_run_is_not_trained_again(mlf_dnn_seeds, data_dir):
    from pipelines import training

    config, run_dir, summary = mlf_dnn_seeds
    again = training.train_seeds(config, [1111, 1112], data_dir, run_dir, scale=SCALE,
                                 verbose=0)
    assert again["test"] == summary["test"]


def test_a_baseline_run_reevaluates_and_exports(mlf_dnn_seeds, data_dir, tmp_path):
    from pipelines.export import export_run
    from pipelines.protocol import evaluate_run

    _, run_dir, _ = mlf_dnn_seeds
    seed_dir = os.path.join(run_dir, "seed_1112")
    with open(os.path.join(seed_dir, "metrics.json")) as handle:
        recorded = json.load(handle)["test"]
    again = evaluate_run(seed_dir, "test", data_dir, write=False)
    assert again["MAE"] == pytest.approx(recorded["MAE"], rel=1e-5)
    version_dir = export_run(run_dir, str(tmp_path / "serving"), model_name="mlf_dnn", log=None)
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))


def test_a_baseline_trains_under_a_mirrored_strategy(data_dir, tmp_path):
    from tests.pipelines.conftest import run_worker

    run_dir = str(tmp_path / "run")
    completed = run_worker({
        "dataset": "synthetic-mosi", "data_dir": data_dir, "output_dir": run_dir,
        "scale": SCALE, "overrides": _tiny("tlf_dnn"), "strategy": "mirrored",
        "logical_cpus": 2,
    })
    result = worker_result(completed)
    assert result["strategy"] == "MirroredStrategy" and result["num_replicas"] == 2
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        metrics = json.load(handle)
    assert metrics["model"] == "tlf_dnn"
    assert all(r["loss"] == r["loss"] for r in metrics["epoch_log"])  # no NaN
