"""FusedAdamW: Keras' AdamW, each variable's update done by TensorFlow's fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.optimizers import FusedAdamW


def _train(optimizer, steps=4):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    for _ in range(steps):
        model.train_on_batch(x, y)
    return model


@pytest.mark.parametrize("kwargs", [
    {"learning_rate": 1e-2, "weight_decay": 5e-3, "clipnorm": 1.0},
    {"learning_rate": 3e-3, "weight_decay": 0.0},
])
def test_fused_adamw_updates_as_keras_adamw(kwargs):
    reference = _train(keras.optimizers.AdamW(**kwargs))
    fused = _train(FusedAdamW(**kwargs))
    for want, got in zip(reference.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The same slot variables, so checkpoints move between the two.
    assert ([tuple(v.shape) for v in fused.optimizer.variables]
            == [tuple(v.shape) for v in reference.optimizer.variables])
    for want, got in zip(reference.optimizer.variables, fused.optimizer.variables):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_fused_adamw_takes_keras_path_under_a_strategy():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        fused = _train(FusedAdamW(learning_rate=1e-2, weight_decay=5e-3), steps=2)
    reference = _train(keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=5e-3), steps=2)
    for want, got in zip(reference.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fused_adamw_serialises():
    optimizer = FusedAdamW(learning_rate=2e-3, weight_decay=1e-2, clipnorm=0.5)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, FusedAdamW)
    assert restored.get_config() == optimizer.get_config()
