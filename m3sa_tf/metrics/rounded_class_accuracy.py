"""Streaming MOSI/MOSEI multi-class accuracy (clip, round half-to-even, compare) for Keras."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="m3sa_tf")
class RoundedClassAccuracy(keras.metrics.Metric):
    """MMSA's ``Mult_acc_5`` / ``Mult_acc_7``, accumulated over batches.

    Labels and predictions are clipped to [-clip_value, clip_value], rounded half-to-even
    (``tf.round``, like ``np.round``) and compared: clip_value 2 gives the 5 classes
    -2..2 (``Mult_acc_5``), 3 the 7 classes -3..3 (``Mult_acc_7``).

    Args:
        clip_value: positive bound of the clipping, 3.0 by default.
        name: metric name; defaults to "mult_acc_{2 * clip_value + 1}" (e.g. "mult_acc_7").
        dtype: dtype of the accumulators (float32 by default).

    Input shapes: ``y_true`` and ``y_pred`` with the same number of elements ([B] or
    [B, 1]); ``sample_weight`` broadcastable to ``y_true``. Output: scalar in [0, 1].

    Example:
        >>> m = RoundedClassAccuracy(clip_value=3.0)
        >>> m.update_state([2.0, 0.0, 3.0], [2.5, 0.5, 7.0])  # 2.5 -> 2, 0.5 -> 0, 7 -> 3
        >>> float(m.result())
        1.0
    """

    def __init__(self, clip_value: float = 3.0, name: str | None = None, dtype=None):
        clip_value = float(clip_value)
        if not clip_value > 0:
            raise ValueError(f"clip_value must be positive, got {clip_value}")
        default_name = f"mult_acc_{int(round(2 * clip_value)) + 1}"
        super().__init__(name=name or default_name, dtype=dtype or "float32")
        self.clip_value = clip_value
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, self.dtype), (-1,))
        y_pred = ops.reshape(ops.cast(y_pred, self.dtype), (-1,))
        bound = self.clip_value
        true_class = ops.round(ops.clip(y_true, -bound, bound))
        pred_class = ops.round(ops.clip(y_pred, -bound, bound))
        hits = ops.cast(ops.equal(true_class, pred_class), self.dtype)
        weight = ops.ones_like(y_true)
        if sample_weight is not None:
            weight = ops.reshape(
                ops.broadcast_to(ops.cast(sample_weight, self.dtype), ops.shape(y_true)), (-1,)
            )
        self.correct.assign_add(ops.sum(hits * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.count)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "clip_value": self.clip_value}
