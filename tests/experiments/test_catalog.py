"""pipelines.experiments.catalog (and runner.resolve_cells): which cells each of the
paper's experiments trains, how a cell is named on disk, how the user's base
configuration combines with a cell's overrides, and which numbers the paper reports.

Nothing here trains a model: cells are only resolved into configurations."""

import dataclasses

import pytest

from m3sa_tf.config import DEFAULT_MODEL, M3SAConfig
from m3sa_tf.models.registry import get_spec, model_names
from pipelines.experiments import catalog
from pipelines.experiments.catalog import (
    Cell,
    ExperimentError,
    ExperimentOptions,
    cell,
    check_cell_config,
    get_experiment,
)
from pipelines.experiments.runner import ExperimentSettings, resolve_cells

# The reference (first) cell of every experiment, as the paper's figures name it.
REFERENCE_LABELS = {
    "baselines": "M³SA",
    "modalities": "T+A+V",
    "multiscale": "T+A+V (MS)",
    "fusion": "auto key",
    "extractor": "LSTM",
    "transfer": "BERT features",
    "scales": "n=5 r=4",
    "robustness": "M³SA",
}
MODALITY_OF = {"T": "text", "A": "audio", "V": "vision"}
UNIMODAL_LABEL_MODELS = [n for n in model_names() if get_spec(n).needs_unimodal_labels]
WORD_VECTOR_OPTIONS = ExperimentOptions(word_vectors="/data/vectors/glove.6B.50d.txt",
                                        word_vectors_vocab="/data/vocab.txt")


def labels(name, options=ExperimentOptions()):
    return [c.label for c in get_experiment(name).cells(options)]


def options_for(name, family="mosi"):
    options = WORD_VECTOR_OPTIONS if name == "transfer" else ExperimentOptions()
    return dataclasses.replace(options, family=family)


def modalities_of(label):
    """"T+A (MS)" -> ["text", "audio"]."""
    return [MODALITY_OF[m] for m in label.split(" ")[0].split("+")]


# --- every experiment -------------------------------------------------------------------


def test_the_catalog_has_the_papers_experiments():
    assert set(catalog.experiment_names()) == set(REFERENCE_LABELS)


@pytest.mark.parametrize("family", ["mosi", "sims"])
@pytest.mark.parametrize("name", catalog.experiment_names())
def test_cells_have_unique_keys_and_the_reference_comes_first(name, family):
    experiment = get_experiment(name)
    cells = experiment.cells(options_for(name, family))
    keys = [c.key for c in cells]
    assert len(cells) >= 2
    assert len(set(keys)) == len(keys)
    assert len({c.label for c in cells}) == len(cells)
    assert cells[0].label == REFERENCE_LABELS[name]
    assert experiment.reference(options_for(name, family)) == cells[0]


def test_an_unknown_experiment_is_an_experiment_error_listing_the_known_ones():
    with pytest.raises(ExperimentError, match="unknown experiment 'nosuch'.*multiscale"):
        get_experiment("nosuch")


def test_an_experiment_with_repeated_cells_is_refused():
    twice = catalog.Experiment("twice", "t", "s", lambda options: [
        cell("a", multi_scale=False), cell("b", multi_scale=False)])
    with pytest.raises(ExperimentError, match="repeated cells"):
        twice.cells(ExperimentOptions())


# --- the cells of the paper's figures ---------------------------------------------------


def test_modalities_is_fig5_every_subset_of_the_three_modalities():
    cells = get_experiment("modalities").cells(ExperimentOptions())
    assert {c.label for c in cells} == {"T", "A", "V", "T+A", "T+V", "A+V", "T+A+V"}
    assert len(cells) == 7
    assert cells[0].overrides == ()  # the full model is the default configuration
    for c in cells[1:]:
        assert c.values == {"modalities": modalities_of(c.label)}


def test_multiscale_is_fig7_with_and_without_ms_for_three_modality_sets():
    assert labels("multiscale") == ["T+A+V (MS)", "T+A+V", "T+A (MS)", "T+A",
                                    "T+V (MS)", "T+V"]
    for c in get_experiment("multiscale").cells(ExperimentOptions()):
        assert c.values.get("multi_scale", True) is c.label.endswith("(MS)")


def test_fusion_is_fig8_each_key_modality_auto_and_the_three_other_fusions():
    cells = get_experiment("fusion").cells(ExperimentOptions())
    assert sorted(c.label for c in cells) == sorted(
        ["auto key", "T*", "A*", "V*", "Equal", "Early", "Late"])
    by_label = {c.label: c.values for c in cells}
    assert by_label["auto key"] == {}
    assert by_label["T*"] == {"key_modality": "text"}
    assert by_label["A*"] == {"key_modality": "audio"}
    assert by_label["V*"] == {"key_modality": "vision"}
    assert by_label["Equal"] == {"fusion": "equal"}
    assert by_label["Early"] == {"fusion": "early"}
    assert by_label["Late"] == {"fusion": "late"}


