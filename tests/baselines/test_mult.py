"""MulT's own pieces: the crossmodal transformer's masks, the pooling to `max_steps`, the
position codes, and one attention layer recomputed in NumPy."""

import math

import numpy as np
import pytest
import keras
import tensorflow as tf

from m3sa_tf.config import ConfigError
from m3sa_tf.layers.crossmodal_transformer import CrossmodalTransformer, attention_mask
from m3sa_tf.layers.positional_embedding import SinusoidalPositionalEmbedding
from m3sa_tf.models.baselines.mult import pool_valid_steps
from tests.baselines.conftest import build_tiny
from tests.model.helpers import pad_more, tiny_batch


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _mask(lengths, steps):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def _padded(rng, lengths, steps, width):
    values = rng.normal(size=(len(lengths), steps, width)).astype("float32")
    return values * _mask(lengths, steps)[..., None]


def _noise_past(values, lengths, rng, scale=10.0):
    past = ~_mask(lengths, values.shape[1])[..., None]
    return np.where(past, rng.normal(size=values.shape) * scale, values).astype("float32")


@pytest.mark.parametrize("causal", [False, True])
def test_keys_past_the_source_length_do_not_change_the_output(causal):
    rng = np.random.default_rng(0)
    layer = CrossmodalTransformer(8, num_heads=2, num_layers=2, causal=causal, seed=1)
    target_lengths, source_lengths = [4, 2, 1], [6, 3, 0]
    target = _padded(rng, target_lengths, 4, 8)
    source = _padded(rng, source_lengths, 6, 8)
    target_mask, source_mask = _mask(target_lengths, 4), _mask(source_lengths, 6)
    base = _np(layer(target, target_mask, source, source_mask))
    noisy = _np(layer(target, target_mask, _noise_past(source, source_lengths, rng),
                      source_mask))
    np.testing.assert_allclose(noisy, base, rtol=1e-5, atol=1e-5)
    # More padding on either side changes nothing either.
    longer = _np(layer(np.pad(target, ((0, 0), (0, 2), (0, 0))), _mask(target_lengths, 6),
                       np.pad(source, ((0, 0), (0, 5), (0, 0))), _mask(source_lengths, 11)))
    np.testing.assert_allclose(longer[:, :4], base, rtol=1e-5, atol=1e-5)
    # Padding rows of the target stay zero; an empty source leaves finite values.
    assert np.all(longer[:, 4:] == 0) and np.all(base[1, 2:] == 0)
    assert np.all(np.isfinite(base))


def test_target_padding_does_not_reach_valid_rows_of_self_attention():
    rng = np.random.default_rng(1)
    layer = CrossmodalTransformer(6, num_heads=3, num_layers=2, causal=True, seed=2)
    lengths = [5, 3, 0]
    sequence = _padded(rng, lengths, 5, 6)
    mask = _mask(lengths, 5)
    base = _np(layer(sequence, mask))
    noisy = _np(layer(_noise_past(sequence, lengths, rng), mask))
    np.testing.assert_allclose(noisy, base, rtol=1e-5, atol=1e-5)
    longer = _np(layer(np.pad(sequence, ((0, 0), (0, 3), (0, 0))), _mask(lengths, 8)))
    np.testing.assert_allclose(longer[:, :5], base, rtol=1e-5, atol=1e-5)
    assert np.all(base[2] == 0) and np.all(np.isfinite(base))


def test_an_empty_source_gives_finite_gradients():
    layer = CrossmodalTransformer(4, num_heads=2, num_layers=1, seed=3)
    target = keras.Variable(np.ones((2, 3, 4), "float32"))
    source = np.ones((2, 5, 4), "float32")
    with tf.GradientTape() as tape:
        out = layer(target, np.ones((2, 3), bool), source, np.zeros((2, 5), bool))
        loss = keras.ops.sum(out ** 2)
    grads = tape.gradient(loss, [target] + layer.trainable_weights)
    assert all(g is None or np.all(np.isfinite(_np(g))) for g in grads)


def test_the_causal_mask_is_mults_future_mask_offset_by_the_valid_lengths():
    # Full rows: MulT's buffered_future_mask, triu(ones, 1 + |Tk - Tq|) masked out.
    for tq, tk in ((3, 5), (5, 3), (4, 4)):
        expected = ~np.triu(np.ones((tq, tk), bool), 1 + abs(tk - tq))
        got = _np(attention_mask(np.ones((1, tq), bool), np.ones((1, tk), bool), True))[0]
        np.testing.assert_array_equal(got, expected)
    # A padded row: the offset comes from the valid lengths (2 queries, 4 keys), and
    # padding queries and keys attend / are attended by nothing.
    got = _np(attention_mask(_mask([2], 3), _mask([4], 6), True))[0]
    expected = np.zeros((3, 6), bool)
    expected[:2, :4] = ~np.triu(np.ones((2, 4), bool), 3)
    np.testing.assert_array_equal(got, expected)


