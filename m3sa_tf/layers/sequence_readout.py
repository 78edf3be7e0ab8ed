"""How a padded sequence becomes one vector for a head (left open by the paper)."""

import keras
from keras import ops

from m3sa_tf.config import READOUTS
from m3sa_tf.layers.masking import last_valid_step, masked_max, masked_mean, masked_softmax


@keras.saving.register_keras_serializable(package="m3sa_tf")
class SequenceReadout(keras.layers.Layer):
    """Pools a right-padded sequence [B, T, d] to [B, d] over its valid steps only.

    The paper feeds F^n (eqs 8–10) and X_f (eq. 24) to a "classifier" without saying how a
    sequence becomes one prediction. The modes:

    - "last": the step at index length−1 (for a recurrent extractor, its final state;
      the convention of MMSA's recurrent subnets and MulT).
    - "mean": the mean over valid steps.
    - "max": the feature-wise max over valid steps.
    - "attention": softmax(w·x_t) over valid steps, then the weighted sum.

    A row of length 0 yields a zero vector in every mode (never NaN), and steps past the
    length never change the result.

    Args:
        mode: one of "last", "mean", "max", "attention".

    Call arguments:
        sequence: float [B, T, d].
        mask: bool [B, T], True at valid steps.

    Returns:
        float [B, d].

    Example:
        >>> readout = SequenceReadout("mean")
        >>> x = keras.ops.reshape(keras.ops.arange(12, dtype="float32"), (2, 3, 2))
        >>> mask = keras.ops.array([[True, True, False], [True, False, False]])
        >>> keras.ops.convert_to_numpy(readout(x, mask)).tolist()
        [[1.0, 2.0], [6.0, 7.0]]
    """

    def __init__(self, mode="last", **kwargs):
        super().__init__(**kwargs)
        if mode not in READOUTS:
            raise ValueError(f"readout mode={mode!r} is not one of {list(READOUTS)}")
        self.mode = mode
        # No bias: a constant shift of every score leaves the softmax unchanged.
        self.scorer = (keras.layers.Dense(1, use_bias=False, dtype=self.dtype_policy,
                                          name="score")
                       if mode == "attention" else None)

    def build(self, sequence_shape, mask_shape=None):
        if self.scorer is not None:
            self.scorer.build((None, None, sequence_shape[-1]))

    def call(self, sequence, mask):
        mask = ops.cast(mask, "bool")
        if self.mode == "last":
            return last_valid_step(sequence, mask)
        if self.mode == "mean":
            return masked_mean(sequence, mask)
        if self.mode == "max":
            return masked_max(sequence, mask)
        scores = self.scorer(sequence)[..., 0]
        weights = masked_softmax(scores, mask, axis=1)
        return ops.sum(sequence * ops.expand_dims(weights, -1), axis=1)

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config