def test_extractor_is_fig9_lstm_gru_rnn_and_linear():
    cells = get_experiment("extractor").cells(ExperimentOptions())
    assert [c.label for c in cells] == ["LSTM", "GRU", "RNN", "Linear"]
    assert [c.values.get("extractor") for c in cells] == [None, "gru", "simple_rnn", "dense"]


def test_scales_default_grid_is_fig4_n_2_to_7_by_r_1_to_7():
    cells = get_experiment("scales").cells(ExperimentOptions())
    grid = [(c.values["n_scales"], c.values["channel_ratio"]) for c in cells]
    assert len(cells) == 42
    assert set(grid) == {(n, r) for n in range(2, 8) for r in range(1, 8)}
    assert grid[0] == (5, 4)
    assert cells[0].label == "n=5 r=4"


def test_scales_grid_follows_the_options_and_without_5_4_keeps_its_order():
    cells = get_experiment("scales").cells(ExperimentOptions(n_values=(2, 3),
                                                             r_values=(1, 6)))
    assert [c.label for c in cells] == ["n=2 r=1", "n=2 r=6", "n=3 r=1", "n=3 r=6"]
    with_5_4 = get_experiment("scales").cells(ExperimentOptions(n_values=(3, 5),
                                                                r_values=(4,)))
    assert [c.label for c in with_5_4] == ["n=5 r=4", "n=3 r=4"]


def test_baselines_on_sims_data_cover_the_whole_zoo():
    cells = get_experiment("baselines").cells(ExperimentOptions(family="sims"))
    assert [c.model for c in cells].count(DEFAULT_MODEL) == 1
    assert cells[0].model == DEFAULT_MODEL
    assert sorted(c.model for c in cells) == sorted(model_names())
    assert [c.label for c in cells[1:]] == [get_spec(c.model).title for c in cells[1:]]


def test_baselines_on_mosi_data_leave_out_models_that_need_unimodal_labels():
    assert UNIMODAL_LABEL_MODELS, "the zoo has models trained on unimodal labels"
    cells = get_experiment("baselines").cells(ExperimentOptions(family="mosi"))
    assert sorted(c.model for c in cells) == sorted(
        n for n in model_names() if n not in UNIMODAL_LABEL_MODELS)


@pytest.mark.parametrize("model", UNIMODAL_LABEL_MODELS)
def test_naming_a_model_that_needs_unimodal_labels_on_mosi_data_is_an_error(model):
    with pytest.raises(ExperimentError, match=f"{model} needs unimodal labels"):
        get_experiment("baselines").cells(ExperimentOptions(models=(model,), family="mosi"))
    sims = get_experiment("baselines").cells(ExperimentOptions(models=(model,), family="sims"))
    assert [c.model for c in sims] == [DEFAULT_MODEL, model]


def test_baselines_models_option_selects_the_compared_models_in_its_order():
    cells = get_experiment("baselines").cells(ExperimentOptions(models=("tfn", "lf_dnn")))
    assert [c.model for c in cells] == [DEFAULT_MODEL, "tfn", "lf_dnn"]
    assert [c.key for c in cells] == ["default", "model=tfn", "model=lf_dnn"]


def test_robustness_compares_m3sa_with_modality_dropout_and_default_baselines():
    cells = get_experiment("robustness").cells(ExperimentOptions(modality_dropout=0.2))
    assert cells[1].values == {"modality_dropout": 0.2}
    assert [c.model for c in cells[2:]] == list(catalog.DEFAULT_ROBUSTNESS_MODELS)
    for rate in (0.0, 1.0):
        with pytest.raises(ExperimentError, match="--modality-dropout"):
            get_experiment("robustness").cells(ExperimentOptions(modality_dropout=rate))


def test_transfer_has_a_glove_cell_only_with_word_vectors():
    assert labels("transfer") == ["BERT features", "word embedding"]
    cells = get_experiment("transfer").cells(WORD_VECTOR_OPTIONS)
    assert [c.label for c in cells] == ["BERT features", "word embedding", "GloVe"]
    assert cells[2].values == {"text_path": "embedding",
                               "word_vectors": "/data/vectors/glove.6B.50d.txt",
                               "word_vectors_vocab": "/data/vocab.txt"}


