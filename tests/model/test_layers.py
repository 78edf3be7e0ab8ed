"""The layers one by one: readouts, the SE over scales, the multi-scale block, fusion."""

import keras
import numpy as np
import pytest

from m3sa_tf.layers import (EarlyFusion, KeyModalityFusion, FusedLSTM, MultiScaleBlock,
                            ScaleSqueezeExcitation, SequenceReadout)

SEQUENCE = np.arange(2 * 3 * 2, dtype="float32").reshape(2, 3, 2)
MASK = np.array([[True, True, False], [False, False, False]])


@pytest.mark.parametrize("mode, expected", [
    ("last", [[2.0, 3.0], [0.0, 0.0]]),
    ("mean", [[1.0, 2.0], [0.0, 0.0]]),
    ("max", [[2.0, 3.0], [0.0, 0.0]]),
])
def test_readouts_use_only_valid_steps_and_give_zeros_for_length_zero(mode, expected):
    pooled = keras.ops.convert_to_numpy(SequenceReadout(mode)(SEQUENCE, MASK))
    np.testing.assert_allclose(pooled, expected)


def test_attention_readout_is_a_convex_combination_of_valid_steps():
    readout = SequenceReadout("attention")
    pooled = keras.ops.convert_to_numpy(readout(SEQUENCE, MASK))
    assert 0.0 <= pooled[0, 0] <= 2.0 and pooled[0, 1] - pooled[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(pooled[1], [0.0, 0.0])


def test_unknown_readout_is_rejected():
    with pytest.raises(ValueError, match="readout"):
        SequenceReadout("first")


def test_squeeze_is_a_mean_over_valid_steps_and_features_only():
    se = ScaleSqueezeExcitation(channel_ratio=2)
    scales = np.random.default_rng(0).normal(size=(2, 4, 3, 2)).astype("float32")
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    z = keras.ops.convert_to_numpy(se.squeeze(scales, mask))
    np.testing.assert_allclose(z[0], scales[0, :2].mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(z[1], scales[1].mean(axis=(0, 1)), rtol=1e-5)


def test_excitation_weights_react_to_the_input():
    se = ScaleSqueezeExcitation(channel_ratio=4)
    rng = np.random.default_rng(1)
    mask = np.ones((1, 6), bool)
    first = rng.normal(size=(1, 6, 4, 3)).astype("float32")
    second = first * np.array([3.0, -1.0, 0.5], "float32")
    gates_a = keras.ops.convert_to_numpy(se.compute_gates(first, mask))
    gates_b = keras.ops.convert_to_numpy(se.compute_gates(second, mask))
    assert gates_a.shape == (1, 3)
    assert np.all(gates_a >= 0.0)
    assert np.abs(gates_a - gates_b).max() > 1e-3
    # W1 is (n·r)×n and W2 n×(n·r), as in eq. 5.
    assert tuple(se.squeeze_to_hidden.kernel.shape) == (3, 12)
    assert tuple(se.hidden_to_gates.kernel.shape) == (12, 3)


def test_sigmoid_gate_keeps_weights_in_zero_one():
    se = ScaleSqueezeExcitation(channel_ratio=2, gate="sigmoid")
    scales = np.random.default_rng(2).normal(size=(2, 5, 3, 4)).astype("float32") * 10
    gates = keras.ops.convert_to_numpy(se.compute_gates(scales, np.ones((2, 5), bool)))
    assert np.all((gates >= 0.0) & (gates <= 1.0))


def test_multi_scale_block_mixes_the_scales_with_a_one_by_one_convolution():
    block = MultiScaleBlock(hidden_size=4, n_scales=3, channel_ratio=2, extractor="dense")
    u = np.random.default_rng(3).normal(size=(2, 5, 3)).astype("float32")
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    x, last_scale = block(u, mask)
    assert tuple(x.shape) == (2, 5, 4) and tuple(last_scale.shape) == (2, 5, 4)
    assert tuple(block.conv_kernel.shape) == (3,)
    # Recompute eq. 7 from the block's parts: Σ_k w_k s_k F^k + b.
    f1 = block.extract(u, mask)
    scales = [f1]
    for norm, dense in zip(block.scale_norms, block.scale_denses):
        scales.append(dense(norm(keras.ops.relu(scales[-1]))) * mask[..., None])
    stacked = keras.ops.stack(scales, axis=-1)
    gates = keras.ops.convert_to_numpy(block.excitation.compute_gates(stacked, mask))
    weights = keras.ops.convert_to_numpy(block.conv_kernel)
    expected = sum(weights[k] * gates[:, None, None, k] * keras.ops.convert_to_numpy(scales[k])
                   for k in range(3)) + float(block.conv_bias.numpy())
    expected *= mask[..., None]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(x), expected, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(last_scale),
                               keras.ops.convert_to_numpy(scales[-1]), atol=1e-6)


def test_single_scale_ablation_is_the_extractor_alone():
    block = MultiScaleBlock(hidden_size=4, n_scales=5, extractor="gru", multi_scale=False)
    u = np.random.default_rng(4).normal(size=(2, 5, 3)).astype("float32")
    x, last_scale = block(u, np.ones((2, 5), bool))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(x),
                               keras.ops.convert_to_numpy(last_scale))
    assert block.excitation is None and not block.scale_denses


