"""The unimodal sub-networks the TFN family of baselines shares (TFN, LMF, LF-DNN,
MLF-DNN, MTFN, TLF-DNN), after MMSA's `SubNet` and `TextSubNet`.

MMSA feeds these models audio and vision averaged over time ("need_normalized": the
mean over all steps, padding included) and the text as its padded sequence, run through
an LSTM whose final state includes the padding. Here the mean and the LSTM see the valid
steps only, so that padding cannot change a prediction (docs/baselines.md).
"""

import keras
from keras import layers, ops

from m3sa_tf.layers.masking import masked_mean


@keras.saving.register_keras_serializable(package="m3sa_tf")
class PooledSubNet(keras.layers.Layer):
    """Masked time-average, batch norm, dropout, then three ReLU layers.

    Args:
        hidden_size: width of the three dense layers (the output width).
        dropout: dropout rate after the batch norm.
        seed: dropout seed.

    Call arguments:
        sequence: [B, T, D] float, zero past the lengths.
        mask: [B, T] bool.

    Returns:
        [B, hidden_size].

    Example:
        >>> import numpy as np
        >>> net = PooledSubNet(4)
        >>> tuple(net(np.ones((2, 3, 5), "float32"), np.ones((2, 3), bool)).shape)
        (2, 4)
    """

    def __init__(self, hidden_size, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.dropout = float(dropout)
        self.seed = seed
        self.norm = layers.BatchNormalization(dtype=self.dtype_policy, name="norm")
        self.drop = layers.Dropout(self.dropout, seed=seed, dtype=self.dtype_policy)
        self.dense = [
            layers.Dense(self.hidden_size, activation="relu", dtype=self.dtype_policy,
                         name=f"linear_{i + 1}")
            for i in range(3)
        ]

    def build(self, sequence_shape, mask_shape=None):
        width = sequence_shape[-1]
        self.norm.build((None, width))
        self.dense[0].build((None, width))
        for layer in self.dense[1:]:
            layer.build((None, self.hidden_size))

    def call(self, sequence, mask, training=False):
        pooled = masked_mean(sequence, mask)
        hidden = self.drop(self.norm(pooled, training=training), training=training)
        for layer in self.dense:
            hidden = layer(hidden)
        return hidden

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return (sequence_shape[0], self.hidden_size)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, dropout=self.dropout, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="m3sa_tf")
class RecurrentSubNet(keras.layers.Layer):
    """An LSTM over the valid steps, its final state, dropout and a linear layer.

    Args:
        hidden_size: LSTM width.
        output_size: width of the final linear layer (the output width).
        dropout: dropout rate on the final state.
        seed: dropout seed.

    Call arguments:
        sequence: [B, T, D] float.
        mask: [B, T] bool (right-padded; a row without steps gives the LSTM's zero
            initial state).

    Returns:
        [B, output_size].

    Example:
        >>> import numpy as np
        >>> net = RecurrentSubNet(4, 3)
        >>> tuple(net(np.ones((2, 5, 6), "float32"), np.ones((2, 5), bool)).shape)
        (2, 3)
    """

    def __init__(self, hidden_size, output_size, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.output_size = int(output_size)
        self.dropout = float(dropout)
        self.seed = seed
        self.rnn = layers.LSTM(self.hidden_size, dtype=self.dtype_policy, name="rnn")
        self.drop = layers.Dropout(self.dropout, seed=seed, dtype=self.dtype_policy)
        self.linear = layers.Dense(self.output_size, dtype=self.dtype_policy, name="linear_1")

    def build(self, sequence_shape, mask_shape=None):
        self.rnn.build((None, None, sequence_shape[-1]))
        self.linear.build((None, self.hidden_size))

    def call(self, sequence, mask, training=False):
        final = self.rnn(sequence, mask=mask, training=training)
        return self.linear(self.drop(final, training=training))

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return (sequence_shape[0], self.output_size)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, output_size=self.output_size,
                      dropout=self.dropout, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="m3sa_tf")
class DenseRegressionHead(keras.layers.Layer):
    """Dropout, two ReLU layers and a linear output: one sentiment score per row.

    Args:
        hidden_size: width of the two ReLU layers.
        dropout: dropout rate on the input.
        seed: dropout seed.

    Call arguments:
        features: float [B, d].

    Returns:
        float [B].

    Example:
        >>> import numpy as np
        >>> tuple(DenseRegressionHead(4)(np.ones((3, 5), "float32")).shape)
        (3,)
    """

    def __init__(self, hidden_size, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.dropout = float(dropout)
        self.seed = seed
        self.drop = layers.Dropout(self.dropout, seed=seed, dtype=self.dtype_policy)
        self.dense = [
            layers.Dense(self.hidden_size, activation="relu", dtype=self.dtype_policy,
                         name="layer_1"),
            layers.Dense(self.hidden_size, activation="relu", dtype=self.dtype_policy,
                         name="layer_2"),
            layers.Dense(1, dtype=self.dtype_policy, name="layer_3"),
        ]

    def build(self, features_shape):
        self.dense[0].build((None, features_shape[-1]))
        self.dense[1].build((None, self.hidden_size))
        self.dense[2].build((None, self.hidden_size))

    def call(self, features, training=False):
        hidden = self.drop(features, training=training)
        for layer in self.dense:
            hidden = layer(hidden)
        return ops.reshape(hidden, (-1,))

    def compute_output_shape(self, features_shape):
        return (features_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, dropout=self.dropout, seed=self.seed)
        return config


def sentiment_range(family):
    """(low, high) of the fused label: [-3, 3] on MOSI/MOSEI, [-1, 1] on SIMS."""
    return (-1.0, 1.0) if family == "sims" else (-3.0, 3.0)


def scaled_sigmoid(logits, family):
    """MMSA's TFN-family output: a sigmoid stretched over the label range."""
    low, high = sentiment_range(family)
    return ops.sigmoid(logits) * (high - low) + low