def test_transfer_word_vectors_without_their_vocabulary_is_an_error():
    with pytest.raises(ExperimentError, match="--word-vectors-vocab"):
        get_experiment("transfer").cells(ExperimentOptions(word_vectors="glove.txt"))


# --- Cell.key ---------------------------------------------------------------------------


def test_a_cell_without_overrides_is_keyed_default():
    assert Cell("M³SA").key == "default"
    assert cell("anything").key == "default"


def test_a_key_is_the_sorted_overrides_written_out():
    assert cell("x", multi_scale=False, modalities=["text", "audio"]).key == \
        "modalities=text+audio,multi_scale=false"
    assert cell("x", n_scales=5, channel_ratio=4).key == "channel_ratio=4,n_scales=5"
    assert cell("x", modality_dropout=0.3, bert_trainable=True).key == \
        "bert_trainable=true,modality_dropout=0.3"


def test_a_file_path_in_a_key_is_reduced_to_its_base_name():
    assert cell("x", word_vectors="/data/vectors/glove.txt").key == "word_vectors=glove.txt"
    assert cell("x", word_vectors="C:\\data\\glove.txt").key == "word_vectors=glove.txt"
    assert cell("x", word_vectors="/data/vectors/").key == "word_vectors=vectors"


def test_the_same_overrides_always_give_the_same_key_whatever_the_label_or_order():
    a = cell("T+A", multi_scale=False, modalities=["text", "audio"])
    b = cell("other label", modalities=("text", "audio"), multi_scale=False)
    assert a.key == b.key
    assert cell("x", modalities=["audio", "text"]).key != a.key


def test_experiments_share_the_runs_of_their_common_cells():
    def key_of(name, label):
        return {c.label: c.key for c in get_experiment(name).cells(ExperimentOptions())}[label]

    full_model = {key_of("modalities", "T+A+V"), key_of("multiscale", "T+A+V (MS)"),
                  key_of("fusion", "auto key"), key_of("extractor", "LSTM"),
                  key_of("baselines", "M³SA"), key_of("robustness", "M³SA")}
    assert full_model == {"default"}
    assert key_of("multiscale", "T+A (MS)") == key_of("modalities", "T+A")


def test_cell_values_are_plain_lists_and_hashable_cells_hold_tuples():
    c = cell("T+A", modalities=["text", "audio"])
    assert c.overrides == (("modalities", ("text", "audio")),)
    assert c.values == {"modalities": ["text", "audio"]}
    assert hash(c) == hash(cell("T+A", modalities=["text", "audio"]))


# --- resolve_cells: the configuration of every cell -------------------------------------


@pytest.mark.parametrize("dataset", ["synthetic-mosi", "synthetic-sims"])
@pytest.mark.parametrize("name", catalog.experiment_names())
def test_every_cell_of_every_experiment_resolves_to_a_valid_config(name, dataset, tmp_path):
    options = WORD_VECTOR_OPTIONS if name == "transfer" else ExperimentOptions()
    settings = ExperimentSettings(name, dataset, str(tmp_path / "exp"), options=options)
    resolved = resolve_cells(settings)
    family = M3SAConfig.for_dataset(dataset).family
    assert [c for c, _ in resolved] == get_experiment(name).cells(
        dataclasses.replace(options, family=family))
    for c, config in resolved:
        assert isinstance(config, M3SAConfig)
        assert config.dataset == dataset
        assert config.model == c.model
        for field, value in c.values.items():
            actual = getattr(config, field)
            assert (list(actual) if isinstance(actual, tuple) else actual) == value
    assert not (tmp_path / "exp").exists()  # resolving writes nothing


def test_resolved_configs_are_what_the_cell_labels_say(tmp_path):
    def resolved(name):
        settings = ExperimentSettings(name, "synthetic-mosi", str(tmp_path))
        return {c.label: config for c, config in resolve_cells(settings)}

    for label, config in resolved("multiscale").items():
        assert config.multi_scale is label.endswith("(MS)")
        assert list(config.modalities) == modalities_of(label)
    for label, config in resolved("modalities").items():
        assert list(config.modalities) == modalities_of(label)
    fusion = resolved("fusion")
    assert (fusion["auto key"].fusion, fusion["auto key"].key_modality) == ("key", "auto")
    assert fusion["V*"].key_modality == "vision"
    assert fusion["Late"].fusion == "late"
    extractors = {label: config.extractor for label, config in resolved("extractor").items()}
    assert extractors == {"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn",
                          "Linear": "dense"}
    reference = resolved("scales")["n=5 r=4"]
    assert (reference.n_scales, reference.channel_ratio) == (5, 4)


