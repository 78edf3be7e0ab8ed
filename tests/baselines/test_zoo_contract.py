"""The contract every baseline of the model zoo keeps, checked model by model.

Each model gets the same feature dict and must return `fused` (plus the unimodal heads it
has), ignore what lies past the lengths, stay finite on an empty modality, give every
trainable weight a gradient, survive a `.keras` round trip bit for bit, and learn.
Models are tiny (`tiny_hparams` of the spec, see conftest) so the whole zoo runs in
seconds per model.
"""

import numpy as np
import pytest
import keras
import tensorflow as tf

from m3sa_tf.models import get_spec
from tests.baselines.conftest import (
    BASELINES,
    FEATURE_DIMS,
    build_tiny,
    learnable_batches,
    pad_more,
    tiny_batch,
)

pytestmark = pytest.mark.parametrize("name", BASELINES)


def _numpy(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def test_outputs_are_fused_and_its_unimodal_heads_one_value_per_clip(name):
    model, config, unimodal = build_tiny(name)
    outputs = _numpy(model(tiny_batch(batch_size=5), training=False))
    assert list(outputs)[0] == "fused"
    for key in ("fused",) + tuple(m for m in ("text", "audio", "vision") if m in outputs):
        assert outputs[key].shape == (5,), key
        assert outputs[key].dtype == np.float32
    served = model.served_output_names()
    assert served[0] == "fused" and set(served) <= {"fused", "text", "audio", "vision"}


def test_values_past_the_lengths_do_not_change_the_output(name):
    model, _, _ = build_tiny(name)
    features = tiny_batch(seed=1)
    noisy = dict(features)
    rng = np.random.default_rng(7)
    for m in ("text", "audio", "vision"):
        steps = np.arange(features[m].shape[1])[None, :, None]
        past = steps >= features[f"{m}_length"][:, None, None]
        noisy[m] = np.where(past, rng.normal(size=features[m].shape) * 5.0,
                            features[m]).astype("float32")
    base = _numpy(model(features, training=False))
    for other in (noisy, pad_more(features, 3)):
        out = _numpy(model(other, training=False))
        for key in base:
            np.testing.assert_allclose(out[key], base[key], rtol=1e-4, atol=1e-5,
                                       err_msg=key)


def test_a_zero_length_modality_gives_finite_outputs(name):
    model, _, _ = build_tiny(name)
    features = tiny_batch(seed=2, zero_length_rows=(0, 3))
    for key, value in _numpy(model(features, training=False)).items():
        assert np.all(np.isfinite(value)), key


def test_every_trainable_weight_gets_a_gradient(name):
    model, _, unimodal = build_tiny(name)
    features = tiny_batch(batch_size=16, seed=4)
    # Off-centre labels: an L1 loss on labels symmetric about the output has a zero
    # gradient for the output bias.
    labels = {"fused": np.linspace(-0.4, 1.4, 16).astype("float32")}
    if unimodal:
        for i, m in enumerate(("text", "audio", "vision")):
            labels[m] = np.roll(labels["fused"], i + 1)
    with tf.GradientTape() as tape:
        outputs = model(features, training=True)
        loss = model.compute_loss(features, labels, outputs)
    grads = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(float(loss))
    missing = [w.path for w, g in zip(model.trainable_weights, grads)
               if g is None or not np.any(keras.ops.convert_to_numpy(g))]
    assert not missing, f"no gradient reaches {missing}"


def test_keras_file_round_trip_predicts_identically(name, tmp_path):
    model, config, _ = build_tiny(name)
    features = tiny_batch(seed=5)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.config.model_dict() == config.model_dict()
    before, after = _numpy(model(features)), _numpy(loaded(features))
    assert set(before) == set(after)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)


def test_a_short_training_lowers_the_validation_loss(name):
    model, config, unimodal = build_tiny(name)
    train, valid = learnable_batches(unimodal)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))

    def fused_error():
        out = _numpy(model(valid[0], training=False))
        return float(np.mean(np.abs(out["fused"] - valid[1]["fused"])))

    before = fused_error()
    model.fit(tf.data.Dataset.from_tensors(train).repeat(40), epochs=1, verbose=0)
    after = fused_error()
    assert after < 0.9 * before, (before, after)


def test_the_spec_names_its_defaults_and_search_space(name):
    spec = get_spec(name)
    for family in ("mosi", "sims"):
        assert spec.default_hparams(family), family
        training = spec.training_defaults(family)
        assert {"learning_rate", "batch_size"} <= set(training), family
    known = set(spec.default_hparams("mosi")) | {
        "learning_rate", "weight_decay", "batch_size", "dropout"}
    assert spec.search_space and set(spec.search_space) <= known
