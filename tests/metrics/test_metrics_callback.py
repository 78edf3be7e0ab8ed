"""MSAMetricsCallback puts the full metric set into the epoch logs during fit."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.metrics import (
    BinarySentimentAccuracy,
    MetricInputError,
    MSAMetricsCallback,
    compute_metrics,
    metric_names,
)


def _dataset(n=24, batch=8, seed=0, shuffle=False, zero_labels=True):
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, 3)).astype(np.float32)
    labels = text.sum(axis=1)
    if zero_labels:
        labels[:3] = 0.0  # zero labels so Has0 and Non0 differ
    ds = tf.data.Dataset.from_tensor_slices(({"text": text}, {"fused": labels}))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch), text, labels


def _tiny_model(kernel=None, nan_output=False):
    """Dict in, dict out ({"fused": [B], "text": [B]}), like M3SAModel's interface."""
    keras.utils.set_random_seed(0)
    inputs = {"text": keras.Input((3,), name="text")}
    dense = keras.layers.Dense(1, name="head_fused")
    fused = keras.layers.Reshape(())(dense(inputs["text"]))
    if nan_output:
        fused = keras.layers.Lambda(lambda t: keras.ops.log(-1.0 - keras.ops.abs(t)))(fused)
    unimodal = keras.layers.Reshape(())(keras.layers.Dense(1, name="head_text")(inputs["text"]))
    model = keras.Model(inputs, {"fused": fused, "text": unimodal})
    if kernel is not None:
        dense.set_weights([np.asarray(kernel, np.float32).reshape(3, 1), np.zeros(1, np.float32)])
    return model


def test_fit_logs_every_metric_with_the_prefix_to_history_and_csv(tmp_path):
    ds, text, labels = _dataset()
    model = _tiny_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss={"fused": "mse", "text": "mse"},
    )
    csv_path = tmp_path / "log.csv"
    callback = MSAMetricsCallback(ds, "mosi", prefix="val_")
    history = model.fit(
        ds.map(lambda f, y: (f, {"fused": y["fused"], "text": y["fused"]})),
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[callback, keras.callbacks.CSVLogger(str(csv_path))],
    )
    for name in metric_names("mosi"):
        assert len(history.history["val_" + name]) == 2
    # the last epoch's values are the metrics of the trained model's predictions
    predictions = model.predict({"text": text}, verbose=0)["fused"]
    expected = compute_metrics("mosi", labels, predictions)
    for name, value in expected.items():
        assert history.history["val_" + name][-1] == pytest.approx(value, abs=1e-6)
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert float(rows[-1]["val_Has0_acc_2"]) == pytest.approx(expected["Has0_acc_2"])


def test_streaming_metric_compiles_on_the_fused_output():
    ds, _, labels = _dataset()
    model = _tiny_model()
    model.compile(
        optimizer="sgd",
        loss={"fused": "mse", "text": "mse"},
        metrics={"fused": [BinarySentimentAccuracy("has0")]},
    )
    both = ds.map(lambda f, y: (f, {"fused": y["fused"], "text": y["fused"]}))
    logs = model.evaluate(both, verbose=0, return_dict=True)
    predictions = model.predict(ds, verbose=0)["fused"]
    assert logs["fused_has0_acc_2"] == pytest.approx(
        compute_metrics("mosi", labels, predictions)["Has0_acc_2"], abs=1e-6
    )


def test_labels_and_predictions_stay_aligned_on_a_shuffled_dataset():
    # The fixed model predicts exactly the label (sum of the features), in any order.
    ds, _, _ = _dataset(shuffle=True, zero_labels=False)
    callback = MSAMetricsCallback(ds, "mosi")
    labels, predictions = callback.collect(_tiny_model(kernel=[1.0, 1.0, 1.0]))
    assert labels.shape == predictions.shape == (24,)
    np.testing.assert_allclose(predictions, labels, atol=1e-5)


def test_scores_another_output_key_for_unimodal_heads():
    ds, _, _ = _dataset()
    ds_text = ds.map(lambda f, y: (f, {"text": y["fused"]}))
    model = _tiny_model()
    results = MSAMetricsCallback(ds_text, "sims", output_key="text").evaluate(model)
    assert tuple(results) == metric_names("sims")


def test_missing_output_key_names_the_available_keys():
    ds, _, _ = _dataset()
    callback = MSAMetricsCallback(ds, "mosi", output_key="audio")
    with pytest.raises(KeyError, match=r"labels have no 'audio'; available keys: \['fused'\]"):
        callback.evaluate(_tiny_model())


def test_non_finite_predictions_raise_by_default_and_become_nan_on_request():
    ds, _, _ = _dataset()
    model = _tiny_model(nan_output=True)
    strict = MSAMetricsCallback(ds, "mosi")
    strict.set_model(model)
    with pytest.raises(MetricInputError, match="y_pred has 24 non-finite"):
        strict.on_epoch_end(0, logs={})
    lenient = MSAMetricsCallback(ds, "mosi", prefix="v_", on_nonfinite="nan")
    lenient.set_model(model)
    logs = {}
    with pytest.warns(UserWarning, match="MSA metrics set to NaN"):
        lenient.on_epoch_end(0, logs=logs)
    assert sorted(logs) == sorted("v_" + n for n in metric_names("mosi"))
    assert all(np.isnan(v) for v in logs.values())


def test_bad_arguments_are_rejected_at_construction():
    ds, _, _ = _dataset()
    with pytest.raises(MetricInputError, match="unknown metric family 'mosei'"):
        MSAMetricsCallback(ds, "mosei")
    with pytest.raises(ValueError, match="unknown on_nonfinite 'ignore'"):
        MSAMetricsCallback(ds, "mosi", on_nonfinite="ignore")


def test_an_empty_dataset_is_an_error():
    empty = _dataset()[0].take(0)
    with pytest.raises(ValueError, match="yielded no batches"):
        MSAMetricsCallback(empty, "mosi").evaluate(_tiny_model())
