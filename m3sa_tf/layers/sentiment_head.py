"""A regression head: sequence (or vector) in, one sentiment score per sample out."""

import keras
from keras import ops

from m3sa_tf.layers.sequence_readout import SequenceReadout


@keras.saving.register_keras_serializable(package="m3sa_tf")
class SentimentHead(keras.layers.Layer):
    """The paper's `classify_m` (eqs 8–10) and `classify_f` (eq. 24).

    readout (for a sequence input) → dropout → Dense(hidden, ReLU) → dropout → Dense(1).
    The paper calls these heads classifiers but trains them on sentiment scores; they
    regress one real score per sample. A rank-2 input (late and equal fusion produce a
    vector) skips the readout.

    Args:
        hidden_size: width of the hidden layer.
        dropout: dropout rate (config.dropout).
        readout: `SequenceReadout` mode for sequence inputs.
        seed: seed of the dropout noise.

    Call arguments:
        inputs: float [B, T, d] with `mask` bool [B, T], or float [B, d] (mask ignored).

    Returns:
        float [B], the predicted sentiment scores.

    Example:
        >>> head = SentimentHead(hidden_size=8, dropout=0.1, readout="last")
        >>> x = keras.random.normal((4, 5, 6), seed=0)
        >>> tuple(head(x, keras.ops.ones((4, 5), dtype="bool")).shape)
        (4,)
    """

    def __init__(self, hidden_size=64, dropout=0.0, readout="last", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.dropout = float(dropout)
        self.readout_mode = readout
        self.seed = seed
        policy = self.dtype_policy  # shared by the inner layers (mixed precision)
        self.readout = SequenceReadout(readout, dtype=policy, name="readout")
        self.input_dropout = keras.layers.Dropout(self.dropout, seed=seed, dtype=policy,
                                                  name="input_dropout")
        self.hidden = keras.layers.Dense(self.hidden_size, activation="relu", dtype=policy,
                                         name="hidden")
        self.hidden_dropout = keras.layers.Dropout(
            self.dropout, seed=None if seed is None else seed + 1, dtype=policy,
            name="hidden_dropout",
        )
        self.score = keras.layers.Dense(1, dtype=policy, name="score")

    def build(self, inputs_shape, mask_shape=None):
        width = inputs_shape[-1]
        if len(inputs_shape) == 3:
            self.readout.build(inputs_shape)
        self.hidden.build((None, width))
        self.score.build((None, self.hidden_size))

    def call(self, inputs, mask=None, training=False):
        if len(inputs.shape) == 3:
            if mask is None:
                raise ValueError("a sequence input to SentimentHead needs its mask [B, T]")
            inputs = self.readout(inputs, mask)
        hidden = self.hidden(self.input_dropout(inputs, training=training))
        return self.score(self.hidden_dropout(hidden, training=training))[:, 0]

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return (inputs_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, dropout=self.dropout,
                      readout=self.readout_mode, seed=self.seed)
        return config
