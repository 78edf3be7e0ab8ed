"""`python -m tuning.search --model lf_dnn`: a baseline searched over its own space.

One tiny search (2 random trials of 1 epoch on the session's tiny synthetic-mosi) serves
every test here. `--set model_hparams.text_out=…` holds one of LF-DNN's hyper-parameters
fixed, so the searched space is the rest of its spec's `search_space`.
"""

import json
import math
import os

import pytest

from m3sa_tf.config import M3SAConfig
from m3sa_tf.models.registry import get_spec
from tests.tuning.helpers import DATASET, SCALE
from tuning import results, search
from tuning.runner import BEST_FILE, SEARCH_FILE, SUMMARY_FILE, TRIALS_FILE

MODEL = "lf_dnn"
FIXED = {"hidden_dims": [8, 4, 8], "text_out": 8}
SEARCHED = sorted(set(get_spec(MODEL).search_space) - set(FIXED))


@pytest.fixture(scope="module")
def baseline_search(tuning_data_dir, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("search_lf_dnn"))
    argv = ["--dataset", DATASET, "--model", MODEL, "--data-dir", tuning_data_dir,
            "--output-dir", output_dir, "--tuner", "random", "--max-trials", "2",
            "--epochs", "1", "--scale", str(SCALE), "--seed", "3",
            "--set", "batch_size=16"]
    for key, value in FIXED.items():
        argv += ["--set", f"model_hparams.{key}={json.dumps(value)}"]
    code = search.main(argv)
    with open(os.path.join(output_dir, BEST_FILE)) as handle:
        best = json.load(handle)
    with open(os.path.join(output_dir, SEARCH_FILE)) as handle:
        settings = json.load(handle)
    with open(os.path.join(output_dir, SUMMARY_FILE)) as handle:
        summary = json.load(handle)
    return {"code": code, "output_dir": output_dir, "best": best, "settings": settings,
            "summary": summary,
            "rows": results.read_csv(os.path.join(output_dir, TRIALS_FILE))}


def test_the_search_finishes_both_trials(baseline_search):
    assert baseline_search["code"] == 0
    rows = baseline_search["rows"]
    assert [(r["trial_id"], r["status"]) for r in rows] == [("0", "COMPLETED"),
                                                            ("1", "COMPLETED")]
    for row in rows:
        # LF-DNN has no unimodal heads: the objective is the fused head's MAE.
        assert row["objective_name"] == "val_MAE"
        assert math.isfinite(float(row["objective"])) and float(row["objective"]) >= 0.0
        assert row["epochs_run"] == "1"


def test_the_trial_table_has_the_baselines_space_and_nothing_of_m3sas(baseline_search):
    assert baseline_search["settings"]["search_space"] == SEARCHED
    assert baseline_search["settings"]["base_config"]["model"] == MODEL
    columns = set(baseline_search["rows"][0])
    assert set(SEARCHED) <= columns
    assert not columns & {"n_scales", "channel_ratio", "dropout", "fused_weight",
                          "key_modality", "text_out", "hidden_dims"}
    assert not any(c.startswith(("contrastive_weight_", "unimodal_weight_")) for c in columns)


def test_best_hparams_is_the_baseline_with_the_searched_values(baseline_search):
    rows = baseline_search["rows"]
    best_row = min(rows, key=lambda r: float(r["objective"]))
    best = baseline_search["best"]
    assert best["model"] == MODEL and best["dataset"] == DATASET
    hparams = best["model_hparams"]
    assert hparams["post_fusion_dim"] == int(best_row["post_fusion_dim"])
    assert best["learning_rate"] == pytest.approx(float(best_row["learning_rate"]))
    assert best["weight_decay"] == pytest.approx(float(best_row["weight_decay"]))
    # Held fixed by --set, the rest from the model's defaults; trial budget not kept.
    assert hparams["hidden_dims"] == FIXED["hidden_dims"]
    assert hparams["text_out"] == FIXED["text_out"]
    defaults = get_spec(MODEL).default_hparams("mosi")
    assert hparams["dropouts"] == defaults["dropouts"]
    assert best["batch_size"] == 16
    config = M3SAConfig.from_dict(best)
    assert config.epochs == M3SAConfig.for_dataset(DATASET, model=MODEL).epochs
    assert baseline_search["summary"]["best"]["trial_id"] == best_row["trial_id"]


def test_the_trials_are_distinct_points_of_the_space(baseline_search):
    points = [tuple(row[name] for name in SEARCHED) for row in baseline_search["rows"]]
    assert len(set(points)) == 2