@pytest.mark.parametrize("extractor", ["lstm", "gru", "simple_rnn", "dense", "conv"])
def test_block_outputs_are_zero_past_the_length_and_for_empty_rows(extractor):
    block = MultiScaleBlock(hidden_size=4, n_scales=2, channel_ratio=1, extractor=extractor)
    u = np.random.default_rng(5).normal(size=(3, 6, 2)).astype("float32")
    mask = np.array([[True] * 6, [True, True, True, False, False, False], [False] * 6])
    x, last_scale = (keras.ops.convert_to_numpy(t) for t in block(u * mask[..., None], mask))
    assert np.all(x[1, 3:] == 0.0) and np.all(x[2] == 0.0) and np.all(last_scale[2] == 0.0)
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("input_width, fused", [(3, True), (9, False)])
def test_fused_lstm_computes_keras_lstm_outputs_and_gradients(input_width, fused):
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(2).normal(size=(3, 7, input_width)).astype("float32"))
    reference = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    layer = FusedLSTM(4, return_sequences=True, return_state=True, fused_max_width=10)
    reference.build(x.shape)
    layer.build(x.shape)
    # A wide step (input + units > fused_max_width): Keras' own loop; else the fused kernel.
    assert layer.uses_fused_kernel(input_width) is fused
    layer.set_weights([w * 3.0 for w in reference.get_weights()])
    reference.set_weights(layer.get_weights())
    results = []
    for lstm in (reference, layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y, h, c = lstm(x)
            loss = tf.reduce_sum(y * tf.range(1.0, 5.0)) + tf.reduce_sum(c)
        grads = tape.gradient(loss, [x] + lstm.trainable_weights)
        results.append([y.numpy(), h.numpy(), c.numpy()] + [g.numpy() for g in grads])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # The same variables (names, shapes, order) as Keras' LSTM.
    assert ([v.path.split("/", 1)[1] for v in layer.weights]
            == [v.path.split("/", 1)[1] for v in reference.weights])
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, FusedLSTM) and restored.units == 4
    assert restored.fused_max_width == 10


@pytest.mark.parametrize("extractor", ["lstm", "gru", "simple_rnn", "conv"])
def test_block_outputs_at_valid_steps_do_not_depend_on_the_padding(extractor):
    # The recurrences run over the padding (right-padded, forward) and a convolution's
    # kernel reaches past a row's end, so what follows a row's length, and how much of
    # it there is, must never reach its valid outputs.
    block = MultiScaleBlock(hidden_size=4, n_scales=3, channel_ratio=1, extractor=extractor)
    rng = np.random.default_rng(8)
    u = rng.normal(size=(2, 5, 3)).astype("float32")
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    x_short, f_short = block(u * mask[..., None], mask)
    noisy = np.concatenate([u * mask[..., None] + 9.0 * ~mask[..., None],
                            rng.normal(size=(2, 4, 3)).astype("float32")], axis=1)
    long_mask = np.concatenate([mask, np.zeros((2, 4), bool)], axis=1)
    x_long, f_long = block(noisy, long_mask)
    for short, long in ((x_short, x_long), (f_short, f_long)):
        short, long = keras.ops.convert_to_numpy(short), keras.ops.convert_to_numpy(long)
        np.testing.assert_allclose(long[:, :5], short, rtol=1e-5, atol=1e-6)
        assert np.all(long[:, 5:] == 0.0)


def test_key_fusion_concatenates_cross_and_self_attention_on_the_key_length():
    fusion = KeyModalityFusion(("text", "audio", "vision"), "audio", fusion_dim=6, num_heads=3)
    rng = np.random.default_rng(6)
    xs = {"text": rng.normal(size=(2, 4, 5)), "audio": rng.normal(size=(2, 7, 3)),
          "vision": rng.normal(size=(2, 3, 2))}
    xs = {k: v.astype("float32") for k, v in xs.items()}
    ms = {k: np.ones(v.shape[:2], bool) for k, v in xs.items()}
    fused = keras.ops.convert_to_numpy(fusion(xs, ms))
    assert fused.shape == (2, 7, 18)  # [X_βα, X_βγ, X_ββ], β = audio
    assert [layer.name for layer in fusion.attentions.values()] == [
        "self_attention", "cross_attention_text", "cross_attention_vision"]


def test_cross_attention_to_an_empty_modality_contributes_zeros():
    fusion = KeyModalityFusion(("text", "audio"), "text", fusion_dim=4, num_heads=2)
    rng = np.random.default_rng(7)
    xs = {"text": rng.normal(size=(1, 3, 2)).astype("float32"),
          "audio": np.zeros((1, 5, 2), "float32")}
    ms = {"text": np.ones((1, 3), bool), "audio": np.zeros((1, 5), bool)}
    fused = keras.ops.convert_to_numpy(fusion(xs, ms))
    assert np.all(fused[..., :4] == 0.0) and np.abs(fused[..., 4:]).max() > 0.0


def test_early_fusion_aligns_modalities_on_the_longest_sequence():
    early = EarlyFusion(("audio", "vision"))
    xs = {"audio": np.ones((1, 2, 1), "float32"), "vision": 2 * np.ones((1, 4, 1), "float32")}
    ms = {"audio": np.array([[True, True]]), "vision": np.array([[True, True, True, False]])}
    fused, mask = (keras.ops.convert_to_numpy(t) for t in early(xs, ms))
    np.testing.assert_array_equal(fused[0, :, 0], [1, 1, 0, 0])
    np.testing.assert_array_equal(fused[0, :, 1], [2, 2, 2, 0])
    np.testing.assert_array_equal(mask[0], [True, True, True, False])
