"""Sinusoidal positions for right-padded sequences (MulT's transformer inputs)."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="m3sa_tf")
class SinusoidalPositionalEmbedding(keras.layers.Layer):
    """Fixed sine/cosine position codes for the valid steps of a padded sequence.

    The codes follow fairseq's variant used by MulT (Tsai et al. 2019): for a width d,
    h = d // 2 frequencies exp(-k·ln(10000)/(h-1)), k = 0…h-1; the first h channels
    hold the sines and the next h the cosines (not interleaved), and an odd d gets a
    zero last channel. Valid steps are numbered from 1; padding steps get a zero code,
    so the codes of a row depend on its length only, never on how far it is padded.

    The layer has no weights.

    Args:
        embed_dim: the code width d.

    Call arguments:
        mask: bool [B, T], True at valid steps.

    Returns:
        float [B, T, d] codes (zero past the lengths).

    Example:
        >>> import numpy as np
        >>> codes = SinusoidalPositionalEmbedding(4)(np.array([[True, True, False]]))
        >>> (np.round(np.asarray(codes, "float64")[0], 2) + 0.0).tolist()
        [[0.84, 0.0, 0.54, 1.0], [0.91, 0.0, -0.42, 1.0], [0.0, 0.0, 0.0, 0.0]]
    """

    def __init__(self, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = int(embed_dim)
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim={embed_dim!r} must be a positive integer")

    def build(self, mask_shape=None):
        self.built = True

    def call(self, mask):
        mask = ops.cast(mask, "bool")
        half = self.embed_dim // 2
        # Positions start at 1: fairseq reserves 0 for padding, whose code is zero.
        positions = ops.cast(ops.cumsum(ops.cast(mask, "int32"), axis=1), "float32")
        # A width below 4 has h-1 <= 0; one frequency (1) keeps the codes finite.
        step = math.log(10000.0) / max(half - 1, 1)
        frequencies = ops.exp(ops.arange(half, dtype="float32") * -step)
        angles = ops.expand_dims(positions, -1) * frequencies
        parts = [ops.sin(angles), ops.cos(angles)]
        if self.embed_dim % 2:
            parts.append(ops.zeros_like(angles[..., :1]))
        codes = ops.concatenate(parts, axis=-1)
        codes = codes * ops.cast(ops.expand_dims(mask, -1), codes.dtype)
        return ops.cast(codes, self.compute_dtype)

    def compute_output_shape(self, mask_shape):
        return tuple(mask_shape) + (self.embed_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(embed_dim=self.embed_dim)
        return config
