"""Per-modality projection to the shared embedding of the contrastive loss (eq. 26)."""

import keras

from m3sa_tf.layers.sequence_readout import SequenceReadout


@keras.saving.register_keras_serializable(package="m3sa_tf")
class ContrastiveProjection(keras.layers.Layer):
    """Pools a modality's sequence X_m and projects it to the shared contrastive width.

    Eq. 26 takes dot products between modalities whose widths differ; the paper does not
    say how they meet. Here each modality's high-level features X_m (eq. 7) are pooled
    with the model's readout and projected linearly to `embedding_dim`. Normalisation
    (if any) belongs to the loss (config.contrastive_normalize), so that the model's
    `embedding_*` outputs are the raw projections.

    Args:
        embedding_dim: width of the shared embedding (config.contrastive_dim).
        readout: `SequenceReadout` mode.

    Call arguments:
        sequence: float [B, T, d]; mask: bool [B, T].

    Returns:
        float [B, embedding_dim].

    Example:
        >>> proj = ContrastiveProjection(embedding_dim=4, readout="mean")
        >>> x = keras.random.normal((3, 5, 6), seed=0)
        >>> tuple(proj(x, keras.ops.ones((3, 5), dtype="bool")).shape)
        (3, 4)
    """

    def __init__(self, embedding_dim=64, readout="last", **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = int(embedding_dim)
        self.readout_mode = readout
        self.readout = SequenceReadout(readout, dtype=self.dtype_policy, name="readout")
        self.projection = keras.layers.Dense(self.embedding_dim, dtype=self.dtype_policy,
                                             name="projection")

    def build(self, sequence_shape, mask_shape=None):
        self.readout.build(sequence_shape)
        self.projection.build((None, sequence_shape[-1]))

    def call(self, sequence, mask):
        return self.projection(self.readout(sequence, mask))

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return (sequence_shape[0], self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(embedding_dim=self.embedding_dim, readout=self.readout_mode)
        return config
