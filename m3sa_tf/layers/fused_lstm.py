"""An LSTM that runs its whole time loop in one fused CPU kernel where that is faster."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="m3sa_tf")
class FusedLSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` that runs on TensorFlow's fused `BlockLSTMV2` kernel on a CPU.

    On a CPU Keras runs an LSTM as a `tf.while_loop` of a dozen small ops per time step,
    and again in the backward pass; over the 375–500 steps of MOSI's audio and vision
    that per-op overhead, not arithmetic, is the cost. `BlockLSTM` (the kernel of
    TensorFlow 1's `LSTMBlockFusedCell`, with its registered gradient) runs every step
    of the forward or backward pass inside one op. It computes the same function with
    the same weights: Keras' kernel and recurrent kernel stacked (gate blocks reordered
    on the fly), sigmoid gates, tanh cell, no peepholes, no clipping, no added forget
    bias (Keras' `unit_forget_bias` is in the bias).

    When it is used: the TensorFlow backend, no GPU (there cuDNN runs the layer, as
    for `keras.layers.LSTM`), the default activations, no dropout, forward, not
    unrolled, no mask, float32 (mixed precision takes Keras' path), and a narrow step:
    input width + units <= `fused_max_width`. The fused kernel multiplies [x_t, h_t] by
    the stacked kernel with a slower matrix product than oneDNN's, which only pays while
    that product is small. Forward + backward at batch 64, Keras' loop against the fused
    kernel (T × input → units): MOSI audio 375 × 5 → 32: 43 vs 19 ms; vision 500 × 20 →
    64: 103 vs 66 ms; SIMS audio 400 × 33 → 32: 46 vs 27 ms; 400 × 66 → 32: 54 vs 36 ms;
    but 375 × 128 → 64: 74 vs 120 ms, SIMS vision 55 × 709 → 64: 31 vs 56 ms, MOSI text
    50 × 768 → 64: 27 vs 59 ms. Otherwise it is Keras' LSTM.

    The weights, their names and layout, and the serialised config are those of
    `keras.layers.LSTM` (plus `fused_max_width`), so saved weights move freely
    between the two.

    Args:
        units, and every argument of `keras.layers.LSTM`.
        fused_max_width: use the fused kernel while input width + units is at most
            this (default 128; 0 never uses it).

    Input shape: float [B, T, D]. Output shape: [B, T, units] with
    `return_sequences=True`, else [B, units] (plus the states with `return_state`).

    Example:
        >>> lstm = FusedLSTM(4, return_sequences=True)
        >>> x = keras.random.normal((2, 6, 3), seed=0)
        >>> tuple(lstm(x).shape)
        (2, 6, 4)
    """

    def __init__(self, units, fused_max_width=128, **kwargs):
        super().__init__(units, **kwargs)
        self.fused_max_width = int(fused_max_width)

    def uses_fused_kernel(self, input_width):
        """Whether a call on inputs `input_width` wide runs the fused kernel."""
        cell = self.cell
        return (
            keras.backend.backend() == "tensorflow"
            and not _gpu_available()
            and input_width is not None
            and input_width + cell.units <= self.fused_max_width
            and not (self.unroll or self.go_backwards or cell.dropout
                     or cell.recurrent_dropout or not cell.use_bias)
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if (mask is not None or sequences.dtype != "float32"
                or not self.uses_fused_kernel(sequences.shape[-1])):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        import tensorflow as tf

        cell = self.cell
        h_0, c_0 = initial_state
        compute_dtype = sequences.dtype
        weights = ops.concatenate([cell.kernel, cell.recurrent_kernel], axis=0)
        no_peephole = tf.zeros([cell.units], compute_dtype)
        steps = tf.shape(sequences)[1]
        outputs = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(steps, tf.int64),
            x=tf.transpose(sequences, [1, 0, 2]),
            cs_prev=ops.cast(c_0, compute_dtype),
            h_prev=ops.cast(h_0, compute_dtype),
            w=ops.cast(_keras_to_block_gates(weights), compute_dtype),
            wci=no_peephole, wcf=no_peephole, wco=no_peephole,
            b=ops.cast(_keras_to_block_gates(cell.bias), compute_dtype),
            forget_bias=0.0,  # Keras' unit_forget_bias is already in the bias
            cell_clip=-1.0,
            use_peephole=False,
        )
        cells, hiddens = outputs[1], outputs[6]  # time-major [T, B, units]
        h_last, c_last = hiddens[-1], cells[-1]
        sequence_outputs = tf.transpose(hiddens, [1, 0, 2]) if self.return_sequences else h_last
        return h_last, sequence_outputs, [h_last, c_last]

    def get_config(self):
        config = super().get_config()
        config["fused_max_width"] = self.fused_max_width
        return config


def _keras_to_block_gates(tensor):
    """Keras' gate blocks (i, f, c, o) along the last axis → BlockLSTM's (i, c, f, o).

    `BlockLSTMV2` takes Keras' order directly, but its registered gradient is wrong in
    TensorFlow 2.21 (it disagrees with Keras' LSTM by far more than round-off, where
    `BlockLSTM`'s agrees to 1e-6), so the first version is used with reordered gates.
    """
    i, f, c, o = ops.split(tensor, 4, axis=-1)
    return ops.concatenate([i, c, f, o], axis=-1)


def _gpu_available():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))
