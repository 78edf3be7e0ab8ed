"""Losses: eq. 26 against a direct NumPy transcription, eq. 25 against hand computation,
eq. 27's combination, and the subtask weight schedule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf import M3SAConfig
from m3sa_tf.losses import (M3SALoss, SubtaskWeightScheduler, contrastive_pair_terms,
                            per_sample_regression_loss)


def eq26_numpy(u_a, u_b, tau, normalize):
    """L_αβ of eq. 26, written out loop by loop from the paper."""
    if normalize:
        u_a = u_a / np.linalg.norm(u_a, axis=1, keepdims=True)
        u_b = u_b / np.linalg.norm(u_b, axis=1, keepdims=True)
    n = len(u_a)
    negatives = sum(np.exp(u_a[j] @ u_b[k] / tau)
                    for j in range(n) for k in range(n) if j != k)
    total = 0.0
    for i in range(n):
        positive = np.exp(u_a[i] @ u_b[i] / tau)
        total += -positive * np.log(positive / (positive + negatives))
    return total


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_contrastive_loss_equals_equation_26(normalize, seed):
    rng = np.random.default_rng(seed)
    u_a = rng.normal(size=(5, 3)).astype("float64")
    u_b = rng.normal(size=(5, 3)).astype("float64")
    terms = contrastive_pair_terms(u_a.astype("float32"), u_b.astype("float32"), 0.7,
                                   normalize=normalize)
    assert float(np.sum(keras.ops.convert_to_numpy(terms))) == pytest.approx(
        eq26_numpy(u_a, u_b, 0.7, normalize), rel=1e-4)


def test_pair_weight_modes_share_the_value_but_not_the_gradient():
    rng = np.random.default_rng(2)
    u_a = tf.Variable(rng.normal(size=(4, 3)).astype("float32"))
    u_b = tf.constant(rng.normal(size=(4, 3)).astype("float32"))
    values, grads = {}, {}
    for mode in ("detached", "full"):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(contrastive_pair_terms(u_a, u_b, 0.5, pair_weight=mode))
        values[mode], grads[mode] = float(loss), tape.gradient(loss, u_a).numpy()
    assert values["detached"] == pytest.approx(values["full"], rel=1e-6)
    assert np.abs(grads["detached"] - grads["full"]).max() > 1e-4
    # "none" drops the exp(s_ii) factor: each term is −log p_i = weighted term / exp(s_ii).
    plain = contrastive_pair_terms(u_a, u_b, 0.5, pair_weight="none").numpy()
    weighted = contrastive_pair_terms(u_a, u_b, 0.5).numpy()
    a = u_a.numpy() / np.linalg.norm(u_a.numpy(), axis=1, keepdims=True)
    b = u_b.numpy() / np.linalg.norm(u_b.numpy(), axis=1, keepdims=True)
    np.testing.assert_allclose(plain * np.exp(np.sum(a * b, axis=1) / 0.5), weighted,
                               rtol=1e-5)


def test_a_batch_of_one_has_no_negatives_and_a_zero_finite_loss():
    u = tf.Variable([[0.3, -0.2]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(contrastive_pair_terms(u, u, 0.5))
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(tape.gradient(loss, u).numpy()))


def test_zero_embeddings_do_not_make_nan():
    zeros = np.zeros((3, 4), "float32")
    terms = keras.ops.convert_to_numpy(contrastive_pair_terms(zeros, zeros, 0.5))
    assert np.all(np.isfinite(terms))


def test_regression_losses_by_hand():
    y, p = [0.0, 0.0, 0.0], [0.5, -2.0, 1.0]
    np.testing.assert_allclose(per_sample_regression_loss("l1", y, p), [0.5, 2.0, 1.0])
    np.testing.assert_allclose(per_sample_regression_loss("mse", y, p), [0.25, 4.0, 1.0])
    np.testing.assert_allclose(per_sample_regression_loss("huber", y, p), [0.125, 1.5, 0.5])


def test_multitask_loss_equals_a_hand_computation():
    config = M3SAConfig.for_dataset("sims", task="multitask", fused_weight=2.0,
                                    unimodal_weights={"text": 0.5, "audio": 0.25,
                                                      "vision": 1.0})
    loss = M3SALoss(config, has_unimodal_labels=True)
    labels = {"fused": [1.0, -1.0], "text": [0.0, 0.5], "audio": [1.0, 1.0],
              "vision": [0.2, 0.2]}
    outputs = {"fused": [0.5, -1.0], "text": [1.0, 0.5], "audio": [0.0, 0.0],
               "vision": [0.2, -0.8]}
    # sample 1: 2·0.5 + 0.5·1 + 0.25·1 + 1·0 = 1.75; sample 2: 0 + 0 + 0.25·1 + 1·1 = 1.25
    assert float(loss(labels, outputs)) == pytest.approx((1.75 + 1.25) / 2)


def test_unimodal_heads_learn_the_fused_label_when_the_data_has_no_unimodal_labels():
    outputs = {"fused": [1.0, 3.0], "text": [2.0, 0.0]}
    off = M3SAConfig.for_dataset("mosi", task="fused_only", unimodal_head_training="off")
    assert float(M3SALoss(off, False)({"fused": [0.0, 0.0]}, outputs)) == pytest.approx(2.0)
    probe = M3SAConfig.for_dataset("mosi", task="fused_only", modalities=["text"],
                                   key_modality="text", unimodal_weights={"text": 0.5})
    # mean(|1| + 0.5·|2|, |3| + 0.5·|0|) = (2 + 3) / 2
    assert float(M3SALoss(probe, False)({"fused": [0.0, 0.0]}, outputs)) == pytest.approx(2.5)


def test_contrastive_total_is_equation_27():
    config = M3SAConfig.for_dataset("mosi", task="contrastive", temperature=0.5,
                                    contrastive_weights={"text_audio": 0.3,
                                                         "text_vision": 0.2,
                                                         "audio_vision": 0.1})
    loss = M3SALoss(config, has_unimodal_labels=False)
    rng = np.random.default_rng(3)
    emb = {m: rng.normal(size=(4, 5)) for m in ("text", "audio", "vision")}
    fused_pred, fused_true = rng.normal(size=4), rng.normal(size=4)
    outputs = {"fused": fused_pred.astype("float32"),
               **{f"embedding_{m}": v.astype("float32") for m, v in emb.items()}}
    expected = (0.3 * eq26_numpy(emb["text"], emb["audio"], 0.5, True)
                + 0.2 * eq26_numpy(emb["text"], emb["vision"], 0.5, True)
                + 0.1 * eq26_numpy(emb["audio"], emb["vision"], 0.5, True)
                + np.abs(fused_pred - fused_true).sum()) / 4
    value = float(loss({"fused": fused_true.astype("float32")}, outputs))
    assert value == pytest.approx(expected, rel=1e-4)


def test_pairs_follow_the_configured_modalities():
    config = M3SAConfig.for_dataset("mosi", modalities=["text", "vision"],
                                    key_modality="text")
    assert M3SALoss(config, has_unimodal_labels=False).pairs == ("text_vision",)


def test_weight_scheduler_decays_the_subtask_weights_each_epoch():
    config = M3SAConfig.for_dataset("sims", subtask_weight_schedule="exponential",
                                    subtask_weight_decay=0.5, subtask_weight_floor=0.2,
                                    unimodal_weights={"text": 0.8})
    loss = M3SALoss(config, has_unimodal_labels=True)
    scheduler = SubtaskWeightScheduler(config, loss=loss)
    seen = []
    for epoch in range(4):
        scheduler.on_epoch_begin(epoch)
        seen.append(float(loss.subtask_weights["text"].numpy()))
    np.testing.assert_allclose(seen, [0.8, 0.4, 0.2, 0.16], rtol=1e-6)
    labels = {"fused": [0.0], "text": [1.0]}
    outputs = {"fused": [0.0], "text": [0.0]}
    assert float(loss(labels, outputs)) == pytest.approx(0.16, rel=1e-6)


def test_loss_config_round_trips():
    config = M3SAConfig.for_dataset("mosi", temperature=0.3)
    loss = M3SALoss(config, has_unimodal_labels=False)
    again = M3SALoss.from_config(loss.get_config())
    assert again.config == config and again.task == "contrastive"


def test_missing_fused_label_is_named():
    loss = M3SALoss(M3SAConfig.for_dataset("mosi", task="fused_only"), False)
    with pytest.raises(KeyError, match="fused"):
        loss({"text": [0.0]}, {"fused": [0.0]})
