"""Squeeze-and-excitation over the n scale channels of the multi-scale block (eqs 4–6)."""

import keras
from keras import ops

from m3sa_tf.layers.masking import valid_lengths


@keras.saving.register_keras_serializable(package="m3sa_tf")
class ScaleSqueezeExcitation(keras.layers.Layer):
    """Channel attention over the scales F^1 … F^n of one modality (paper eqs 4–6).

    Squeeze (eq. 4): z_k = mean of F^k over the valid time steps and all d features; the
    padding past each sequence's length is left out of both the sum and the count, so a
    padded batch gives the same z as an unpadded one, and a length of 0 gives z = 0.

    Excitation (eq. 5): s = gate(W2 · δ(W1 · z)), W1 ∈ R^{(n·r)×n}, W2 ∈ R^{n×(n·r)}.
    Reading of the paper: δ is SENet's inner non-linearity, a ReLU (the paper cites
    SENet [34] for this module and does not define δ). The outer gate is what the paper
    writes, a ReLU (`gate="relu"`); SENet's sigmoid is selectable (`gate="sigmoid"`).
    With the ReLU gate the bias of W2 starts at 1, so every scale starts with weight ≈ 1;
    a zero start would put half of the scales behind a dead ReLU from the first step.

    Scale (eq. 6): m̃_k = s_k · F^k.

    Args:
        channel_ratio: r, the hidden width of the excitation is n·r.
        gate: "relu" (paper) or "sigmoid" (SENet).

    Call arguments:
        scales: float [B, T, d, n], the stacked scales F (eq. 3), zero past the lengths.
        mask: bool [B, T], True at valid steps.

    Returns:
        float [B, T, d, n]: the rescaled stack M̃ (eq. 6). `compute_gates(scales, mask)`
        returns the excitation weights s, [B, n].

    Example:
        >>> se = ScaleSqueezeExcitation(channel_ratio=4)
        >>> x = keras.random.normal((2, 7, 8, 5), seed=0)
        >>> mask = keras.ops.ones((2, 7), dtype="bool")
        >>> tuple(se(x, mask).shape)
        (2, 7, 8, 5)

    Its inner Dense layers take this layer's dtype policy (mixed precision).
    """

    def __init__(self, channel_ratio=4, gate="relu", **kwargs):
        super().__init__(**kwargs)
        if gate not in ("relu", "sigmoid"):
            raise ValueError(f"gate={gate!r} is not one of ['relu', 'sigmoid']")
        if int(channel_ratio) < 1:
            raise ValueError(f"channel_ratio={channel_ratio!r} must be an integer >= 1")
        self.channel_ratio = int(channel_ratio)
        self.gate = gate

    def build(self, scales_shape, mask_shape=None):
        n_scales = scales_shape[-1]
        if n_scales is None:
            raise ValueError("the number of scales (last axis) must be known when building")
        self.n_scales = int(n_scales)
        hidden = self.n_scales * self.channel_ratio
        self.squeeze_to_hidden = keras.layers.Dense(hidden, activation="relu",
                                                    dtype=self.dtype_policy, name="w1")
        self.squeeze_to_hidden.build((None, self.n_scales))
        self.hidden_to_gates = keras.layers.Dense(
            self.n_scales,
            bias_initializer="ones" if self.gate == "relu" else "zeros",
            dtype=self.dtype_policy, name="w2",
        )
        self.hidden_to_gates.build((None, hidden))

    def squeeze(self, scales, mask):
        """z, [B, n]: masked mean of every scale over valid steps and features (eq. 4),
        accumulated in float32 (T·d terms) and returned in the scales' dtype."""
        weights = ops.cast(mask, scales.dtype)[:, :, None, None]
        total = ops.sum(ops.cast(scales * weights, "float32"), axis=(1, 2))
        width = ops.cast(ops.shape(scales)[2], "float32")
        count = valid_lengths(mask, "float32")[:, None] * width
        return ops.cast(total / ops.maximum(count, 1.0), scales.dtype)

    def squeeze_scales(self, scales, mask):
        """z, [B, n], from the n scales as a list of [B, T, d] tensors (the stack is
        never built). Values past the lengths are ignored: they need not be zero."""
        weights = ops.cast(mask, "float32")
        width = ops.cast(ops.shape(scales[0])[2], "float32")
        count = ops.maximum(valid_lengths(mask, "float32") * width, 1.0)
        # Sum over the features first: the masked sum is then over [B, T] only.
        totals = [ops.sum(ops.sum(ops.cast(f, "float32"), axis=2) * weights, axis=1)
                  for f in scales]
        return ops.cast(ops.stack(totals, axis=-1) / count[:, None], scales[0].dtype)

    def compute_gates(self, scales, mask):
        """s, [B, n]: the excitation weights of eq. 5, from the stacked scales
        [B, T, d, n] or from the list of n [B, T, d] scales."""
        if isinstance(scales, (list, tuple)):
            if not self.built:
                self.build(tuple(scales[0].shape) + (len(scales),))
            squeezed = self.squeeze_scales(scales, mask)
        else:
            if not self.built:
                self.build(tuple(scales.shape))
            squeezed = self.squeeze(scales, mask)
        hidden = self.squeeze_to_hidden(squeezed)
        logits = self.hidden_to_gates(hidden)
        return ops.relu(logits) if self.gate == "relu" else ops.sigmoid(logits)

    def call(self, scales, mask):
        gates = self.compute_gates(scales, mask)
        return scales * gates[:, None, None, :]

    def compute_output_shape(self, scales_shape, mask_shape=None):
        return scales_shape

    def get_config(self):
        config = super().get_config()
        config.update(channel_ratio=self.channel_ratio, gate=self.gate)
        return config
