"""The multi-scale feature extraction block of one modality (paper §III-A, eqs 1–7)."""

import keras
from keras import ops

from m3sa_tf.config import EXTRACTORS
from m3sa_tf.layers.masking import apply_mask
from m3sa_tf.layers.fused_lstm import FusedLSTM
from m3sa_tf.layers.scale_squeeze_excitation import ScaleSqueezeExcitation
from m3sa_tf.layers.window_convolution import WindowConvolution


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MultiScaleBlock(keras.layers.Layer):
    """Extractor, n scales, channel attention over the scales and a 1×1 convolution.

    eq. 1  F^1 = Extractor(U) — an LSTM in the paper (`FusedLSTM`: Keras' LSTM, run
           by one fused kernel on a CPU where that is faster); GRU,
           SimpleRNN or a per-step Dense (Fig. 9) are selectable, and "conv", a
           window detector that is not in the paper (`WindowConvolution`: parallel
           1-D convolutions, half of each one's channels taken relative to the clip's
           mean; pair it with a "max" or "attention" readout, which can find a window
           anywhere in the clip). The recurrent
           extractors keep Keras' default activations so that the cuDNN kernel is used
           on a GPU. They run forward over right-padded sequences, so the padding comes
           after every valid step and cannot change an output at a valid step; the
           mask is therefore applied to their outputs (zero past the length) and not
           inside the time loop, where Keras would select between old and new states at
           every step for nothing.
    eq. 2  F^{k+1} = Dense(LayerNorm(ReLU(F^k))), k = 1 … n−1.
    eq. 3  F = stack(F^1, …, F^n) ∈ R^{T×d×n}.
    eqs 4–6  squeeze, excitation and scale: `ScaleSqueezeExcitation`.
    eq. 7  X = Conv1×1(M̃). A 1×1 convolution from n channels to one is a learned
           weighted sum of the n scales plus one bias; with eq. 6 folded in it is
           X = Σ_k (s_k · w_k) F^k + b, computed scale by scale, so the stack F and the
           rescaled M̃ ([B, T, d, n] each) are never materialised. The weights start
           at 1/n, the plain average of the scales.

    Every output is zero past the sequence's length. With `multi_scale=False` (the
    ablation of Fig. 7) the block is the extractor alone: one scale, no SE, X = F^1.

    Args:
        hidden_size: d, the width of every scale and of X.
        n_scales: n (eq. 2); ignored when `multi_scale=False`.
        channel_ratio: r of the excitation (eq. 5).
        extractor: "lstm", "gru", "simple_rnn", "dense" or "conv".
        conv_kernel_sizes: the widths, in steps, of the "conv" extractor's kernels.
        multi_scale: False for the single-scale ablation.
        excitation_gate: "relu" (paper) or "sigmoid"; see `ScaleSqueezeExcitation`.

    Call arguments:
        sequence: float [B, T, D], right-padded.
        mask: bool [B, T], True at the first `length` steps of each row (right
            padding, as every input of this library has; a row may be all False).

    Returns:
        (X, F^n): two float [B, T, d] tensors, the block's output X (eq. 7) for fusion,
        and the last scale F^n that the unimodal heads read (eqs 8–10).

    Example:
        >>> block = MultiScaleBlock(hidden_size=8, n_scales=3, channel_ratio=2)
        >>> u = keras.random.normal((2, 6, 5), seed=0)
        >>> mask = keras.ops.array([[True] * 6, [True] * 4 + [False] * 2])
        >>> x, f_n = block(u, mask)
        >>> tuple(x.shape), tuple(f_n.shape)
        ((2, 6, 8), (2, 6, 8))
    """

    def __init__(self, hidden_size, n_scales=5, channel_ratio=4, extractor="lstm",
                 multi_scale=True, excitation_gate="relu", conv_kernel_sizes=(4, 16, 48),
                 **kwargs):
        super().__init__(**kwargs)
        if extractor not in EXTRACTORS:
            raise ValueError(f"extractor={extractor!r} is not one of {list(EXTRACTORS)}")
        if int(n_scales) < 1 or int(hidden_size) < 1:
            raise ValueError(
                f"hidden_size={hidden_size!r} and n_scales={n_scales!r} must be integers >= 1"
            )
        self.hidden_size = int(hidden_size)
        self.n_scales = int(n_scales)
        self.channel_ratio = int(channel_ratio)
        self.extractor = extractor
        self.multi_scale = bool(multi_scale)
        self.excitation_gate = excitation_gate
        self.conv_kernel_sizes = tuple(int(k) for k in conv_kernel_sizes)
        self.supports_masking = False

        width = self.hidden_size
        # Inner layers share this layer's dtype policy (mixed precision included).
        policy = self.dtype_policy
        if extractor == "lstm":
            self.feature_extractor = FusedLSTM(width, return_sequences=True,
                                               dtype=policy, name="extractor")
        elif extractor == "gru":
            self.feature_extractor = keras.layers.GRU(width, return_sequences=True,
                                                      dtype=policy, name="extractor")
        elif extractor == "simple_rnn":
            self.feature_extractor = keras.layers.SimpleRNN(width, return_sequences=True,
                                                            dtype=policy, name="extractor")
        elif extractor == "conv":
            self.feature_extractor = WindowConvolution(
                width, kernel_sizes=self.conv_kernel_sizes, dtype=policy, name="extractor")
        else:
            self.feature_extractor = keras.layers.Dense(width, dtype=policy, name="extractor")
        self.scale_norms = []
        self.scale_denses = []
        self.excitation = None
        if self.multi_scale:
            for k in range(2, self.n_scales + 1):
                self.scale_norms.append(keras.layers.LayerNormalization(dtype=policy,
                                                                        name=f"norm_{k}"))
                self.scale_denses.append(keras.layers.Dense(width, dtype=policy,
                                                            name=f"scale_{k}"))
            self.excitation = ScaleSqueezeExcitation(
                channel_ratio=self.channel_ratio, gate=excitation_gate, dtype=policy,
                name="excitation",
            )

    @property
    def is_recurrent(self):
        return self.extractor not in ("dense", "conv")

    def build(self, sequence_shape, mask_shape=None):
        feature_dim = sequence_shape[-1]
        if feature_dim is None:
            raise ValueError("the feature axis of the input sequence must be known")
        if self.extractor == "conv":
            self.feature_extractor.build((None, None, feature_dim), (None, None))
        else:
            self.feature_extractor.build((None, None, feature_dim))
        for norm, dense in zip(self.scale_norms, self.scale_denses):
            norm.build((None, None, self.hidden_size))
            dense.build((None, None, self.hidden_size))
        if self.multi_scale:
            self.excitation.build((None, None, self.hidden_size, self.n_scales))
            self.conv_kernel = self.add_weight(
                name="conv_kernel",
                shape=(self.n_scales,),
                initializer=keras.initializers.Constant(1.0 / self.n_scales),
            )
            self.conv_bias = self.add_weight(name="conv_bias", shape=(), initializer="zeros")

    def extract(self, sequence, mask):
        """F^1 (eq. 1), zero past the lengths."""
        # Recurrent or not, the extractor reads the whole padded sequence (see the class
        # docstring: with right padding the mask is only needed on the outputs).
        if self.extractor == "conv":
            return self.feature_extractor(sequence, mask)
        features = self.feature_extractor(sequence)
        return apply_mask(features, mask)

    def call(self, sequence, mask, training=False):
        mask = ops.cast(mask, "bool")
        # Every step past the batch's longest clip is padding in every row: the block
        # runs over the steps before it and pads its outputs back with zeros, so a batch
        # padded to the dataset's maximum costs what a trimmed one does.
        steps = ops.shape(sequence)[1]
        longest = ops.maximum(ops.max(ops.sum(ops.cast(mask, "int32"), axis=1)), 1)
        x, last_scale = self._trimmed_call(sequence[:, :longest], mask[:, :longest])
        padding = [[0, 0], [0, steps - longest], [0, 0]]
        # The reshape restores the static length (when known) that the slice hid.
        shape = (-1, steps, self.hidden_size)
        return (ops.reshape(ops.pad(x, padding), shape),
                ops.reshape(ops.pad(last_scale, padding), shape))

    def _trimmed_call(self, sequence, mask):
        scale = self.extract(sequence, mask)
        if not self.multi_scale:
            return scale, scale
        # eq. 2 acts step by step, so values past the lengths never reach a valid step;
        # they are zeroed once, on the outputs, instead of after every scale.
        scales = [scale]
        for norm, dense in zip(self.scale_norms, self.scale_denses):
            scale = dense(norm(ops.relu(scale)))
            scales.append(scale)
        # eqs 6–7 without the [B, T, d, n] stack: X = Σ_k (s_k · w_k) F^k + b, i.e. the
        # 1×1 convolution of the rescaled scales, in one pass over each scale.
        gates = self.excitation.compute_gates(scales, mask)
        weights = gates * ops.cast(self.conv_kernel, gates.dtype)[None, :]
        mixed = scales[0] * weights[:, None, None, 0]
        for k in range(1, self.n_scales):
            mixed = mixed + scales[k] * weights[:, None, None, k]
        mixed = mixed + ops.cast(self.conv_bias, mixed.dtype)
        return apply_mask(mixed, mask), apply_mask(scales[-1], mask)

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        shape = tuple(sequence_shape[:-1]) + (self.hidden_size,)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            n_scales=self.n_scales,
            channel_ratio=self.channel_ratio,
            extractor=self.extractor,
            multi_scale=self.multi_scale,
            excitation_gate=self.excitation_gate,
            conv_kernel_sizes=list(self.conv_kernel_sizes),
        )
        return config
