"""`python -m pipelines.experiment`: bad input is refused with exit status 2 and a message
naming the bad flag or value, before anything trains or anything is written; `--quick`
fills in the quick settings unless a flag says otherwise.

Every case here fails at argument / configuration checking; training is replaced by a
stub that records any call, so a case that got past the checks would show."""

import pytest

from m3sa_tf.models.registry import get_spec, model_names
from pipelines import experiment
from pipelines.experiments import runner

UNIMODAL_LABEL_MODELS = [n for n in model_names() if get_spec(n).needs_unimodal_labels]


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """Replaces the experiment's training loop; the list holds the calls it got."""
    calls = []

    def refuse(settings, **kwargs):
        calls.append(settings)
        raise AssertionError("the command must not reach training")

    monkeypatch.setattr(runner, "run_experiment", refuse)
    return calls


@pytest.fixture
def exp_dir(tmp_path):
    return tmp_path / "exp"


def run(name, exp_dir, *flags, dataset="synthetic-mosi"):
    return experiment.main([name, "--dataset", dataset, "--output-dir", str(exp_dir),
                            *flags])


def assert_nothing_written(exp_dir):
    assert not exp_dir.exists() or not any(exp_dir.iterdir())


# --- argparse ---------------------------------------------------------------------------


def test_an_unknown_experiment_name_is_a_usage_error(exp_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        experiment.main(["nosuch", "--dataset", "synthetic-mosi", "--output-dir",
                         str(exp_dir)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err
    assert "multiscale" in err
    assert_nothing_written(exp_dir)


@pytest.mark.parametrize("missing", ["--dataset", "--output-dir"])
def test_dataset_and_output_dir_are_required(missing, exp_dir, capsys):
    flags = {"--dataset": "synthetic-mosi", "--output-dir": str(exp_dir)}
    del flags[missing]
    with pytest.raises(SystemExit) as exit_:
        experiment.main(["multiscale", *[x for kv in flags.items() for x in kv]])
    assert exit_.value.code == 2
    assert f"the following arguments are required: {missing}" in capsys.readouterr().err
    assert_nothing_written(exp_dir)


# --- flags checked before training --------------------------------------------------------


BAD_INPUT = [
    ("multiscale", ["--seeds", "1,1"], "synthetic-mosi", "--seeds '1,1'"),
    ("multiscale", ["--seeds", "a"], "synthetic-mosi", "--seeds 'a'"),
    ("multiscale", ["--scale", "0"], "synthetic-mosi", "--scale 0"),
    ("multiscale", ["--scale", "2"], "synthetic-mosi", "--scale 2"),
    ("multiscale", ["--epochs", "0"], "synthetic-mosi", "--epochs 0"),
    ("multiscale", ["--quick"], "mosi", "--quick is for the synthetic datasets, not 'mosi'"),
    ("baselines", ["--models", "tfn,nosuch"], "synthetic-mosi", "unknown model 'nosuch'"),
    ("scales", ["--n", "9"], "synthetic-mosi", "--n values [9]"),
    ("scales", ["--r", "2,x"], "synthetic-mosi", "--r '2,x'"),
    ("multiscale", ["--bootstrap-resamples", "10"], "synthetic-mosi",
     "--bootstrap-resamples 10"),
    ("multiscale", ["--set", "nosuch=1"], "synthetic-mosi", "nosuch"),
    ("multiscale", [], "nosuch-dataset", "unknown dataset 'nosuch-dataset'"),
]


@pytest.mark.parametrize("name,flags,dataset,message", BAD_INPUT,
                         ids=[" ".join([case[0], *case[1], case[2]]) for case in BAD_INPUT])
def test_bad_input_exits_2_naming_it_and_writes_nothing(name, flags, dataset, message,
                                                        exp_dir, capsys, no_training):
    assert run(name, exp_dir, *flags, dataset=dataset) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert no_training == []
    assert_nothing_written(exp_dir)


@pytest.mark.parametrize("model", UNIMODAL_LABEL_MODELS)
def test_a_baseline_needing_unimodal_labels_is_refused_on_mosi_data(model, exp_dir, capsys,
                                                                   no_training):
    assert run("baselines", exp_dir, "--models", model) == 2
    assert f"{model} needs unimodal labels" in capsys.readouterr().err
    assert no_training == []
    assert_nothing_written(exp_dir)


def test_missing_word_vectors_file_is_refused(exp_dir, tmp_path, capsys, no_training):
    missing = tmp_path / "nowhere" / "glove.txt"
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("<pad>\nhello\n")
    assert run("transfer", exp_dir, "--word-vectors", str(missing),
               "--word-vectors-vocab", str(vocab)) == 2
    assert f"--word-vectors {missing}: no such file" in capsys.readouterr().err
    assert no_training == []
    assert_nothing_written(exp_dir)


def test_a_set_that_breaks_one_cell_names_that_cell(exp_dir, capsys, no_training):
    # The single-modality cells of Fig. 5 have no text to be the key modality.
    assert run("modalities", exp_dir, "--set", "key_modality=text") == 2
    assert "key_modality='text'" in capsys.readouterr().err
    assert no_training == []
    assert_nothing_written(exp_dir)


def test_good_input_reaches_training(exp_dir, no_training):
    # The counterpart of the cases above: the same command line, minus the bad flag,
    # passes every check (and the stub, standing in for training, fails it with 1).
    assert run("multiscale", exp_dir, "--seeds", "1,2", "--quick") == 1
    assert len(no_training) == 1
    assert no_training[0].seeds == (1, 2)


# --- --quick ----------------------------------------------------------------------------


def settings_for(*flags, dataset="synthetic-mosi"):
    argv = ["multiscale", "--dataset", dataset, "--output-dir", "EXP", *flags]
    return experiment.settings_from_args(experiment.build_parser().parse_args(argv), argv)


def learning_rates(settings):
    return {config.learning_rate for _, config in runner.resolve_cells(settings)}


def test_quick_fills_scale_epochs_and_learning_rate():
    settings = settings_for("--quick")
    assert settings.scale == experiment.QUICK_SCALE == 0.25
    assert settings.epochs == experiment.QUICK_EPOCHS == 6
    assert "learning_rate=0.001" in settings.assignments
    assert learning_rates(settings) == {1e-3}


def test_without_quick_the_configurations_own_settings_stay():
    settings = settings_for()
    assert (settings.scale, settings.epochs, settings.assignments) == (1.0, None, ())
    assert learning_rates(settings) != {1e-3}


@pytest.mark.parametrize("scale_flags", [["--scale", "0.5"], ["--scale=0.5"]])
def test_quick_keeps_an_explicit_scale(scale_flags):
    settings = settings_for("--quick", *scale_flags)
    assert settings.scale == 0.5
    assert settings.epochs == 6


def test_quick_keeps_explicit_epochs():
    settings = settings_for("--quick", "--epochs", "2")
    assert settings.epochs == 2
    assert settings.scale == 0.25


def test_quick_keeps_an_explicit_learning_rate():
    settings = settings_for("--quick", "--set", "learning_rate=0.01", "dropout=0.2")
    assert "learning_rate=0.001" not in settings.assignments
    assert learning_rates(settings) == {0.01}
    assert (settings.scale, settings.epochs) == (0.25, 6)


def test_quick_refuses_real_data():
    with pytest.raises(experiment.ConfigError, match="--quick"):
        settings_for("--quick", dataset="sims")
