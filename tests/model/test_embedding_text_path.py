"""The "embedding" text path (config.text_path="embedding"): the paper's GloVe branch.

The text comes as the data's own token ids (`text_token_ids` int32 [B, T], with
`text_length` [B]) and is looked up in a trainable `word_embedding` table that every
model of the zoo owns through `MultimodalModel`; `pipelines.word_vectors` can start that
table from a GloVe-format text file. Everything here is tiny: a 20-row, 5-wide table.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf import ConfigError, M3SAConfig
from m3sa_tf.models import build_model
from pipelines import export
from pipelines.protocol import build_compiled_model, resolve_vocab_size
from pipelines.word_vectors import WordVectorsError, apply_word_vectors, load_word_vectors
from tests.baselines.conftest import build_tiny
from tests.model.helpers import tiny_batch, tiny_config
from tfrecords import DatasetInfo

ROWS, WIDTH, STEPS = 20, 5, 7
NON_TEXT_DIMS = {"audio": 3, "vision": 4}


def embedding_config(**overrides):
    values = dict(text_path="embedding", vocab_size=ROWS, word_embedding_dim=WIDTH)
    values.update(overrides)
    return tiny_config("mosi", **values)


def embedding_model(seed=3, **overrides):
    keras.utils.set_random_seed(seed)
    return build_model(embedding_config(**overrides), NON_TEXT_DIMS, False)


def embedding_batch(batch_size=4, seed=0, text_lengths=(7, 3, 1, 5)):
    """Audio/vision features plus token ids in [1, ROWS) and zeros past each length."""
    rng = np.random.default_rng(seed)
    features = tiny_batch(batch_size, seed=seed, modalities=("audio", "vision"))
    lengths = np.asarray(text_lengths, "int32")
    valid = np.arange(STEPS)[None, :] < lengths[:, None]
    features["text_token_ids"] = (rng.integers(1, ROWS, size=(batch_size, STEPS))
                                  * valid).astype("int32")
    features["text_length"] = lengths
    return features


def fused(model, features):
    return np.asarray(model(features, training=False)["fused"])


@pytest.fixture(scope="module")
def model():
    """One untrained M³SA on the embedding path for the tests that only run it."""
    return embedding_model()


# ------------------------------------------------------------------ the model contract
def test_m3sa_reads_token_ids_through_its_own_embedding_table(model):
    assert model.word_embedding.name == "word_embedding"
    assert (model.word_embedding.input_dim, model.word_embedding.output_dim) == (ROWS, WIDTH)
    assert model.input_width("text") == WIDTH
    assert "text" not in model.input_keys()
    assert {"text_token_ids", "text_length"} <= set(model.input_keys())
    signature = model.input_signature()
    assert signature["text_token_ids"].dtype == tf.int32
    assert signature["text_token_ids"].shape.as_list() == [None, None]
    assert signature["text_length"].dtype == tf.int32
    assert signature["text_length"].shape.as_list() == [None]
    outputs = model(embedding_batch(), training=False)  # no `text` key given
    assert outputs["fused"].shape == (4,)
    assert np.all(np.isfinite(np.asarray(outputs["fused"])))


def test_m3sa_trains_the_table_in_a_step():
    model = embedding_model(seed=5, extractor="dense")
    before = model.word_embedding.get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    loss = model.train_on_batch(embedding_batch(), {"fused": np.ones(4, "float32")})
    assert np.isfinite(np.asarray(loss)).all()
    after = model.word_embedding.get_weights()[0]
    assert not np.allclose(before, after)


@pytest.mark.parametrize("name", ["lf_dnn", "ef_lstm"])
def test_a_baseline_of_the_zoo_takes_the_embedding_path(name):
    model, _, _ = build_tiny(name, text_path="embedding", vocab_size=ROWS,
                             word_embedding_dim=WIDTH)
    assert model.input_width("text") == WIDTH
    assert "text" not in model.input_keys()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    loss = model.train_on_batch(embedding_batch(), {"fused": np.ones(4, "float32")})
    assert np.isfinite(np.asarray(loss)).all()


def test_save_and_load_rebuild_the_same_table_and_predictions(model, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.config.vocab_size == ROWS
    assert loaded.word_embedding.input_dim == ROWS
    np.testing.assert_array_equal(loaded.word_embedding.get_weights()[0],
                                  model.word_embedding.get_weights()[0])
    features = embedding_batch(seed=1)
    np.testing.assert_allclose(fused(loaded, features), fused(model, features), atol=1e-6)


def test_ids_past_a_clips_length_do_not_change_its_prediction(model):
    features = embedding_batch(seed=2)
    changed = dict(features)
    ids = features["text_token_ids"].copy()
    past = np.arange(STEPS)[None, :] >= features["text_length"][:, None]
    ids[past] = 13
    changed["text_token_ids"] = ids
    np.testing.assert_allclose(fused(model, changed), fused(model, features), atol=1e-6)
    # While an id inside the length does change it.
    inside = dict(features, text_token_ids=features["text_token_ids"].copy())
    inside["text_token_ids"][0, 0] = 1 + inside["text_token_ids"][0, 0] % (ROWS - 1)
    assert not np.allclose(fused(model, inside)[0], fused(model, features)[0])


def test_an_id_outside_the_table_is_an_error_not_a_wrap(model):
    features = embedding_batch()
    features["text_token_ids"][1, 0] = ROWS
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"vocab_size={ROWS}"):
        model(features, training=False)


def test_vocab_size_none_is_the_datasets_and_a_direct_build_needs_it():
    config = embedding_config(vocab_size=None)
    with pytest.raises(ConfigError, match="vocab_size"):
        build_model(config, NON_TEXT_DIMS, False)
    info = DatasetInfo(name="synthetic-sims", family="sims", feature_dims={},
                       max_lengths={}, split_sizes={}, has_unimodal_labels=True,
                       label_range=(-1.0, 1.0))
    assert resolve_vocab_size(config, info).vocab_size == 21128  # bert-base-chinese
    assert resolve_vocab_size(embedding_config(), info).vocab_size == ROWS
    features_path = tiny_config("mosi")
    assert resolve_vocab_size(features_path, info) is features_path


def test_an_embedding_model_exports_and_serves(model, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(str(run_dir / "model.keras"))
    (run_dir / "config.json").write_text(model.config.to_json())
    # The text width is not needed on this path: the dataset's record may lack it.
    (run_dir / "dataset.json").write_text(json.dumps({"feature_dims": NON_TEXT_DIMS}))
    version_dir = export.export_run(str(run_dir), str(tmp_path / "serving"), log=None)
    serve = tf.saved_model.load(version_dir).signatures["serving_default"]
    assert serve.structured_input_signature[1]["text_token_ids"].dtype == tf.int32
    features = embedding_batch(seed=4)
    answer = serve(**{k: tf.constant(v) for k, v in features.items()})
    np.testing.assert_allclose(answer["fused"].numpy(), fused(model, features), atol=1e-5)


# ------------------------------------------------------------------ word vectors
VOCAB = ["[PAD]", "the", "Movie", "##ing", "##Ful", "[UNK]", "great"]


def vector(seed):
    return np.round(np.random.default_rng(seed).normal(size=WIDTH), 4).astype("float32")


def glove_line(token, values):
    return token + " " + " ".join(f"{v:.4f}" for v in values) + "\n"


@pytest.fixture()
def glove_files(tmp_path):
    """(vectors path, vocab path, {token: vector} written)."""
    rows = {"the": vector(1), "movie": vector(2), "ing": vector(3), "ful": vector(4),
            "great": vector(5), "Great": vector(6), "unused": vector(7)}
    # "great" comes before "Great": the exact spelling must still win.
    text = f"{len(rows)} {WIDTH}\n\n" + "".join(glove_line(t, v) for t, v in rows.items())
    vectors = tmp_path / "glove.txt"
    vectors.write_text(text, encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(vectors), str(vocab), rows


def test_glove_rows_go_to_their_ids_with_lowercase_and_wordpiece_fallbacks(glove_files):
    vectors, vocab, rows = glove_files
    base = np.full((ROWS, WIDTH), 9.0, "float32")
    matrix, coverage = load_word_vectors(vectors, vocab, WIDTH, vocab_size=ROWS, base=base)
    assert matrix.shape == (ROWS, WIDTH) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[1], rows["the"])      # as it is
    np.testing.assert_array_equal(matrix[2], rows["movie"])    # "Movie" lowercased
    np.testing.assert_array_equal(matrix[3], rows["ing"])      # "##ing" -> "ing"
    np.testing.assert_array_equal(matrix[4], rows["ful"])      # "##Ful" -> "ful"
    np.testing.assert_array_equal(matrix[6], rows["great"])
    for uncovered in (0, 5, *range(len(VOCAB), ROWS)):         # specials, ids past vocab
        np.testing.assert_array_equal(matrix[uncovered], base[uncovered])
    assert coverage == pytest.approx(5 / ROWS)


def test_the_exact_spelling_beats_the_lowercased_one(tmp_path):
    vectors = tmp_path / "glove.txt"
    vectors.write_text(glove_line("great", vector(1)) + glove_line("Great", vector(2)))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("Great\n")
    matrix, coverage = load_word_vectors(str(vectors), str(vocab), WIDTH)
    np.testing.assert_array_equal(matrix[0], vector(2))
    assert coverage == 1.0


def test_the_protocol_starts_the_table_from_the_vectors(glove_files):
    vectors, vocab, rows = glove_files
    config = embedding_config(word_vectors=vectors, word_vectors_vocab=vocab)
    info = DatasetInfo(name="mosi", family="mosi", feature_dims=dict(NON_TEXT_DIMS),
                       max_lengths={}, split_sizes={}, has_unimodal_labels=False,
                       label_range=(-3.0, 3.0))
    model = build_compiled_model(config, info, key_modality="text")
    assert model.word_vectors_coverage == pytest.approx(5 / ROWS)
    table = model.word_embedding.get_weights()[0]
    np.testing.assert_allclose(table[2], rows["movie"])
    # A second application keeps the rows without a vector as they are.
    before = table.copy()
    assert apply_word_vectors(model, config) == pytest.approx(5 / ROWS)
    np.testing.assert_array_equal(model.word_embedding.get_weights()[0], before)


@pytest.mark.parametrize("body, line, words", [
    (glove_line("the", vector(1)) + "movie 0.1 0.2 oops 0.4 0.5\n", 2, "not a number"),
    (glove_line("the", vector(1)) + "\n" + "movie 0.1 0.2 0.3\n", 3, "3 values"),
    (f"7 {WIDTH + 1}\n" + glove_line("the", vector(1)), 1, "width"),
    (glove_line("the", vector(1)) + "movie 0.1 0.2 nan 0.4 0.5\n", 2, "not finite"),
])
def test_a_malformed_vectors_file_names_its_file_and_line(tmp_path, body, line, words):
    vectors = tmp_path / "bad.txt"
    vectors.write_text(body, encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\nmovie\n")
    with pytest.raises(WordVectorsError, match=words) as caught:
        load_word_vectors(str(vectors), str(vocab), WIDTH)
    assert isinstance(caught.value, ValueError)
    assert f"{vectors}, line {line}" in str(caught.value)


def test_missing_files_and_a_too_long_vocabulary_are_clear_errors(glove_files, tmp_path):
    vectors, vocab, _ = glove_files
    missing = str(tmp_path / "nowhere.txt")
    with pytest.raises(WordVectorsError, match="nowhere.txt.*not found"):
        load_word_vectors(missing, vocab, WIDTH)
    with pytest.raises(WordVectorsError, match="nowhere.txt.*not found"):
        load_word_vectors(vectors, missing, WIDTH)
    with pytest.raises(WordVectorsError, match="vocab_size=3"):
        load_word_vectors(vectors, vocab, WIDTH, vocab_size=3)


# ------------------------------------------------------------------ configuration
def test_word_vectors_need_their_vocabulary_and_the_embedding_path():
    with pytest.raises(ConfigError, match="word_vectors_vocab"):
        M3SAConfig.for_dataset("mosi", text_path="embedding", word_vectors="glove.txt")
    with pytest.raises(ConfigError, match="text_path"):
        M3SAConfig.for_dataset("mosi", word_vectors="glove.txt",
                               word_vectors_vocab="vocab.txt")
    config = M3SAConfig.for_dataset("mosi", text_path="embedding", word_vectors="g.txt",
                                    word_vectors_vocab="v.txt")
    # Training fields: a saved model's config does not carry them.
    assert "word_vectors" not in config.model_dict()
    assert config.model_dict()["word_embedding_dim"] == 300