def _pool_reference(values, length, max_steps):
    if length <= max_steps:
        return values[:length]
    edges = [(s * length) // max_steps for s in range(max_steps + 1)]
    return np.stack([values[a:b].mean(axis=0) for a, b in zip(edges, edges[1:])])


def test_pooling_to_max_steps_averages_the_valid_steps_only():
    rng = np.random.default_rng(2)
    lengths = [9, 4, 7, 0, 1]
    values = _padded(rng, lengths, 9, 3)
    pooled, mask = (_np(v) for v in pool_valid_steps(values, _mask(lengths, 9), 4))
    assert pooled.shape == (5, 4, 3)
    np.testing.assert_array_equal(mask, _mask([4, 4, 4, 0, 1], 4))
    for row, length in enumerate(lengths):
        expected = _pool_reference(values[row], length, 4)
        np.testing.assert_allclose(pooled[row, :len(expected)], expected, rtol=1e-6,
                                   atol=1e-6)
        assert np.all(pooled[row, len(expected):] == 0)
    # Noise past the lengths, or more padding, changes neither values nor mask.
    for other, steps in ((_noise_past(values, lengths, rng), 9),
                         (np.pad(values, ((0, 0), (0, 6), (0, 0))), 15)):
        again, again_mask = (_np(v) for v in
                             pool_valid_steps(other, _mask(lengths, steps), 4))
        np.testing.assert_allclose(again, pooled, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(again_mask, mask)
    # max_steps 0 (or None) leaves the sequence alone.
    same, _ = pool_valid_steps(values, _mask(lengths, 9), 0)
    assert same is values


def _fairseq_codes(steps, dim):
    half = dim // 2
    freq = np.exp(np.arange(half) * -(math.log(10000) / (half - 1)))
    angles = np.arange(1, steps + 1)[:, None] * freq[None, :]
    codes = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    return np.pad(codes, ((0, 0), (0, dim % 2)))


@pytest.mark.parametrize("dim", [6, 7])
def test_position_codes_follow_fairseq_and_skip_the_padding(dim):
    codes = _np(SinusoidalPositionalEmbedding(dim)(_mask([5, 2], 5)))
    np.testing.assert_allclose(codes[0], _fairseq_codes(5, dim), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(codes[1, :2], _fairseq_codes(2, dim), rtol=1e-5, atol=1e-6)
    assert np.all(codes[1, 2:] == 0)


def _layer_norm(x, norm, eps=1e-5):
    gamma, beta = (_np(w) for w in norm.weights)
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def test_one_crossmodal_layer_matches_a_numpy_recomputation():
    rng = np.random.default_rng(3)
    d, heads = 6, 2
    layer = CrossmodalTransformer(d, heads, 1, causal=True, seed=4)
    tl, sl = [3, 2], [4, 1]
    target, source = _padded(rng, tl, 3, d), _padded(rng, sl, 4, d)
    tm, sm = _mask(tl, 3), _mask(sl, 4)
    got = _np(layer(target, tm, source, sm))

    block = layer.blocks[0]
    attention = block["attention"]
    wq, bq = _np(attention._query_dense.kernel), _np(attention._query_dense.bias)
    wk, bk = _np(attention._key_dense.kernel), _np(attention._key_dense.bias)
    wv, bv = _np(attention._value_dense.kernel), _np(attention._value_dense.bias)
    wo, bo = _np(attention._output_dense.kernel), _np(attention._output_dense.bias)
    allowed = _np(attention_mask(tm, sm, True))
    for b in range(2):
        x = math.sqrt(d) * target[b, :tl[b]] + _fairseq_codes(tl[b], d)
        s = math.sqrt(d) * source[b, :sl[b]] + _fairseq_codes(sl[b], d)
        q_in = _layer_norm(x, block["attention_norm"])
        k_in = _layer_norm(s, block["attention_norm"])
        q = np.einsum("td,dhk->thk", q_in, wq) + bq
        k = np.einsum("td,dhk->thk", k_in, wk) + bk
        v = np.einsum("td,dhk->thk", k_in, wv) + bv
        scores = np.einsum("thk,shk->hts", q, k) / math.sqrt(d // heads)
        scores = np.where(allowed[b, :tl[b], :sl[b]][None], scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = np.einsum("hts,shk->thk", weights, v)
        x = x + np.einsum("thk,hkd->td", context, wo) + bo
        h = np.maximum(_layer_norm(x, block["ffn_norm"]) @ _np(block["fc1"].kernel)
                       + _np(block["fc1"].bias), 0)
        x = x + h @ _np(block["fc2"].kernel) + _np(block["fc2"].bias)
        expected = _layer_norm(x, layer.final_norm)
        np.testing.assert_allclose(got[b, :tl[b]], expected, rtol=1e-4, atol=1e-4)
        assert np.all(got[b, tl[b]:] == 0)


def test_the_model_keeps_padding_invariance_without_pooling_and_with_two_modalities():
    for overrides in ({"model_hparams": {"max_steps": 0}},
                      {"modalities": ("text", "vision")}):
        model, _, _ = build_tiny("mult", **overrides)
        modalities = model.modalities
        features = tiny_batch(seed=6, modalities=modalities)
        base = _np(model(features)["fused"])
        again = _np(model(pad_more(features, 4, modalities))["fused"])
        np.testing.assert_allclose(again, base, rtol=1e-5, atol=1e-5)


def test_one_modality_is_a_config_error_naming_the_need():
    with pytest.raises(ConfigError, match="at least two modalities"):
        build_tiny("mult", modalities=("text",))


def test_the_layers_survive_their_config_round_trip():
    rng = np.random.default_rng(5)
    layer = CrossmodalTransformer(4, 2, 2, attn_dropout=0.1, causal=True,
                                  position_embedding=False, seed=7, name="cross")
    target, source = _padded(rng, [3, 1], 3, 4), _padded(rng, [2, 4], 4, 4)
    masks = _mask([3, 1], 3), _mask([2, 4], 4)
    before = _np(layer(target, masks[0], source, masks[1]))
    copy = keras.layers.deserialize(keras.layers.serialize(layer))
    copy(target, masks[0], source, masks[1])
    copy.set_weights(layer.get_weights())
    assert copy.get_config() == layer.get_config()
    np.testing.assert_array_equal(_np(copy(target, masks[0], source, masks[1])), before)
    codes = SinusoidalPositionalEmbedding(5, name="codes")
    assert keras.layers.deserialize(keras.layers.serialize(codes)).get_config() == \
        codes.get_config()
