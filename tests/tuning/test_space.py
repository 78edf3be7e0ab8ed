"""The search space comes from the model: M³SA's as before, a baseline's from its spec.

No training and no model here: declaring spaces on `keras_tuner.HyperParameters` and
mapping trial values back onto `M3SAConfig`.
"""

import keras_tuner
import pytest

from m3sa_tf.config import TRAINING_FIELDS, ConfigError, M3SAConfig
from m3sa_tf.models.registry import get_spec, model_names
from tuning import space, sweep
from tuning.hypermodel import M3SAHyperModel

BASELINES = [name for name in model_names() if name != "m3sa"]


def _base(name, **overrides):
    dataset = "synthetic-sims" if get_spec(name).needs_unimodal_labels else "synthetic-mosi"
    return M3SAConfig.for_dataset(dataset, model=name, **overrides)


def _declared(base, fixed=(), has_unimodal_labels=None):
    hp = keras_tuner.HyperParameters()
    if has_unimodal_labels is None:
        has_unimodal_labels = base.family == "sims"
    space.declare(hp, base, has_unimodal_labels, fixed)
    return hp


class _Info:
    def __init__(self, has_unimodal_labels):
        self.has_unimodal_labels = has_unimodal_labels
        self.family = "mosi"
        self.feature_dims = {"text": 6, "audio": 3, "vision": 4}


# ---------------------------------------------------------------------- declaration
@pytest.mark.parametrize("name", BASELINES)
def test_a_baselines_space_declares_exactly_its_spec_search_space(name):
    base = _base(name)
    hp = _declared(base)
    spec_space = get_spec(name).search_space
    assert set(hp.values) == set(spec_space)
    assert not {"n_scales", "channel_ratio", "fused_weight", "key_modality"} & (
        set(hp.values) - set(spec_space))
    for hyperparameter in hp.space:
        dimension = spec_space[hyperparameter.name]
        if dimension[0] == "int":
            assert isinstance(hyperparameter, keras_tuner.engine.hyperparameters.Int)
            assert (hyperparameter.min_value, hyperparameter.max_value) == dimension[1:]
        elif dimension[0] == "float":
            assert isinstance(hyperparameter, keras_tuner.engine.hyperparameters.Float)
            assert (hyperparameter.min_value, hyperparameter.max_value) == dimension[1:3]
            assert hyperparameter.sampling == dimension[3]
        else:
            assert isinstance(hyperparameter, keras_tuner.engine.hyperparameters.Choice)
            assert list(hyperparameter.values) == list(dimension[1])
    # The hypermodel reports the same names.
    hypermodel = M3SAHyperModel(base, _Info(base.family == "sims"))
    assert hypermodel.search_space_names() == sorted(spec_space)
    assert hypermodel.name == name


@pytest.mark.parametrize("name", BASELINES)
def test_the_first_trial_of_a_baseline_is_its_base_config_where_the_space_allows(name):
    base = _base(name)
    hp = _declared(base)
    for key, dimension in get_spec(name).search_space.items():
        current = (base.model_hparams[key] if key in base.model_hparams
                   else getattr(base, key))
        if dimension[0] == "choice":
            expected = current if current in dimension[1] else dimension[1][0]
        else:
            expected = min(max(current, dimension[1]), dimension[2])
        assert hp.values[key] == pytest.approx(expected), key


def test_defaults_are_clipped_into_range_or_the_first_choice():
    # lmf: rank is Int 3..6; weight_decay a choice among [0.0, 1e-4, 1e-3, 5e-3].
    base = _base("lmf", learning_rate=1.0, weight_decay=0.5,
                 model_hparams={"rank": 9})
    hp = _declared(base)
    assert hp.values["rank"] == 6
    assert hp.values["learning_rate"] == pytest.approx(0.005)
    assert hp.values["weight_decay"] == 0.0
    hp = _declared(_base("lmf", weight_decay=0.001, model_hparams={"rank": 1}))
    assert hp.values["rank"] == 3 and hp.values["weight_decay"] == 0.001


def test_fixed_model_hparams_and_training_fields_are_not_searched():
    base = _base("lf_dnn")
    searched = set(_declared(base, fixed={"model_hparams.text_out", "learning_rate"}).values)
    assert searched == {"post_fusion_dim", "weight_decay"}
    # "model_hparams" as a whole fixes every one of the model's own hyper-parameters.
    assert set(_declared(base, fixed={"model_hparams"}).values) == {"learning_rate",
                                                                     "weight_decay"}
    # A bare name is not a configuration key of a baseline hyper-parameter.
    assert "text_out" in _declared(base, fixed={"text_out"}).values


def test_set_keys_fix_single_model_hparams():
    from m3sa_tf.config import parse_assignments

    assert space.fixed_keys(parse_assignments(
        ["model_hparams.rank=4", "learning_rate=0.01", "hidden_sizes.text=8"])) == {
        "model_hparams.rank", "learning_rate", "hidden_sizes"}
    assert space.fixed_keys(parse_assignments(['model_hparams={"rank": 4}'])) == {
        "model_hparams.rank"}


