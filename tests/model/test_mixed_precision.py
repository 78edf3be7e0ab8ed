"""Mixed precision on CPU: M³SA (and one baseline) under "mixed_bfloat16".

The GPU path is `keras.mixed_precision.set_global_policy("mixed_float16")`; a CPU has
no fast float16, so the same code path (half-precision compute, float32 variables,
float32 outputs and losses) is exercised here with bfloat16. float16's narrower range
is checked on the masking helpers directly (their "minus infinity" must stay finite).

The M³SA models train eagerly (`run_eagerly=True`: the same ops, policies and casts;
tracing one fusion model's train step costs 10–20 s on a busy 2-core runner); the
baseline trains through the traced `fit`, so the graph path is covered too.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.layers.masking import large_negative, masked_max, masked_softmax
from m3sa_tf.models import M3SAModel, build_model
from tests.model.helpers import FEATURE_DIMS, pad_more, tiny_batch, tiny_config

POLICY = "mixed_bfloat16"
# bfloat16 keeps 8 significant bits: 2^-7 ≈ 0.008 relative, a few roundings deep.
BF16_TOLERANCE = dict(rtol=3e-2, atol=3e-2)


@pytest.fixture
def mixed_policy():
    keras.mixed_precision.set_global_policy(POLICY)
    try:
        yield POLICY
    finally:
        keras.mixed_precision.set_global_policy("float32")


def labels_for(features, unimodal):
    """Labels that are a fixed function of the features, so a few steps can lower
    the loss."""
    signal = sum(features[m].sum(axis=(1, 2)) / np.maximum(features[f"{m}_length"], 1)
                 for m in ("text", "audio", "vision"))
    fused = np.tanh(signal / 2.0).astype("float32")
    keys = ("fused", "text", "audio", "vision") if unimodal else ("fused",)
    return {k: fused for k in keys}


def numpy_outputs(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def sublayers(model):
    return list(model._flatten_layers(include_self=False, recursive=True))


def assert_half_compute_float32_variables(model):
    layers = sublayers(model)
    assert layers
    wrong = [(l.name, l.dtype_policy.name) for l in layers if l.dtype_policy.name != POLICY]
    assert not wrong, f"sublayers outside {POLICY}: {wrong}"
    assert model.weights
    assert {v.dtype for v in model.weights} == {"float32"}


def train_steps(model, features, labels, steps, run_eagerly=True):
    """{"loss": [...], "fused_loss": [...]} of `steps` AdamW steps on one batch."""
    model.compile(optimizer=keras.optimizers.AdamW(3e-3), run_eagerly=run_eagerly)
    features = {k: tf.constant(v) for k, v in features.items()}
    labels = {k: tf.constant(v) for k, v in labels.items()}
    logs = [model.train_on_batch(features, labels, return_dict=True) for _ in range(steps)]
    return {k: [float(log[k]) for log in logs] for k in ("loss", "fused_loss")}


def assert_trains(history):
    """Finite losses, and the fused head's L1 error goes down. (The total loss of the
    contrastive task need not: eq. 26's exp(s_ii) weight grows as the pairs align, in
    float32 just as in bfloat16.)"""
    for name, values in history.items():
        assert np.all(np.isfinite(values)), (name, values)
    fused = history["fused_loss"]
    assert np.mean(fused[-3:]) < np.mean(fused[:3]), fused


# ---------------------------------------------------------------------------- (a)
def test_m3sa_key_fusion_trains_in_bfloat16_and_round_trips(mixed_policy, tmp_path):
    config = tiny_config("mosi", readout="attention")  # contrastive task, key fusion
    keras.utils.set_random_seed(0)
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=False)
    assert model.dtype_policy.name == POLICY
    assert_half_compute_float32_variables(model)

    features = tiny_batch(batch_size=16, seed=4, zero_length_rows=(3,))
    # What the layers compute, before `call`'s cast: bfloat16.
    inner = model.forward(*model.encode_inputs(features), training=False)
    assert {str(v.dtype) for v in inner.values()} == {"<dtype: 'bfloat16'>"}
    outputs = model(features, training=False)
    assert {k: str(v.dtype) for k, v in outputs.items()} == {
        k: "<dtype: 'float32'>" for k in outputs}

    labels = labels_for(features, False)
    # The same weights in float32: the bfloat16 loss is the float32 one, rounded.
    keras.mixed_precision.set_global_policy("float32")
    twin = build_model(config, FEATURE_DIMS, has_unimodal_labels=False)
    keras.mixed_precision.set_global_policy(POLICY)
    twin.set_weights(model.get_weights())
    loss_bf16 = float(model.compute_loss(features, labels, model(features)))
    loss_f32 = float(twin.compute_loss(features, labels, twin(features)))
    assert loss_bf16 == pytest.approx(loss_f32, rel=2e-2)

    data = tf.data.Dataset.from_tensors((features, labels)).repeat(4)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), run_eagerly=True)
    history = model.fit(data, epochs=2, verbose=0, shuffle=False).history
    assert np.all(np.isfinite(history["loss"])), history
    assert history["fused_loss"][1] < history["fused_loss"][0], history
    assert {v.dtype for v in model.weights} == {"float32"}

    # Padding changes nothing beyond bfloat16 rounding.
    reference = numpy_outputs(model(features, training=False))
    padded = numpy_outputs(model(pad_more(features, 4), training=False))
    for name in reference:
        np.testing.assert_allclose(padded[name], reference[name], **BF16_TOLERANCE,
                                   err_msg=name)

    # A modality of length 0 in every row: finite outputs, loss and gradients.
    empty = dict(features, audio_length=np.zeros_like(features["audio_length"]))
    with tf.GradientTape() as tape:
        loss = model.compute_loss(empty, labels, model(empty, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert np.isfinite(float(loss))
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(g)))
               for g in grads if g is not None)
    assert all(np.all(np.isfinite(v)) for v in numpy_outputs(model(empty)).values())

    path = str(tmp_path / "mixed.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.dtype_policy.name == POLICY
    assert_half_compute_float32_variables(loaded)
    after = numpy_outputs(loaded(features, training=False))
    for name in reference:
        np.testing.assert_array_equal(after[name], reference[name], err_msg=name)


@pytest.mark.parametrize("dataset, overrides", [
    ("mosi", dict(fusion="early", readout="max")),
    ("mosi", dict(fusion="late", readout="mean")),
    ("mosi", dict(fusion="equal", readout="attention")),
    ("sims", dict(fusion="key", task="multitask", readout="last")),
])
def test_m3sa_fusions_and_tasks_train_in_bfloat16(mixed_policy, dataset, overrides):
    unimodal = dataset == "sims"
    # A per-step Dense extractor keeps the traced steps small; the LSTM path is
    # covered above.
    config = tiny_config(dataset, extractor="dense", **overrides)
    keras.utils.set_random_seed(1)
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=unimodal)
    assert_half_compute_float32_variables(model)
    features = tiny_batch(batch_size=16, seed=5, zero_length_rows=(0,))
    losses = train_steps(model, features, labels_for(features, unimodal), steps=8)
    assert_trains(losses)
    outputs = model(features, training=False)
    assert all(v.dtype == tf.float32 for v in outputs.values())
    assert all(np.all(np.isfinite(v)) for v in numpy_outputs(outputs).values())


# ---------------------------------------------------------------------------- (b)
@pytest.mark.parametrize("fusion, readout", [
    ("key", "attention"), ("equal", "mean"), ("late", "attention"), ("early", "last"),
])
def test_model_dtype_reaches_every_sublayer(fusion, readout):
    assert keras.mixed_precision.global_policy().name == "float32"
    config = tiny_config("mosi", fusion=fusion, readout=readout)
    model = M3SAModel(config, FEATURE_DIMS, False, dtype=POLICY)
    model.build({})
    assert_half_compute_float32_variables(model)
    with_weights = [l for l in sublayers(model) if l.weights]
    assert with_weights and all(l.compute_dtype == "bfloat16" for l in with_weights)
    outputs = model(tiny_batch(seed=6, zero_length_rows=(1,)), training=False)
    assert all(v.dtype == tf.float32 for v in outputs.values())
    assert all(np.all(np.isfinite(v)) for v in numpy_outputs(outputs).values())


def test_model_dtype_trains_and_is_saved_under_the_float32_global_policy(tmp_path):
    config = tiny_config("mosi", extractor="gru")
    keras.utils.set_random_seed(2)
    model = M3SAModel(config, FEATURE_DIMS, False, dtype=POLICY)
    model.build({})
    features = tiny_batch(batch_size=16, seed=7)
    assert_trains(train_steps(model, features, labels_for(features, False), steps=8))
    path = str(tmp_path / "local_policy.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.dtype_policy.name == POLICY
    assert_half_compute_float32_variables(loaded)


def test_masking_constants_stay_finite_in_float16():
    assert large_negative("float16") > -65504  # float16's largest finite magnitude
    assert large_negative("float32") == large_negative("bfloat16") == -1e9
    scores = tf.constant([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], tf.float16)
    mask = tf.constant([[True, True, False], [False, False, False]])
    weights = keras.ops.convert_to_numpy(masked_softmax(scores, mask))
    assert weights.dtype == np.float16
    np.testing.assert_allclose(weights[0], [0.2689, 0.7311, 0.0], atol=1e-3)
    np.testing.assert_array_equal(weights[1], [0.0, 0.0, 0.0])
    sequence = tf.constant(-np.ones((2, 3, 2)), tf.float16)
    pooled = keras.ops.convert_to_numpy(masked_max(sequence, mask))
    np.testing.assert_array_equal(pooled, [[-1.0, -1.0], [0.0, 0.0]])


# ---------------------------------------------------------------------------- (c)
def test_a_baseline_trains_in_bfloat16(mixed_policy):
    from tests.baselines.conftest import build_tiny

    model, _, unimodal = build_tiny("lf_dnn")
    assert model.dtype_policy.name == POLICY
    assert_half_compute_float32_variables(model)
    features = tiny_batch(batch_size=16, seed=8, zero_length_rows=(2,))
    # The traced train step (graph mode) under the mixed policy.
    losses = train_steps(model, features, labels_for(features, unimodal), steps=8,
                         run_eagerly=False)
    assert_trains(losses)
    assert all(v.dtype == tf.float32 for v in model(features).values())
