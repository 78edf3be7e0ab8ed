"""A window detector over time: parallel 1-D convolutions, half of them contrasted."""

import keras
from keras import ops

from m3sa_tf.layers.masking import apply_mask, masked_mean


@keras.saving.register_keras_serializable(package="m3sa_tf")
class WindowConvolution(keras.layers.Layer):
    """Parallel 1-D convolutions of several widths, half of the channels contrasted.

    An alternative to the recurrent extractor of eq. 1 (`MultiScaleBlock(extractor=
    "conv")`, not in the paper). Sentiment often shows in a short stretch of a clip (a
    phrase, a smile, a stressed syllable) at an unknown place; a recurrence has to carry
    that stretch to the clip's end, a convolution whose width matches it responds where
    it is, and a max readout then finds it anywhere. The widths of real windows are not
    known, so several kernels run side by side, each giving an equal share of the
    `filters` output channels.

    A speaker's habitual expression shifts every step of a clip; what marks the
    sentiment window is its difference from the rest of the clip. The first half of each
    kernel's channels is therefore *contrasted*: the clip's own mean over its valid
    steps is subtracted. The other half keeps the level, which is where the evidence
    sits when it is spread over the whole clip.

    Each step is first projected to `filters` features by a shared Dense layer: the
    kernels then read that narrow sequence rather than the raw features, which keeps the
    layer's size near a recurrent extractor's (on 709-wide vision features a 48-step
    kernel over the raw input alone would hold a million weights, and learns the
    training clips by heart). The projection is zeroed past each row's length, so a
    kernel that reaches over a clip's end sees zeros (as at its start) whatever the
    padding holds, and the output is zero past the length.

    Args:
        filters: output channels d (split across the kernels, the remainder to the
            widest).
        kernel_sizes: the kernels' widths in steps, each >= 1.

    Call arguments:
        sequence: float [B, T, D], right-padded.
        mask: bool [B, T], True at the first `length` steps of each row.

    Returns:
        float [B, T, filters].

    Example:
        >>> conv = WindowConvolution(filters=6, kernel_sizes=(2, 4))
        >>> u = keras.random.normal((2, 7, 3), seed=0)
        >>> mask = keras.ops.array([[True] * 7, [True] * 5 + [False] * 2])
        >>> tuple(conv(u, mask).shape)
        (2, 7, 6)
    """

    def __init__(self, filters, kernel_sizes=(4, 16, 48), **kwargs):
        super().__init__(**kwargs)
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not kernel_sizes or min(kernel_sizes) < 1:
            raise ValueError(f"kernel_sizes={kernel_sizes!r} must be one or more "
                             "integers >= 1")
        if int(filters) < len(kernel_sizes):
            raise ValueError(f"filters={filters!r} must be at least the number of kernels "
                             f"({len(kernel_sizes)}) so that each gets a channel")
        self.filters = int(filters)
        self.kernel_sizes = kernel_sizes
        share, extra = divmod(self.filters, len(kernel_sizes))
        widths = [share] * len(kernel_sizes)
        widths[-1] += extra
        self.projection = keras.layers.Dense(self.filters, dtype=self.dtype_policy,
                                             name="projection")
        self.branches = [
            keras.layers.Conv1D(width, size, padding="same", dtype=self.dtype_policy,
                                name=f"conv_{size}")
            for width, size in zip(widths, kernel_sizes)
        ]

    def build(self, sequence_shape, mask_shape=None):
        self.projection.build((None, None, sequence_shape[-1]))
        for branch in self.branches:
            branch.build((None, None, self.filters))

    def call(self, sequence, mask):
        mask = ops.cast(mask, "bool")
        sequence = apply_mask(self.projection(sequence), mask)
        parts = []
        for branch in self.branches:
            features = branch(sequence)
            # Half of every kernel's channels (rounded down) are contrasted, so each
            # width reports both the window's difference from the clip and its level.
            half = features.shape[-1] // 2
            if half:
                contrast = features[..., :half]
                contrast = contrast - ops.expand_dims(masked_mean(contrast, mask), 1)
                parts += [contrast, features[..., half:]]
            else:
                parts.append(features)
        features = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)
        return apply_mask(features, mask)

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return tuple(sequence_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_sizes=list(self.kernel_sizes))
        return config
