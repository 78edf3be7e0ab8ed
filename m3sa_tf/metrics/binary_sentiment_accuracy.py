"""Streaming binary sentiment accuracy (MMSA's Has0 / Non0 / SIMS acc-2 rules) for Keras."""

from __future__ import annotations

import keras
from keras import ops

RULES = ("has0", "non0", "sims")
_DEFAULT_NAMES = {"has0": "has0_acc_2", "non0": "non0_acc_2", "sims": "mult_acc_2"}


@keras.saving.register_keras_serializable(package="m3sa_tf")
class BinarySentimentAccuracy(keras.metrics.Metric):
    """Binary accuracy of regression sentiment scores, accumulated over batches.

    Gives, over a whole epoch, the same value as the corresponding entry of
    ``m3sa_tf.metrics.compute_metrics`` (up to float32 arithmetic) without keeping the
    predictions, so it can sit in ``model.compile(metrics=...)``.

    Args:
        rule: which split into two classes:
            "has0": negative (< 0) vs non-negative (>= 0), every sample
                (MOSI/MOSEI ``Has0_acc_2``; also the paper's ``Paper_Acc_2``);
            "non0": samples whose label is exactly 0 are skipped, then > 0 vs <= 0
                (MOSI/MOSEI ``Non0_acc_2``);
            "sims": bins (-1.01, 0] and (0, 1.01] after clipping to [-1, 1], i.e.
                > 0 vs <= 0 with 0 negative (CH-SIMS ``Mult_acc_2``).
        name: metric name; defaults to "has0_acc_2", "non0_acc_2" or "mult_acc_2".
        dtype: dtype of the accumulators (float32 by default).

    Input shapes: ``y_true`` and ``y_pred`` of any shape with the same number of
    elements ([B] or [B, 1]); ``sample_weight`` broadcastable to ``y_true``.
    Output: scalar accuracy in [0, 1]; 0 before any counted sample (e.g. "non0" on a batch
    whose labels are all 0).

    Example:
        >>> m = BinarySentimentAccuracy("has0")
        >>> m.update_state([-1.0, 0.0, 2.0], [-0.5, -0.1, 1.0])
        >>> float(m.result())  # the label 0 with prediction -0.1 counts as wrong
        0.6666666865348816
    """

    def __init__(self, rule: str = "has0", name: str | None = None, dtype=None):
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")
        super().__init__(name=name or _DEFAULT_NAMES[rule], dtype=dtype or "float32")
        self.rule = rule
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, self.dtype), (-1,))
        y_pred = ops.reshape(ops.cast(y_pred, self.dtype), (-1,))
        if self.rule == "has0":
            hits = ops.equal(y_true >= 0, y_pred >= 0)
        else:
            hits = ops.equal(y_true > 0, y_pred > 0)
        weight = ops.ones_like(y_true)
        if sample_weight is not None:
            weight = ops.reshape(
                ops.broadcast_to(ops.cast(sample_weight, self.dtype), ops.shape(y_true)), (-1,)
            )
        if self.rule == "non0":
            weight = weight * ops.cast(ops.not_equal(y_true, 0), self.dtype)
        self.correct.assign_add(ops.sum(ops.cast(hits, self.dtype) * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.count)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "rule": self.rule}
