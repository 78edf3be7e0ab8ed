"""A two-trial search that is killed inside its second trial and then resumed.

One search serves every test here (a trial costs a model trace, seconds on CPU): the
kill, the resume, the result files, and `pipelines.train --hparams` on the result.
"""

import json
import os

import keras
import pytest

from m3sa_tf.config import M3SAConfig
from tests.tuning.helpers import DATASET, SCALE, TINY_OVERRIDES
from tuning import results
from tuning.runner import BEST_FILE, SEARCH_FILE, SUMMARY_FILE, TRIALS_FILE, run_search


class SimulatedKill(BaseException):
    """Stands in for SIGINT/SIGKILL: keras-tuner catches Exception only, so this ends
    the search mid-trial the way an interruption does."""


class KillInTrial(keras.callbacks.Callback):
    """Raises SimulatedKill at the end of the first epoch of the `trial`-th fit."""

    def __init__(self, trial):
        super().__init__()
        self.trial = trial
        self.fits = 0

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.fits == self.trial:
            raise SimulatedKill()


def _search(data_dir, output_dir, extra_callbacks=()):
    base = M3SAConfig.for_dataset(DATASET, **TINY_OVERRIDES)
    return run_search(base, data_dir, output_dir, tuner="random", max_trials=2, epochs=1,
                      scale=SCALE, seed=7, fixed=TINY_OVERRIDES.keys(),
                      extra_callbacks=extra_callbacks)


@pytest.fixture(scope="module")
def resumed_search(tuning_data_dir, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("search"))
    with pytest.raises(SimulatedKill):
        _search(tuning_data_dir, output_dir, extra_callbacks=[KillInTrial(2)])
    rows_after_kill = results.read_csv(os.path.join(output_dir, TRIALS_FILE))
    best_after_kill = json.load(open(os.path.join(output_dir, BEST_FILE)))
    summary = _search(tuning_data_dir, output_dir)
    return {
        "output_dir": output_dir,
        "rows_after_kill": rows_after_kill,
        "best_after_kill": best_after_kill,
        "rows": results.read_csv(os.path.join(output_dir, TRIALS_FILE)),
        "summary": summary,
        "data_dir": tuning_data_dir,
    }


def test_a_killed_search_keeps_the_table_of_its_finished_trial(resumed_search):
    rows = resumed_search["rows_after_kill"]
    assert [(r["trial_id"], r["status"]) for r in rows] == [("0", "COMPLETED")]
    assert resumed_search["best_after_kill"]["dataset"] == DATASET


def test_the_resumed_search_runs_only_the_interrupted_trial(resumed_search):
    summary = resumed_search["summary"]
    assert summary["trials_run"] == ["1"]
    rows = resumed_search["rows"]
    assert [(r["trial_id"], r["status"]) for r in rows] == [("0", "COMPLETED"),
                                                            ("1", "COMPLETED")]
    # Trial 0 was not trained again: its row is exactly what it was before the kill.
    assert rows[0] == resumed_search["rows_after_kill"][0]
    # Trial 1 resumed from the checkpoint of the epoch it finished before the kill.
    state = json.load(open(os.path.join(resumed_search["output_dir"], "keras_tuner",
                                        "trial_1", "checkpoints", "state.json")))
    assert state["epochs_done"] == 1 and len(state["log"]) == 1


def test_the_trial_table_lists_every_searched_hyperparameter_and_the_objective(
        resumed_search):
    rows = resumed_search["rows"]
    columns = list(rows[0])
    searched = json.load(open(os.path.join(resumed_search["output_dir"], SEARCH_FILE)))
    assert searched["objective"] == "val_MAE"
    for name in searched["search_space"]:
        assert name in columns
    # synthetic-mosi has no unimodal labels: contrastive weights are searched, and the
    # "auto" key modality is a choice of the search.
    assert {"n_scales", "channel_ratio", "learning_rate", "dropout", "fused_weight",
            "contrastive_weight_text_audio", "key_modality"} <= set(searched["search_space"])
    assert not any(c.startswith("unimodal_weight_") for c in columns)
    for row in rows:
        assert row["objective_name"] == "val_MAE"
        assert float(row["objective"]) >= 0.0
        assert row["epochs_run"] == "1" and float(row["seconds"]) > 0.0
        assert 2 <= int(row["n_scales"]) <= 7 and 1 <= int(row["channel_ratio"]) <= 7


def test_best_hparams_is_the_full_config_of_the_best_trial(resumed_search):
    rows = resumed_search["rows"]
    best_row = min(rows, key=lambda r: float(r["objective"]))
    with open(os.path.join(resumed_search["output_dir"], BEST_FILE)) as handle:
        config = M3SAConfig.from_json(handle.read())
    assert config.n_scales == int(best_row["n_scales"])
    assert config.channel_ratio == int(best_row["channel_ratio"])
    assert config.learning_rate == pytest.approx(float(best_row["learning_rate"]))
    assert config.dropout == pytest.approx(float(best_row["dropout"]))
    assert config.key_modality == best_row["key_modality"]
    assert config.contrastive_weights["text_vision"] == pytest.approx(
        float(best_row["contrastive_weight_text_vision"]))
    # Fixed (not searched) values come from the base configuration; the training
    # budget is the configuration's, not the one-epoch trial budget.
    assert config.hidden_sizes == TINY_OVERRIDES["hidden_sizes"]
    assert config.epochs == M3SAConfig.for_dataset(DATASET).epochs
    summary = json.load(open(os.path.join(resumed_search["output_dir"], SUMMARY_FILE)))
    assert summary["best"]["trial_id"] == best_row["trial_id"]


def test_pipelines_train_accepts_and_uses_best_hparams(resumed_search, tmp_path):
    from pipelines import train

    best_path = os.path.join(resumed_search["output_dir"], BEST_FILE)
    run_dir = str(tmp_path / "run")
    code = train.main(["--hparams", best_path, "--data-dir", resumed_search["data_dir"],
                       "--output-dir", run_dir, "--scale", str(SCALE), "--epochs", "1",
                       "--quiet"])
    assert code == 0
    with open(best_path) as handle:
        tuned = json.load(handle)
    with open(os.path.join(run_dir, "config.json")) as handle:
        used = json.load(handle)
    for key in ("n_scales", "channel_ratio", "learning_rate", "dropout", "fused_weight",
                "contrastive_weights", "key_modality", "hidden_sizes"):
        assert used[key] == tuned[key], key
