"""Early fusion (Fig. 8 "Early"): the modalities' inputs joined before one extractor."""

import keras
import tensorflow as tf
from keras import ops

from m3sa_tf.layers.masking import apply_mask


@keras.saving.register_keras_serializable(package="m3sa_tf")
class EarlyFusion(keras.layers.Layer):
    """Aligns the modalities' input sequences on a common time axis and concatenates them.

    The paper's early fusion (Fig. 8; its EF-LSTM baseline) "concatenates the initial
    inputs of the three modalities" and runs one extractor over the result. The
    modalities have different lengths and no word alignment in the unaligned data, so the
    reading here is: every modality is zero-padded at the end to the longest length in
    the batch, step t of the fused sequence holds step t of every modality (zeros where
    a modality has ended), and the fused sequence is valid where any modality is valid
    (its length is the largest of the modality lengths). One `MultiScaleBlock` and the
    fused head follow; there are no unimodal heads in this strategy.

    Args:
        modalities: the modalities, in the order of the feature concatenation.

    Call arguments:
        sequences: dict modality -> float [B, T_m, D_m]; masks: dict modality -> bool [B, T_m].

    Returns:
        (fused, mask): float [B, max T_m, Σ D_m] (zero past each modality's length) and
        bool [B, max T_m].

    Example:
        >>> early = EarlyFusion(("audio", "vision"))
        >>> xs = {"audio": keras.ops.ones((2, 3, 4)), "vision": keras.ops.ones((2, 5, 2))}
        >>> ms = {"audio": keras.ops.ones((2, 3), dtype="bool"),
        ...       "vision": keras.ops.ones((2, 5), dtype="bool")}
        >>> fused, mask = early(xs, ms)
        >>> tuple(fused.shape), tuple(mask.shape)
        ((2, 5, 6), (2, 5))
    """

    def __init__(self, modalities, **kwargs):
        super().__init__(**kwargs)
        self.modalities = tuple(modalities)

    def build(self, sequences_shape, masks_shape=None):
        self.built = True

    def call(self, sequences, masks):
        lengths = [ops.shape(sequences[m])[1] for m in self.modalities]
        longest = lengths[0]
        for length in lengths[1:]:
            longest = ops.maximum(longest, length)
        parts, padded_masks = [], []
        for m, length in zip(self.modalities, lengths):
            mask = ops.cast(masks[m], "bool")
            # tf.pad takes a dynamic pad width; the time axis differs per batch.
            extra = longest - length
            parts.append(tf.pad(apply_mask(sequences[m], mask), [[0, 0], [0, extra], [0, 0]]))
            padded_masks.append(tf.pad(mask, [[0, 0], [0, extra]], constant_values=False))
        union = padded_masks[0]
        for mask in padded_masks[1:]:
            union = ops.logical_or(union, mask)
        return ops.concatenate(parts, axis=-1), union

    def compute_output_shape(self, sequences_shape, masks_shape=None):
        first = sequences_shape[self.modalities[0]]
        width = sum(sequences_shape[m][-1] for m in self.modalities)
        return (first[0], None, width), (first[0], None)

    def get_config(self):
        config = super().get_config()
        config.update(modalities=list(self.modalities))
        return config
