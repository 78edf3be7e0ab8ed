"""Which seed of a `pipelines.train --seeds` run is exported: the only one, the one with
the lowest validation loss, or the one --seed names; and the record of that choice.

The run directories hold tiny untrained models (tests.serving.helpers.write_run_dir)
and the metrics export reads; the test metrics favour another seed than the
validation loss, so a choice made on test numbers would show.
"""

import json
import os
import shutil

import numpy as np
import pytest

from pipelines import export
from tests.serving.helpers import build_tiny_model, random_features, tiny_config, write_run_dir

# seed: validation loss (the best epoch's fused_loss), test MAE
SEEDS = {1111: (0.9, 0.1), 2222: (0.7, 0.9), 3333: (0.8, 0.5)}


def seed_metrics(seed, validation_loss, test_mae):
    """The part of a seed's metrics.json that export reads, and a decoy test number."""
    return {"seed": seed, "validation": {"loss": validation_loss, "MAE": validation_loss},
            "test": {"MAE": test_mae},
            "hyperparameters": {"best_epoch_monitor": "fused_loss"}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny models with different weights, saved once as run directories:
    {"plain": dir, "distinct": dir, "features": inputs, "distinct_fused": its output}."""
    root = tmp_path_factory.mktemp("seed_models")
    config = tiny_config()
    plain = build_tiny_model(config, seed=0)
    distinct = build_tiny_model(config, seed=1)
    features = random_features(distinct.input_signature())
    return {
        "plain": write_run_dir(str(root / "plain"), plain, config),
        "distinct": write_run_dir(str(root / "distinct"), distinct, config),
        "features": features,
        "distinct_fused": np.asarray(distinct(features, training=False)["fused"]),
    }


def make_seeds_run(run_dir, models, seeds, distinct_seed=None, unfinished=()):
    """RUN/seed_<s>/ per seed as `pipelines.train --seeds` leaves them, plus RUN's
    summary metrics.json; `distinct_seed` gets the other model's weights, `unfinished`
    seeds lack metrics.json (training writes it last)."""
    for seed, (validation_loss, test_mae) in seeds.items():
        seed_dir = os.path.join(run_dir, f"seed_{seed}")
        source = models["distinct" if seed == distinct_seed else "plain"]
        shutil.copytree(source, seed_dir)
        config = tiny_config(seed=seed).to_dict()
        with open(os.path.join(seed_dir, "config.json"), "w") as handle:
            json.dump(config, handle)
        if seed not in unfinished:
            with open(os.path.join(seed_dir, "metrics.json"), "w") as handle:
                json.dump(seed_metrics(seed, validation_loss, test_mae), handle)
    with open(os.path.join(run_dir, "metrics.json"), "w") as handle:
        json.dump({"seeds": sorted(seeds)}, handle)
    return run_dir


def export_record(version_dir):
    with open(os.path.join(version_dir, "assets.extra", export.EXPORT_RECORD)) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def seeds_run(models, tmp_path_factory):
    return make_seeds_run(str(tmp_path_factory.mktemp("seeds") / "run"), models, SEEDS,
                          distinct_seed=2222)


def test_a_single_seed_directory_is_exported_without_seed(models, tmp_path, capsys):
    run = make_seeds_run(str(tmp_path / "run"), models, {1111: SEEDS[1111]})
    assert export.main(["--run", run, "--export-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "exporting seed 1111" in out and "the only seed" in out
    version_dir = out.strip().splitlines()[-1]
    assert version_dir == str(tmp_path / "out" / "m3sa" / "1")
    source = export_record(version_dir)["source"]
    assert source["seed"] == 1111 and source["seeds"] == [1111]
    assert source["exported_run_dir"] == os.path.join(os.path.abspath(run), "seed_1111")


def test_several_seeds_export_the_lowest_validation_loss_and_record_it(
    seeds_run, models, tmp_path, capsys
):
    import tensorflow as tf

    assert export.main(["--run", seeds_run, "--export-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"exporting seed 2222 of {os.path.abspath(seeds_run)}")
    assert "lowest validation loss (fused_loss" in lines[0]
    assert "seed 1111 0.9, seed 2222 0.7, seed 3333 0.8" in lines[0]
    source = export_record(lines[-1])["source"]
    assert source.pop("seed_choice").startswith("lowest validation loss (fused_loss")
    assert source == {
        "run_dir": os.path.abspath(seeds_run),
        "exported_run_dir": os.path.join(os.path.abspath(seeds_run), "seed_2222"),
        "seed": 2222,
        "seeds": [1111, 2222, 3333],
        "validation_loss": {"1111": 0.9, "2222": 0.7, "3333": 0.8},
        "validation_loss_monitor": "fused_loss",
    }
    # The weights served are seed 2222's, not only its name in the record.
    serve = tf.saved_model.load(lines[-1]).signatures["serving_default"]
    fused = serve(**{k: tf.constant(v) for k, v in models["features"].items()})["fused"]
    np.testing.assert_allclose(fused.numpy(), models["distinct_fused"], atol=1e-5)


def test_seed_chooses_the_exported_seed(seeds_run, tmp_path, capsys):
    assert export.main(["--run", seeds_run, "--export-dir", str(tmp_path),
                        "--seed", "3333"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "exporting seed 3333" in lines[0] and "requested with --seed" in lines[0]
    source = export_record(lines[-1])["source"]
    assert source["seed"] == 3333 and source["seed_choice"] == "requested with --seed"
    assert source["exported_run_dir"].endswith("seed_3333")


def test_a_seed_that_is_not_there_exits_2_naming_the_seeds(seeds_run, tmp_path, capsys):
    assert export.main(["--run", seeds_run, "--export-dir", str(tmp_path / "out"),
                        "--seed", "4444"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --seed 4444 is not in")
    assert "its seeds are 1111, 2222, 3333" in err
    assert not (tmp_path / "out").exists()


def test_an_unfinished_seed_blocks_the_default_choice_but_not_seed(models, tmp_path, capsys):
    run = make_seeds_run(str(tmp_path / "run"), models, SEEDS, unfinished=(2222,))
    assert export.main(["--run", run, "--export-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "seed_2222 has no finished metrics.json" in err and "--seed" in err
    assert not (tmp_path / "out").exists()
    path, source = export.choose_run(run, seed=3333)
    assert path == os.path.join(run, "seed_3333")
    assert source["validation_loss"] == {"1111": 0.9, "2222": None, "3333": 0.8}


def test_a_single_run_knows_its_own_seed(models, tmp_path, capsys):
    path, source = export.choose_run(models["plain"])
    assert path == models["plain"]
    assert source["seed"] == tiny_config().seed and source["seed_choice"] == "the run's only seed"
    assert export.main(["--run", models["plain"], "--export-dir", str(tmp_path),
                        "--seed", "4444"]) == 2
    err = capsys.readouterr().err
    assert f"single run of seed {tiny_config().seed}" in err and "--seed 4444" in err