def test_the_search_cli_passes_model_and_fixed_keys_on():
    from tuning.cli_args import base_config_from_args
    from tuning.cli_args import set_keys as fixed_keys
    from tuning.search import build_parser

    args = build_parser().parse_args(
        ["--dataset", "synthetic-mosi", "--output-dir", "T", "--model", "lmf",
         "--set", "model_hparams.rank=5", "--set", "batch_size=16"])
    base = base_config_from_args(args)
    assert base.model == "lmf" and base.model_hparams["rank"] == 5
    assert fixed_keys(args) == {"model_hparams.rank", "batch_size"}
    assert set(_declared(base, fixed_keys(args)).values) == {"learning_rate",
                                                             "weight_decay"}


def test_m3sa_keeps_its_own_space():
    base = M3SAConfig.for_dataset("synthetic-mosi")
    assert set(_declared(base, has_unimodal_labels=False).values) == {
        "n_scales", "channel_ratio", "learning_rate", "dropout", "fused_weight",
        "contrastive_weight_text_audio", "contrastive_weight_text_vision",
        "contrastive_weight_audio_vision", "key_modality"}
    assert set(_declared(base, fixed={"n_scales", "contrastive_weights"},
                         has_unimodal_labels=False).values) == {
        "channel_ratio", "learning_rate", "dropout", "fused_weight", "key_modality"}


# ---------------------------------------------------------------------- values → config
def test_baseline_values_map_to_model_hparams_and_training_fields():
    base = _base("lf_dnn")
    values = {"post_fusion_dim": 16, "text_out": 64, "learning_rate": 0.002,
              "weight_decay": 0.0005, "tuner/epochs": 3}
    overrides = space.overrides_from_values(values, base)
    assert set(overrides) == {"model_hparams", "learning_rate", "weight_decay"}
    config = space.config_from_values(values, base)
    assert config.model == "lf_dnn"
    assert config.model_hparams == {**base.model_hparams, "post_fusion_dim": 16,
                                    "text_out": 64}
    assert config.learning_rate == 0.002 and config.weight_decay == 0.0005
    # Everything that was not searched stays the base configuration's.
    assert config.replace(model_hparams=base.model_hparams, learning_rate=base.learning_rate,
                          weight_decay=base.weight_decay) == base


def test_names_shared_with_m3sa_fields_go_to_the_baselines_own_hyperparameters():
    # MISA's dropout and MLF-DNN's fused_weight are their own hyper-parameters, not the
    # M3SAConfig fields of the same name; batch_size is a training field.
    misa = _base("misa")
    config = space.config_from_values({"dropout": 0.5, "batch_size": 32}, misa)
    assert config.model_hparams["dropout"] == 0.5 and config.dropout == misa.dropout
    assert config.batch_size == 32
    mlf = _base("mlf_dnn")
    config = space.config_from_values({"fused_weight": 1.0, "text_weight": 0.0}, mlf)
    assert config.model_hparams["fused_weight"] == 1.0
    assert config.model_hparams["text_weight"] == 0.0
    assert config.fused_weight == mlf.fused_weight


def test_int_values_stay_ints_and_unknown_names_are_refused():
    base = _base("lmf")
    config = space.config_from_values({"rank": 5.0, "batch_size": 128}, base)
    assert config.model_hparams["rank"] == 5 and isinstance(config.model_hparams["rank"], int)
    assert config.batch_size == 128
    with pytest.raises(ConfigError, match="not part of model 'lmf'.*rank"):
        space.overrides_from_values({"n_scales": 3}, base)
    with pytest.raises(ConfigError, match="not part of the M3SA search space"):
        space.overrides_from_values({"rank": 3}, M3SAConfig.for_dataset("synthetic-mosi"))


def test_every_baselines_space_names_a_hyperparameter_or_a_training_field():
    for name in BASELINES:
        base = _base(name)
        for key in get_spec(name).search_space:
            where, config_key = space.baseline_target(base, key)
            assert (where == "model_hparams" and key in base.model_hparams) or (
                where == "training" and key in TRAINING_FIELDS), (name, key)


def test_a_trial_with_another_batch_size_trains_on_data_batched_its_way():
    base = _base("lmf")
    loaded = []

    def loader(config):
        loaded.append(config.batch_size)
        return {"train": f"train/{config.batch_size}", "valid": f"valid/{config.batch_size}"}

    hypermodel = M3SAHyperModel(base, _Info(False), data_loader=loader)
    same = base.replace(learning_rate=0.002)
    assert hypermodel.trial_data(same, "train", "valid") == ("train", "valid")
    other = base.replace(batch_size=128)
    assert hypermodel.trial_data(other, "train", "valid") == ("train/128", "valid/128")
    assert loaded == [128]
    with pytest.raises(ValueError, match="batch_size=128.*no data_loader"):
        M3SAHyperModel(base, _Info(False)).trial_data(other, "train", "valid")


def test_a_model_needing_unimodal_labels_is_refused_on_data_without_them():
    base = _base("mtfn")  # built for SIMS
    with pytest.raises(ConfigError, match="unimodal labels"):
        M3SAHyperModel(base, _Info(False))


# ---------------------------------------------------------------------- the n × r sweep
def test_the_sweep_refuses_a_baseline(tmp_path, capsys):
    code = sweep.main(["--dataset", "synthetic-mosi", "--model", "lf_dnn",
                       "--output-dir", str(tmp_path / "sweep"), "--n", "2", "--r", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "M³SA" in err and "'lf_dnn'" in err and "tuning.search --model lf_dnn" in err
    assert not (tmp_path / "sweep").exists()
