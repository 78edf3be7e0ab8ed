"""Late fusion (Fig. 8 "Late"): separate extractors, representations joined at the end."""

import keras
from keras import ops

from m3sa_tf.layers.sequence_readout import SequenceReadout


@keras.saving.register_keras_serializable(package="m3sa_tf")
class LateFusion(keras.layers.Layer):
    """Pools every modality's X_m separately and concatenates the vectors.

    The paper's late fusion "extracts the independent features of different modalities
    before decision fusion"; its LF-DNN baseline concatenates the per-modality
    representations for the prediction. Reading used here: each modality keeps its own
    multi-scale block and unimodal head; the fused head reads Concat(pool(X_t),
    pool(X_a), pool(X_v)) — the unimodal representations, not their scalar decisions,
    which would leave the fused head three numbers to work with.

    Args:
        modalities: the modalities, in the order of the concatenation.
        readout: `SequenceReadout` mode for the pooling.

    Call arguments:
        sequences: dict modality -> float [B, T_m, d_m]; masks: dict modality -> bool [B, T_m].

    Returns:
        float [B, Σ d_m].

    Example:
        >>> late = LateFusion(("text", "audio"), readout="mean")
        >>> xs = {"text": keras.ops.ones((2, 3, 4)), "audio": keras.ops.ones((2, 5, 2))}
        >>> ms = {"text": keras.ops.ones((2, 3), dtype="bool"),
        ...       "audio": keras.ops.ones((2, 5), dtype="bool")}
        >>> tuple(late(xs, ms).shape)
        (2, 6)
    """

    def __init__(self, modalities, readout="last", **kwargs):
        super().__init__(**kwargs)
        self.modalities = tuple(modalities)
        self.readout_mode = readout
        self.readouts = {m: SequenceReadout(readout, dtype=self.dtype_policy,
                                            name=f"readout_{m}")
                         for m in self.modalities}

    def build(self, sequences_shape, masks_shape=None):
        for m in self.modalities:
            self.readouts[m].build(sequences_shape[m])

    def call(self, sequences, masks):
        return ops.concatenate(
            [self.readouts[m](sequences[m], masks[m]) for m in self.modalities], axis=-1
        )

    def compute_output_shape(self, sequences_shape, masks_shape=None):
        first = sequences_shape[self.modalities[0]]
        return (first[0], sum(sequences_shape[m][-1] for m in self.modalities))

    def get_config(self):
        config = super().get_config()
        config.update(modalities=list(self.modalities), readout=self.readout_mode)
        return config
