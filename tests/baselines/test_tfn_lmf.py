"""TFN, LMF and MTFN beyond the zoo's contract: their fusion steps against NumPy
transcriptions, modality subsets, and MTFN's multi-task loss and sub-network penalties."""

import numpy as np
import pytest
import keras

from m3sa_tf import M3SAConfig
from m3sa_tf.config import ConfigError
from m3sa_tf.models import build_model, get_spec
from m3sa_tf.models.baselines.lmf import LowRankFusion
from m3sa_tf.models.baselines.mtfn import MTFN
from m3sa_tf.models.baselines.tfn import tensor_fusion
from tests.baselines.conftest import FEATURE_DIMS, build_tiny, tiny_batch


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _extended(v):
    return np.concatenate([np.ones((v.shape[0], 1), v.dtype), v], axis=1)


def _numpy_tensor_fusion(vectors):
    """The outer product of the 1-extended vectors, written out with einsum."""
    letters = "ijklm"[: len(vectors)]
    spec = ",".join(f"b{c}" for c in letters) + "->b" + letters
    product = np.einsum(spec, *[_extended(v) for v in vectors])
    return product.reshape(product.shape[0], -1)


def _random_vectors(widths, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, w)).astype("float32") for w in widths]


@pytest.mark.parametrize("widths", [(2, 3, 4), (3, 2), (5,)])
def test_tensor_fusion_is_the_flattened_outer_product_of_the_extended_vectors(widths):
    vectors = _random_vectors(widths)
    fused = _np(tensor_fusion(vectors))
    assert fused.shape == (3, int(np.prod([w + 1 for w in widths])))
    np.testing.assert_allclose(fused, _numpy_tensor_fusion(vectors), rtol=1e-6, atol=1e-6)
    # The leading 1s keep each unimodal vector among the entries.
    if len(widths) == 3:
        cube = fused.reshape((3,) + tuple(w + 1 for w in widths))
        np.testing.assert_allclose(cube[:, 1:, 0, 0], vectors[0])
        np.testing.assert_allclose(cube[:, 0, 0, 1:], vectors[2])


def test_tfn_fuses_its_unimodal_vectors_by_tensor_fusion_and_reads_them_densely():
    model, config, _ = build_tiny("tfn")
    sequences, masks = model.encode_inputs(tiny_batch(seed=3))
    features = model.unimodal_features(sequences, masks)
    fusion, fused = model.fuse(features)
    expected = _numpy_tensor_fusion([_np(features[m]) for m in model.modalities])
    np.testing.assert_allclose(_np(fusion), expected, rtol=1e-5, atol=1e-6)
    assert model.fusion_width == expected.shape[1]
    assert model.post_fusion.dense[0].kernel.shape[0] == model.fusion_width
    # The head is a sigmoid stretched over MOSI's label range.
    hidden = expected
    for layer in model.post_fusion.dense[:2]:
        hidden = np.maximum(hidden @ _np(layer.kernel) + _np(layer.bias), 0.0)
    last = model.post_fusion.dense[2]
    logits = (hidden @ _np(last.kernel) + _np(last.bias))[:, 0]
    np.testing.assert_allclose(_np(fused), 6.0 / (1.0 + np.exp(-logits)) - 3.0,
                               rtol=1e-4, atol=1e-5)


def test_low_rank_fusion_matches_a_numpy_transcription_of_its_factors():
    widths, rank = (2, 3, 4), 3
    vectors = _random_vectors(widths, seed=1)
    layer = LowRankFusion(("text", "audio", "vision"), rank)
    out = _np(layer(vectors))
    factors = [_np(f) for f in layer.factors]
    assert [f.shape for f in factors] == [(w + 1, rank) for w in widths]
    w, b = _np(layer.fusion_weights), _np(layer.fusion_bias)
    components = np.ones((3, rank), "float32")
    for v, factor in zip(vectors, factors):
        components = components * (_extended(v) @ factor)
    np.testing.assert_allclose(out, (components @ w)[:, 0] + b[0], rtol=1e-5, atol=1e-6)
    # LMF is a dense layer over TFN's fusion tensor with a rank-3 weight tensor.
    full = sum(w[r, 0] * np.einsum("i,j,k->ijk", *[f[:, r] for f in factors])
               for r in range(rank))
    dense = _numpy_tensor_fusion(vectors) @ full.reshape(-1)
    np.testing.assert_allclose(out, dense + b[0], rtol=1e-4, atol=1e-5)