def test_set_assignments_reach_every_cell_and_the_cells_own_override_wins(tmp_path):
    settings = ExperimentSettings(
        "scales", "synthetic-mosi", str(tmp_path),
        assignments=("dropout=0.2", "n_scales=3", "channel_ratio=2"), epochs=3,
        options=ExperimentOptions(n_values=(4, 5), r_values=(4, 6)))
    resolved = {c.label: config for c, config in resolve_cells(settings)}
    assert {config.dropout for config in resolved.values()} == {0.2}
    assert {config.epochs for config in resolved.values()} == {3}
    assert {label: (config.n_scales, config.channel_ratio)
            for label, config in resolved.items()} == {
        "n=5 r=4": (5, 4), "n=4 r=4": (4, 4), "n=4 r=6": (4, 6), "n=5 r=6": (5, 6)}


def test_an_assignment_that_would_change_the_reference_cell_is_refused(tmp_path):
    # The reference "auto key" carries no override; --set key_modality=audio would
    # silently turn it into A*.
    settings = ExperimentSettings("fusion", "synthetic-mosi", str(tmp_path),
                                  assignments=("key_modality=audio",))
    with pytest.raises(ExperimentError, match="key_modality"):
        resolve_cells(settings)


def test_a_cell_the_configuration_refuses_is_an_error_naming_the_cell(tmp_path):
    # key_modality=text for every cell cannot hold where a cell drops the text.
    settings = ExperimentSettings("modalities", "synthetic-mosi", str(tmp_path),
                                  assignments=("key_modality=text",))
    with pytest.raises(ExperimentError, match=r"cell 'A\+V' \(modalities=audio\+vision\)"):
        resolve_cells(settings)


def test_a_baseline_that_needs_unimodal_labels_cannot_run_on_mosi_data(tmp_path):
    model = UNIMODAL_LABEL_MODELS[0]
    settings = ExperimentSettings("baselines", "synthetic-mosi", str(tmp_path),
                                  options=ExperimentOptions(models=(model,)))
    with pytest.raises(ExperimentError, match=model):
        resolve_cells(settings)
    settings = ExperimentSettings("baselines", "synthetic-sims", str(tmp_path),
                                  options=ExperimentOptions(models=(model,)))
    assert [config.model for _, config in resolve_cells(settings)] == [DEFAULT_MODEL, model]


@pytest.mark.parametrize("seeds", [(), (1, 1)])
def test_resolve_cells_wants_distinct_seeds(seeds, tmp_path):
    with pytest.raises(ExperimentError, match="--seeds"):
        resolve_cells(ExperimentSettings("extractor", "synthetic-mosi", str(tmp_path),
                                         seeds=seeds))


def test_resolve_cells_wants_a_positive_epoch_cap(tmp_path):
    with pytest.raises(ExperimentError, match="--epochs 0"):
        resolve_cells(ExperimentSettings("extractor", "synthetic-mosi", str(tmp_path),
                                         epochs=0))


def test_check_cell_config_accepts_the_cells_config_and_names_a_contradiction():
    c = cell("T+A", multi_scale=False, modalities=["text", "audio"])
    matching = M3SAConfig.for_dataset("synthetic-mosi", multi_scale=False,
                                      modalities=["text", "audio"])
    check_cell_config(matching, c)  # no error
    other = M3SAConfig.for_dataset("synthetic-mosi", multi_scale=False)
    with pytest.raises(ExperimentError, match=r"cell 'T\+A' sets modalities="):
        check_cell_config(other, c)


# --- paper_numbers ----------------------------------------------------------------------


def test_paper_numbers_are_table_ii_as_fractions_for_baselines_on_sims():
    experiment = get_experiment("baselines")
    cells = experiment.cells(ExperimentOptions(family="sims"))
    numbers = experiment.paper_numbers("sims", cells)
    assert numbers["M³SA"]["Mult_acc_2"] == pytest.approx(0.8162)
    assert numbers["M³SA"] == dict(zip(catalog.FIGURE_METRICS["sims"],
                                       catalog.PAPER_TABLE_II[DEFAULT_MODEL]))
    assert numbers[get_spec("tfn").title]["MAE"] == pytest.approx(0.4352)
    assert set(numbers) == {c.label for c in cells if c.model in catalog.PAPER_TABLE_II}
    for row in numbers.values():
        assert set(row) == set(catalog.FIGURE_METRICS["sims"])
        assert all(0.0 <= value <= 1.0 for value in row.values())


def test_paper_numbers_are_empty_elsewhere():
    baselines = get_experiment("baselines")
    assert baselines.paper_numbers("mosi", baselines.cells(ExperimentOptions())) == {}
    multiscale = get_experiment("multiscale")
    assert multiscale.paper_numbers("sims", multiscale.cells(ExperimentOptions())) == {}
