"""The key-modality warm-up as a mode of the main model's own loss (M3SALoss.set_key_warmup):
the warm-up and the main fit are one model and one traced graph."""

import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf import M3SAConfig
from m3sa_tf.losses import M3SALoss
from m3sa_tf.models import build_model
from tests.model.helpers import FEATURE_DIMS, tiny_batch, tiny_config


def _unimodal_gradient_norms(model, features, labels):
    """Norm of the gradient that the unimodal heads' loss terms alone send into each
    modality's block."""
    with tf.GradientTape() as tape:
        outputs = model(features, training=True)
        loss = sum(tf.reduce_mean(tf.abs(outputs[m] - labels)) for m in model.modalities)
    blocks = {m: model.get_layer(f"multi_scale_{m}").trainable_variables
              for m in model.modalities}
    grads = tape.gradient(loss, [v for m in model.modalities for v in blocks[m]])
    return float(tf.linalg.global_norm([g for g in grads if g is not None]))


def test_probe_heads_send_no_gradient_into_the_blocks_except_during_the_warm_up():
    model = build_model(tiny_config("mosi"), FEATURE_DIMS, False)
    features = tiny_batch()
    labels = tf.constant([0.5, -1.0, 2.0, 0.0])
    before = model(features, training=True)
    assert _unimodal_gradient_norms(model, features, labels) == 0.0
    model.m3sa_loss.set_key_warmup(True)
    assert _unimodal_gradient_norms(model, features, labels) > 0.0
    # Only the gradient changes; the outputs are the same numbers.
    after = model(features, training=True)
    for key in before:
        np.testing.assert_array_equal(before[key].numpy(), after[key].numpy())
    model.m3sa_loss.set_key_warmup(False)
    assert _unimodal_gradient_norms(model, features, labels) == 0.0


def test_the_warm_up_holds_the_pair_weights_at_zero_and_keeps_the_decay_schedule():
    config = M3SAConfig.for_dataset("mosi")
    loss = M3SALoss(config, has_unimodal_labels=False)
    assert loss.task == "contrastive" and float(loss.head_gradient) == 0.0
    loss.set_key_warmup(True)
    loss.set_weight_factor(0.5)
    weights = {k: float(v) for k, v in loss.subtask_weights.items()}
    assert weights == {"text": 0.5, "audio": 0.5, "vision": 0.5,
                       "text_audio": 0.0, "text_vision": 0.0, "audio_vision": 0.0}
    assert float(loss.head_gradient) == 1.0
    loss.set_key_warmup(False)  # the current factor carries over
    assert float(loss.subtask_weights["text_audio"]) == pytest.approx(0.05)
    assert float(loss.subtask_weights["text"]) == pytest.approx(0.5)
    assert float(loss.head_gradient) == 0.0


def test_in_warm_up_mode_the_loss_is_eq_25_on_the_fused_label():
    # MOSI has no unimodal labels: the heads regress the fused label, as the warm-up did
    # with proxy labels before it shared the main model's graph.
    loss = M3SALoss(M3SAConfig.for_dataset("mosi"), has_unimodal_labels=False)
    loss.set_key_warmup(True)
    y = {"fused": [1.0, -1.0]}
    rng = np.random.default_rng(0)
    outputs = {"fused": [0.5, -0.5], "text": [1.0, 0.0], "audio": [0.0, 0.0],
               "vision": [2.0, -1.0]}
    outputs.update({f"embedding_{m}": rng.normal(size=(2, 4)).astype("float32")
                    for m in ("text", "audio", "vision")})
    expected = np.mean([0.5 + 0.0 + 1.0 + 1.0, 0.5 + 1.0 + 1.0 + 0.0])
    assert float(loss(y, outputs)) == pytest.approx(expected)


def test_a_loss_that_does_not_train_the_heads_cannot_be_the_warm_up():
    loss = M3SALoss(M3SAConfig.for_dataset("mosi", unimodal_head_training="off"), False)
    assert not loss.supports_key_warmup
    with pytest.raises(ValueError, match="unimodal_head_training='off'"):
        loss.set_key_warmup(True)