def test_lmf_model_output_is_its_low_rank_fusion_of_the_unimodal_vectors():
    model, _, _ = build_tiny("lmf")
    features = tiny_batch(seed=6)
    sequences, masks = model.encode_inputs(features)
    vectors = [_np(model.subnets[m](sequences[m], masks[m])) for m in model.modalities]
    # MMSA's text vector is half the text LSTM's width.
    assert vectors[0].shape[1] == model.config.model_hparams["hidden_dims"][0] // 2
    np.testing.assert_allclose(_np(model(features)["fused"]), _np(model.fusion(vectors)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["tfn", "lmf", "mtfn"])
def test_a_subset_of_the_modalities_fuses_only_those(name):
    model, _, unimodal = build_tiny(name, modalities=("text", "vision"))
    features = tiny_batch(seed=2, modalities=("text", "vision"))
    outputs = model(features)
    assert outputs["fused"].shape == (4,)
    assert "feature_audio" not in outputs
    if unimodal:
        assert {"text", "vision"} <= set(outputs) and "audio" not in outputs
    if name != "lmf":
        hp = model.config.model_hparams
        assert model.fusion_width == (hp["text_out"] + 1) * (hp["hidden_dims"][2] + 1)
    else:
        assert len(model.fusion.factors) == 2


def test_tfn_output_stays_in_the_sims_label_range():
    model, _, _ = build_tiny("tfn", dataset="sims")
    fused = _np(model(tiny_batch(seed=8))["fused"])
    assert np.all(np.abs(fused) < 1.0)


def test_mtfn_loss_is_the_weighted_sum_of_the_four_l1_errors_plus_the_subnet_penalties():
    model, config, _ = build_tiny("mtfn")
    hp = config.model_hparams
    features = tiny_batch(batch_size=5, seed=9)
    rng = np.random.default_rng(0)
    labels = {k: rng.uniform(-1, 1, size=5).astype("float32")
              for k in ("fused", "text", "audio", "vision")}
    outputs = model(features)
    per_sample = _np(model.per_sample_loss(labels, outputs))
    weights = {"fused": hp["fused_weight"], "text": hp["text_weight"],
               "audio": hp["audio_weight"], "vision": hp["vision_weight"]}
    expected = sum(w * np.abs(labels[k] - _np(outputs[k])) for k, w in weights.items())
    np.testing.assert_allclose(per_sample, expected, rtol=1e-5, atol=1e-6)

    penalty = 0.0
    for m in ("text", "audio", "vision"):
        squares = sum(float(np.sum(_np(w).astype("float64") ** 2))
                      for w in model.subnets[m].trainable_weights)
        penalty += 0.5 * hp[f"{m}_weight_decay"] * squares
    assert penalty > 0.0
    np.testing.assert_allclose(float(model.subnet_penalty()), penalty, rtol=1e-5)
    total = float(model.compute_loss(features, labels, outputs))
    np.testing.assert_allclose(total, expected.mean() + penalty, rtol=1e-5)


def test_mtfn_needs_unimodal_labels():
    config = M3SAConfig.for_dataset("sims", model="mtfn",
                                    model_hparams=MTFN.TINY_HPARAMS)
    with pytest.raises(ConfigError, match="unimodal labels"):
        MTFN(config, FEATURE_DIMS, False)
    with pytest.raises(ConfigError, match="unimodal labels"):
        build_model(config.replace(dataset="mosi"), FEATURE_DIMS, False)


def test_defaults_follow_mmsa_config_regression():
    assert get_spec("tfn").default_hparams("sims")["text_out"] == 256
    assert get_spec("tfn").training_defaults("mosi")["weight_decay"] == 0.0
    assert get_spec("lmf").default_hparams("mosi")["rank"] == 3
    assert get_spec("lmf").training_defaults("sims")["learning_rate"] == 2e-3
    mtfn = get_spec("mtfn")
    assert mtfn.needs_unimodal_labels
    hp = mtfn.default_hparams("sims")
    assert (hp["fused_weight"], hp["text_weight"], hp["audio_weight"],
            hp["vision_weight"]) == (0.6, 0.4, 0.0, 1.0)
    # MMSA decays the sub-networks only (the penalties); the optimizer's decay is off.
    assert mtfn.training_defaults("sims")["weight_decay"] == 0.0
