"""`python -m pipelines.train` flag handling: user errors exit 2 with a clear message."""

import json

import pytest

from pipelines import train


def run_main(argv, capsys):
    code = train.main(argv)
    return code, capsys.readouterr().err


def test_unknown_dataset_exits_2_naming_the_known_ones(capsys):
    code, err = run_main(["--dataset", "imdb"], capsys)
    assert code == 2 and err.startswith("error: ") and "unknown dataset 'imdb'" in err


def test_a_real_dataset_that_is_not_built_exits_2_with_the_build_command(tmp_path, capsys):
    code, err = run_main(["--dataset", "mosi", "--data-dir", str(tmp_path),
                          "--output-dir", str(tmp_path / "run")], capsys)
    assert code == 2
    assert "not built" in err and "tfrecords.build" in err
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("item, message", [
    ("learning_rate", "expected KEY=VALUE"),
    ("no_such_field=1", "unknown hyper-parameter"),
    ("epochs=ten", "expected an integer"),
    ("multi_scale=yes", "expected true or false"),
    ("dropout=1.5", "dropout=1.5 must be in [0, 1)"),
    ("hidden_sizes.tongue=3", "hidden_sizes has unknown key"),
])
def test_bad_set_values_exit_2_naming_the_field(item, message, capsys):
    code, err = run_main(["--set", item], capsys)
    assert code == 2 and message in err


@pytest.mark.parametrize("argv, message", [
    (["--model", "nosuch"], "unknown model 'nosuch'; expected one of ['m3sa', "),
    (["--model", "mlf_dnn", "--dataset", "synthetic-mosi"], "has none (only SIMS does)"),
    (["--model", "tfn", "--set", "model_hparams.rank=3"], "no hyper-parameter(s) ['rank']"),
    (["--scale", "1.5"], "expected a fraction in (0, 1]"),
])
def test_bad_models_and_scales_exit_2_naming_what_is_accepted(argv, message, tmp_path,
                                                              capsys):
    code, err = run_main(argv + ["--output-dir", str(tmp_path / "run")], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "run").exists()


def test_bad_hparams_files_exit_2(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    code, err = run_main(["--hparams", str(missing)], capsys)
    assert code == 2 and "cannot read" in err and "missing.json" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{epochs: 3")
    code, err = run_main(["--hparams", str(broken)], capsys)
    assert code == 2 and "not valid JSON" in err
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"dataset": "synthetic-sims", "readout": "median"}))
    code, err = run_main(["--hparams", str(wrong)], capsys)
    assert code == 2 and "readout='median'" in err
    code, err = run_main(["--hparams", str(wrong), "--dataset", "synthetic-mosi"], capsys)
    assert code == 2 and "disagrees" in err


def test_flags_resolve_over_hparams_file_over_dataset_defaults(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"dataset": "synthetic-sims", "epochs": 7, "dropout": 0.2,
                                "hidden_sizes": {"text": 16}}))
    args = train.build_parser().parse_args(
        ["--hparams", str(path), "--set", "dropout=0.1", "hidden_sizes.audio=8",
         "--epochs", "5", "--key-modality", "audio"])
    config = train.resolve_config(args)
    assert config.dataset == "synthetic-sims"
    assert (config.epochs, config.dropout, config.key_modality) == (5, 0.1, "audio")
    assert config.hidden_sizes["text"] == 16 and config.hidden_sizes["audio"] == 8
    assert config.num_heads == 5  # the SIMS default survives a partial file


def test_bad_seeds_exit_2(capsys):
    code, err = run_main(["--seeds", "1,x"], capsys)
    assert code == 2 and "--seeds" in err


def test_quick_preset_fills_in_what_the_user_did_not_give():
    args = train.build_parser().parse_args(["--quick"])
    train.apply_quick(args, ["--quick"])
    config = train.resolve_config(args)
    assert args.scale == train.QUICK_SCALE
    assert (config.epochs, config.learning_rate) == (6, 1e-3)
    argv = ["--quick", "--epochs", "2", "--scale", "0.5", "--set", "learning_rate=3e-4"]
    args = train.build_parser().parse_args(argv)
    train.apply_quick(args, argv)
    config = train.resolve_config(args)
    assert (args.scale, config.epochs, config.learning_rate) == (0.5, 2, 3e-4)


def test_quick_preset_refuses_real_data(capsys):
    code, err = run_main(["--quick", "--dataset", "mosi"], capsys)
    assert code == 2 and "--quick is for the synthetic datasets" in err
