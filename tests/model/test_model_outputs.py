"""M3SAModel: the output dict of interfaces §3 for every fusion strategy, modality subset
and extractor; padding past the lengths never changes an output."""

import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.models import build_model
from tests.model.helpers import FEATURE_DIMS, pad_more, tiny_batch, tiny_config

SUBSETS = [("text",), ("audio",), ("vision",), ("text", "audio"), ("text", "vision"),
           ("audio", "vision"), ("text", "audio", "vision")]


def expected_keys(fusion, modalities, contrastive):
    keys = {"fused"}
    if fusion != "early":
        keys |= set(modalities)
        if contrastive:
            keys |= {f"embedding_{m}" for m in modalities}
    return keys


@pytest.mark.parametrize("modalities", SUBSETS, ids="+".join)
def test_key_fusion_outputs_for_every_modality_subset(modalities):
    config = tiny_config(modalities=list(modalities), key_modality=modalities[0])
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=False)
    features = tiny_batch(modalities=modalities)
    features["id"] = np.array([b"x"] * 4)  # extra keys are ignored
    outputs = model(features)
    assert set(outputs) == expected_keys("key", modalities, contrastive=True)
    for name, value in outputs.items():
        shape = (4, 4) if name.startswith("embedding_") else (4,)
        assert tuple(value.shape) == shape, name
        assert np.all(np.isfinite(value))


@pytest.mark.parametrize("fusion, modalities", [
    ("equal", ("text", "audio", "vision")), ("equal", ("audio", "vision")),
    ("late", ("text", "audio", "vision")), ("late", ("text",)),
    ("early", ("text", "audio", "vision")), ("early", ("audio", "vision")),
])
def test_every_fusion_strategy_returns_the_documented_outputs(fusion, modalities):
    config = tiny_config("sims", fusion=fusion, modalities=list(modalities))
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=True)
    outputs = model(tiny_batch(modalities=modalities))
    assert set(outputs) == expected_keys(fusion, modalities, contrastive=False)
    assert all(tuple(v.shape) == (4,) for v in outputs.values())


@pytest.mark.parametrize("extractor, multi_scale", [
    ("lstm", False), ("gru", True), ("simple_rnn", True), ("dense", True), ("conv", True),
])
def test_every_extractor_with_and_without_multi_scale(extractor, multi_scale):
    config = tiny_config(extractor=extractor, multi_scale=multi_scale, key_modality="audio")
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=False)
    outputs = model(tiny_batch())
    assert tuple(outputs["fused"].shape) == (4,)
    assert model.fusion.key_modality == "audio"


def test_auto_key_modality_builds_with_text_as_provisional_key():
    model = build_model(tiny_config(key_modality="auto"), FEATURE_DIMS, False)
    assert model.key_modality == "text"
    model = build_model(tiny_config(key_modality="auto"), FEATURE_DIMS, False,
                        key_modality="vision")
    assert model.key_modality == "vision"


@pytest.mark.parametrize("fusion, readout", [
    ("key", "last"), ("key", "attention"), ("equal", "mean"), ("late", "max"),
    ("early", "last"),
])
def test_padding_past_the_lengths_changes_no_output(fusion, readout):
    config = tiny_config(fusion=fusion, readout=readout)
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=False)
    features = tiny_batch(zero_length_rows=(1,))
    # A row where only the key modality is empty, and one where only audio is.
    features["text_length"][2] = 0
    features["text"][2] = 0.0
    features["audio_length"][3] = 0
    features["audio"][3] = 0.0
    base = model(features)
    padded = model(pad_more(features, extra=5))
    for name in base:
        assert np.all(np.isfinite(base[name])), name
        np.testing.assert_allclose(base[name], padded[name], atol=1e-5, err_msg=name)


def test_a_batch_trimmed_to_its_longest_clip_predicts_as_the_padded_one():
    # What batches padded to their longest clip give the model, down to a modality
    # that every clip lacks (0 steps).
    model = build_model(tiny_config(), FEATURE_DIMS, has_unimodal_labels=False)
    features = tiny_batch()
    features["audio_length"][:] = 0
    features["audio"][:] = 0.0
    trimmed = dict(features)
    for m in ("text", "audio", "vision"):
        trimmed[m] = features[m][:, :int(features[f"{m}_length"].max())]
    assert trimmed["audio"].shape[1] == 0
    base, short = model(features), model(trimmed)
    for name in base:
        assert np.all(np.isfinite(short[name])), name
        np.testing.assert_allclose(base[name], short[name], atol=1e-5, err_msg=name)


def test_garbage_past_the_lengths_is_ignored():
    model = build_model(tiny_config(), FEATURE_DIMS, has_unimodal_labels=False)
    features = tiny_batch()
    noisy = dict(features)
    for m in ("text", "audio", "vision"):
        steps = features[m].shape[1]
        past = np.arange(steps)[None, :, None] >= features[f"{m}_length"][:, None, None]
        noisy[m] = features[m] + 7.0 * past
    base, other = model(features), model(noisy)
    for name in base:
        np.testing.assert_allclose(base[name], other[name], atol=1e-5, err_msg=name)


def test_traces_once_for_any_batch_size_and_sequence_length():
    model = build_model(tiny_config(), FEATURE_DIMS, has_unimodal_labels=False)
    forward = tf.function(model.call, input_signature=[model.input_signature()])
    for batch_size, extra in ((4, 0), (3, 4), (1, 9)):
        features = pad_more(tiny_batch(batch_size=batch_size, seed=batch_size), extra)
        features = {k: tf.constant(v) for k, v in features.items()}
        traced = forward(features)
        eager = model(features)
        for name in eager:
            np.testing.assert_allclose(traced[name], eager[name], atol=1e-5)
    assert forward.experimental_get_tracing_count() == 1


def test_missing_feature_is_named_in_the_error():
    model = build_model(tiny_config(), FEATURE_DIMS, has_unimodal_labels=False)
    features = tiny_batch()
    del features["audio_length"]
    with pytest.raises(KeyError, match="audio_length"):
        model(features)


def test_wrong_feature_width_is_reported():
    model = build_model(tiny_config(), FEATURE_DIMS, has_unimodal_labels=False)
    features = tiny_batch()
    features["vision"] = np.zeros((4, 5, 9), "float32")
    with pytest.raises(ValueError, match="vision"):
        model(features)
