"""The training protocol on tiny synthetic data, in this process."""

import csv
import json
import os

import pytest

from tests.pipelines.conftest import SCALE, TINY


@pytest.fixture(scope="module")
def sims_run(data_dir, tmp_path_factory):
    from m3sa_tf import M3SAConfig
    from pipelines import training

    config = M3SAConfig.for_dataset("synthetic-sims", **TINY)
    run_dir = str(tmp_path_factory.mktemp("sims_run"))
    metrics = training.train_and_evaluate(config, data_dir, run_dir, scale=SCALE, verbose=0)
    return config, run_dir, metrics


def test_short_training_lowers_the_validation_loss(sims_run):
    _, _, metrics = sims_run
    main = [r for r in metrics["epoch_log"] if r["phase"] == "main"]
    assert [r["epoch"] for r in main] == [0, 1, 2]
    assert min(r["val_loss"] for r in main[1:]) < main[0]["val_loss"]
    # The best epoch is picked on the fused head's validation loss (best_epoch_monitor).
    fused = [r["val_fused_loss"] for r in main]
    assert metrics["validation"]["loss"] == pytest.approx(min(fused))
    assert metrics["best_epoch"] == 1 + min(range(3), key=lambda i: fused[i])
    # Each phase's first epoch records its time to first step (tracing included).
    for phase in ("warmup", "main"):
        rows = [r for r in metrics["epoch_log"] if r["phase"] == phase]
        assert 0.0 < rows[0]["first_step_seconds"] < rows[0]["seconds"]
        assert all("first_step_seconds" not in r for r in rows[1:])


def test_run_dir_holds_the_contract_files(sims_run):
    config, run_dir, metrics = sims_run
    for name in ("metrics.json", "config.json", "dataset.json", "model.keras",
                 "predictions/test.csv"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert os.listdir(os.path.join(run_dir, "tensorboard"))
    assert not [n for n in os.listdir(run_dir) if n.startswith(".tmp")]
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        written = json.load(handle)
    assert written == json.loads(json.dumps(metrics))
    for key in ("test", "validation", "key_modality", "unimodal_validation_scores",
                "best_epoch", "hyperparameters", "wall_time_per_epoch_s"):
        assert key in written, key
    # SIMS: multitask and MMSA's SIMS metric names.
    assert written["task"] == "multitask"
    assert {"Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"} <= set(
        written["test"])
    with open(os.path.join(run_dir, "predictions", "test.csv")) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "label", "fused", "text", "audio", "vision"]
    with open(os.path.join(run_dir, "dataset.json")) as handle:
        assert len(rows) - 1 == json.load(handle)["split_sizes"]["test"]
    assert len({r[0] for r in rows[1:]}) == len(rows) - 1


def test_auto_key_modality_is_the_best_unimodal_head_on_validation(sims_run):
    _, run_dir, metrics = sims_run
    scores = metrics["unimodal_validation_scores"]
    assert set(scores) == {"text", "audio", "vision"}
    assert metrics["key_modality"] in scores
    assert scores[metrics["key_modality"]] == max(scores.values())
    selection = metrics["key_modality_selection"]
    assert selection["requested"] == "auto"
    # The default rule scores every head against the fused label; both rankings kept.
    assert selection["rule"] == "fused_label"
    assert selection["rankings"]["fused_label"] == scores
    assert set(selection["rankings"]["own_label"]) == set(scores)
    # The warm-up trains at its own rate (1e-3 by default), not TINY's 0.01.
    assert metrics["key_modality_selection"]["warmup_learning_rate"] == 1e-3
    assert [r["phase"] for r in metrics["epoch_log"]].count("warmup") == 1
    with open(os.path.join(run_dir, "config.json")) as handle:
        assert json.load(handle)["key_modality"] == metrics["key_modality"]


def test_rerunning_a_finished_run_returns_its_metrics_without_training(sims_run, data_dir):
    from pipelines import training

    config, run_dir, metrics = sims_run
    again = training.train_and_evaluate(config, data_dir, run_dir, scale=SCALE, verbose=0)
    assert again == json.loads(json.dumps(metrics))


def test_a_run_dir_of_other_hyperparameters_is_refused(sims_run, data_dir):
    from pipelines import training

    config, run_dir, _ = sims_run
    with pytest.raises(training.RunDirError, match="other hyper-parameters"):
        training.train_and_evaluate(config.replace(dropout=0.1), data_dir, run_dir,
                                    scale=SCALE, verbose=0)


def test_evaluate_cli_reproduces_the_test_metrics(sims_run, data_dir, capsys):
    from pipelines import evaluate

    _, run_dir, metrics = sims_run
    assert evaluate.main(["--run", run_dir, "--split", "test", "--data-dir", data_dir]) == 0
    result = json.loads(capsys.readouterr().out)
    for name, value in metrics["test"].items():
        if isinstance(value, float):
            assert result[name] == pytest.approx(value, abs=1e-6), name
    assert os.path.isfile(os.path.join(run_dir, "evaluation_test.json"))


def _numbers(run_dir, metrics):
    """What a run computed: its metrics, its per-epoch losses, its test predictions."""
    timings = ("seconds", "first_step_seconds")
    epochs = [{k: v for k, v in row.items() if k not in timings} for row in metrics["epoch_log"]]
    with open(os.path.join(run_dir, "predictions", "test.csv")) as handle:
        predictions = handle.read()
    return metrics["test"], metrics["validation"], epochs, predictions


def test_the_same_seed_trains_to_the_same_numbers_and_another_seed_does_not(
        sims_run, data_dir, tmp_path):
    from m3sa_tf import M3SAConfig
    from pipelines import training

    config, run_dir, metrics = sims_run
    again_dir = str(tmp_path / "again")
    again = training.train_and_evaluate(config, data_dir, again_dir, scale=SCALE, verbose=0)
    assert _numbers(again_dir, again) == _numbers(run_dir, metrics)

    other_config = M3SAConfig.for_dataset("synthetic-sims", **{**TINY, "seed": config.seed + 1})
    other_dir = str(tmp_path / "other_seed")
    other = training.train_and_evaluate(other_config, data_dir, other_dir, scale=SCALE,
                                        verbose=0)
    assert _numbers(other_dir, other)[3] != _numbers(run_dir, metrics)[3]
