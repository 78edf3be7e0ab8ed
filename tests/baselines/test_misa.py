"""MISA's own checks, beyond the zoo contract: its batch-level regularisers against a
NumPy transcription of their formulas, its loss as MMSA sums it, its text encoders, the
BERT text path and modality subsets."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf import M3SAConfig
from m3sa_tf.config import ConfigError
from m3sa_tf.losses.cmd_loss import central_moment_discrepancy, difference_loss
from m3sa_tf.models import build_model
from m3sa_tf.models.baselines.misa import MISA
from tests.baselines.conftest import build_tiny, pad_more, tiny_batch
from tests.model.test_bert_text_path import (  # noqa: F401 (a fixture)
    NON_TEXT_DIMS,
    bert_batch,
    tiny_bert_preset,
)


def numpy_cmd(x1, x2, n_moments):
    mean1, mean2 = x1.mean(0), x2.mean(0)
    total = np.linalg.norm(mean1 - mean2)
    for k in range(2, n_moments + 1):
        total += np.linalg.norm(((x1 - mean1) ** k).mean(0) - ((x2 - mean2) ** k).mean(0))
    return total


def numpy_diff(x1, x2):
    def unit(x):
        x = x - x.mean(0, keepdims=True)
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)

    return np.mean((unit(x1).T @ unit(x2)) ** 2)


def test_cmd_and_difference_losses_match_their_formulas_on_a_tiny_batch():
    rng = np.random.default_rng(0)
    x1 = rng.uniform(size=(5, 3)).astype("float32")
    x2 = (rng.uniform(size=(5, 3)) ** 2).astype("float32")
    x3 = rng.uniform(size=(5, 4)).astype("float32")
    for n_moments in (1, 2, 5):
        np.testing.assert_allclose(float(central_moment_discrepancy(x1, x2, n_moments)),
                                   numpy_cmd(x1, x2, n_moments), rtol=1e-5)
    np.testing.assert_allclose(float(difference_loss(x1, x3)), numpy_diff(x1, x3),
                               rtol=1e-5)
    assert float(central_moment_discrepancy(x1, x1)) == 0.0
    # Orthogonal centred sets: the two features never move together.
    a = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]], "float32")
    b = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 2.0]], "float32")
    assert float(difference_loss(a, b)) == pytest.approx(0.0, abs=1e-6)


def test_the_regularisers_have_finite_gradients_on_a_batch_of_one():
    x1 = tf.Variable([[0.2, 0.7, 0.1]])
    x2 = tf.Variable([[0.2, 0.7, 0.1]])
    with tf.GradientTape() as tape:
        loss = central_moment_discrepancy(x1, x2) + difference_loss(x1, x2)
    for grad in tape.gradient(loss, [x1, x2]):
        assert np.all(np.isfinite(grad.numpy()))


def test_the_loss_is_mmsas_sum_of_batch_level_terms():
    model, config, _ = build_tiny("misa")
    hp = config.model_hparams
    features = tiny_batch(batch_size=6, seed=3)
    y = {"fused": np.linspace(-1.0, 1.0, 6).astype("float32")}
    out = {k: v.numpy() for k, v in model(features, training=False).items()}

    task = np.mean((out["fused"] - y["fused"]) ** 2)
    recon = np.mean([np.mean((out[f"reconstructed_{m}"] - out[f"projected_{m}"]) ** 2)
                     for m in ("text", "audio", "vision")])
    diff = sum(numpy_diff(out[f"private_{m}"], out[f"shared_{m}"])
               for m in ("text", "audio", "vision"))
    diff += sum(numpy_diff(out[f"private_{a}"], out[f"private_{b}"])
                for a, b in (("audio", "text"), ("audio", "vision"), ("text", "vision")))
    sim = np.mean([numpy_cmd(out[f"shared_{a}"], out[f"shared_{b}"], 5)
                   for a, b in (("text", "vision"), ("text", "audio"), ("audio", "vision"))])
    expected = (task + hp["diff_weight"] * diff + hp["sim_weight"] * sim
                + hp["recon_weight"] * recon)

    got = float(model.compute_loss(features, y, model(features, training=False)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert diff > 0 and sim > 0 and recon > 0


def test_the_lstm_text_encoder_ignores_padding():
    model, _, _ = build_tiny("misa", model_hparams={"text_encoder": "lstm"})
    assert "text" in model.encoders
    features = tiny_batch(seed=1, zero_length_rows=(2,))
    base = model(features)["fused"].numpy()
    np.testing.assert_allclose(model(pad_more(features, 2))["fused"].numpy(), base,
                               rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(base))


def test_a_subset_of_modalities_gives_four_parts_and_one_cmd_pair():
    model, _, _ = build_tiny("misa", modalities=("audio", "vision"))
    features = tiny_batch(seed=2, modalities=("audio", "vision"))
    outputs = model(features)
    assert "shared_text" not in outputs and outputs["fused"].shape == (4,)
    y = {"fused": np.zeros(4, "float32")}
    assert np.isfinite(float(model.compute_loss(features, y, outputs)))


@pytest.mark.parametrize("hparams", [{"text_encoder": "gru"},
                                     {"hidden_size": 7, "transformer_heads": 2}])
def test_bad_hyper_parameters_are_named(hparams):
    with pytest.raises(ConfigError, match=next(iter(hparams))):
        build_tiny("misa", model_hparams=hparams)


def test_bert_text_path_fine_tunes_the_backbone_through_the_mean(tiny_bert_preset):  # noqa: F811
    hparams = dict(MISA.TINY_HPARAMS)
    config = M3SAConfig.for_dataset("mosi", model="misa", model_hparams=hparams,
                                    text_path="bert", bert_preset=tiny_bert_preset)
    keras.utils.set_random_seed(3)
    model = build_model(config, NON_TEXT_DIMS, False)
    features = bert_batch()
    y = {"fused": np.array([0.5, -1.0, 2.0, 0.0], "float32")}
    with tf.GradientTape() as tape:
        outputs = model(features, training=True)
        loss = model.compute_loss(features, y, outputs)
    assert outputs["fused"].shape == (4,) and np.isfinite(float(loss))
    assert outputs["projected_text"].shape == (4, hparams["hidden_size"])
    backbone = model.text_encoder.backbone.trainable_weights
    grads = tape.gradient(loss, backbone)
    assert all(g is not None and np.any(tf.convert_to_tensor(g).numpy()) for g in grads)
