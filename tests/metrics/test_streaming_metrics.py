"""Streaming Keras metrics agree with compute_metrics over batches and serialise."""

import keras
import numpy as np
import pytest

from m3sa_tf.metrics import BinarySentimentAccuracy, RoundedClassAccuracy, compute_metrics


def _random_mosi(seed, n=96):
    rng = np.random.default_rng(seed)
    y_true = (rng.integers(-9, 10, n) / 3.0).astype(np.float32)  # many exact zeros
    y_pred = rng.normal(0, 2, n).astype(np.float32)
    y_pred[:6] = [0.5, 1.5, 2.5, -0.5, 0.0, -0.0]  # rounding halves and signed zeros
    return y_true, y_pred


def _stream(metric, y_true, y_pred, batch=32):
    for start in range(0, len(y_true), batch):
        # [B, 1] predictions, as a Dense(1) head emits them
        metric.update_state(y_true[start:start + batch], y_pred[start:start + batch, None])
    return float(metric.result())


@pytest.mark.parametrize(
    "metric, family, name",
    [
        (lambda: BinarySentimentAccuracy("has0"), "mosi", "Has0_acc_2"),
        (lambda: BinarySentimentAccuracy("non0"), "mosi", "Non0_acc_2"),
        (lambda: RoundedClassAccuracy(2.0), "mosi", "Mult_acc_5"),
        (lambda: RoundedClassAccuracy(3.0), "mosi", "Mult_acc_7"),
        (lambda: BinarySentimentAccuracy("sims"), "sims", "Mult_acc_2"),
    ],
)
def test_streaming_metric_over_batches_equals_the_array_metric(metric, family, name):
    y_true, y_pred = _random_mosi(seed=3)
    if family == "sims":
        y_true, y_pred = y_true / 3.0, y_pred / 3.0
    assert _stream(metric(), y_true, y_pred) == pytest.approx(
        compute_metrics(family, y_true, y_pred)[name], abs=1e-6
    )


def test_has0_counts_a_zero_label_as_non_negative_and_sims_counts_it_negative():
    # label 0 with prediction 0.2: right by Has0 (both >= 0), wrong by SIMS acc_2 (0 <= 0).
    has0, sims = BinarySentimentAccuracy("has0"), BinarySentimentAccuracy("sims")
    has0.update_state([0.0], [0.2])
    sims.update_state([0.0], [0.2])
    assert float(has0.result()) == 1.0 and float(sims.result()) == 0.0


def test_non0_skips_zero_labels_and_is_zero_before_any_counted_sample():
    metric = BinarySentimentAccuracy("non0")
    metric.update_state([0.0, 0.0], [1.0, -1.0])
    assert float(metric.result()) == 0.0
    metric.update_state([0.0, 2.0], [-5.0, 1.0])  # only the label 2 counts: right
    assert float(metric.result()) == 1.0


def test_rounded_class_accuracy_rounds_half_to_even_after_clipping():
    metric = RoundedClassAccuracy(3.0)
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2, 9 -> 3: all match
    metric.update_state([0.0, 2.0, 2.0, -2.0, 3.0], [0.5, 1.5, 2.5, -2.5, 9.0])
    assert float(metric.result()) == 1.0
    metric.reset_state()
    metric.update_state([1.0], [0.5])  # half-away-from-zero would say 1
    assert float(metric.result()) == 0.0


def test_sample_weights_weigh_the_hits():
    metric = BinarySentimentAccuracy("has0")
    # hit (weight 3), miss (weight 1) -> 3/4
    metric.update_state([1.0, 1.0], [1.0, -1.0], sample_weight=[3.0, 1.0])
    assert float(metric.result()) == pytest.approx(0.75)
    metric = RoundedClassAccuracy(2.0)
    metric.update_state([1.0, 1.0], [1.0, -1.0], sample_weight=[1.0, 3.0])
    assert float(metric.result()) == pytest.approx(0.25)


def test_default_names_follow_the_rule_and_the_clip():
    assert BinarySentimentAccuracy("has0").name == "has0_acc_2"
    assert BinarySentimentAccuracy("non0").name == "non0_acc_2"
    assert BinarySentimentAccuracy("sims").name == "mult_acc_2"
    assert RoundedClassAccuracy(2.0).name == "mult_acc_5"
    assert RoundedClassAccuracy(3.0).name == "mult_acc_7"


@pytest.mark.parametrize(
    "metric", [BinarySentimentAccuracy("non0", name="nz"), RoundedClassAccuracy(2.0)]
)
def test_metrics_round_trip_through_keras_serialisation(metric):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric)
    assert restored.get_config() == metric.get_config()
    y_true, y_pred = _random_mosi(seed=5, n=20)
    assert _stream(restored, y_true, y_pred) == _stream(metric, y_true, y_pred)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"unknown rule 'has1'.*has0.*non0.*sims"):
        BinarySentimentAccuracy("has1")
    with pytest.raises(ValueError, match="clip_value must be positive, got 0.0"):
        RoundedClassAccuracy(0.0)
