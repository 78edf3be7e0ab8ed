"""Padding masks from sequence lengths, and masked reductions that never divide by zero.

Every sequence in M³SA-TF is right-padded and comes with its length (interfaces §2). These
helpers turn lengths into boolean masks and reduce over valid steps only, so that padding
past the lengths cannot change any output and a length of 0 yields zeros, never NaN.

Mixed precision: the helpers keep the dtype of the sequence they are given (bfloat16 or
float16 under a mixed policy); masks are cast to that dtype, the masked sums and counts
are accumulated in float32 (a bfloat16 count is exact only up to 256 steps), and
"minus infinity" stand-ins come from `large_negative(dtype)`, which fits the dtype
(-1e9 overflows float16 to -inf, and a softmax over a row of -inf is NaN).
"""

import numpy as np
from keras import backend, ops

_LARGE = 1e9


def large_negative(dtype):
    """A large finite negative number representable in `dtype`: -1e9, or half the
    most negative value of a narrower type (float16: -32752)."""
    dtype = backend.standardize_dtype(dtype)
    if dtype == "bfloat16":
        return -_LARGE  # bfloat16 has float32's range
    return -min(_LARGE, float(np.finfo(dtype).max) / 2.0)


def lengths_to_mask(lengths, max_length):
    """Boolean mask [B, T]: True at steps t < length (lengths above T count as T)."""
    lengths = ops.cast(ops.reshape(lengths, (-1,)), "int32")
    steps = ops.arange(max_length, dtype="int32")
    return ops.less(ops.expand_dims(steps, 0), ops.expand_dims(lengths, 1))


def apply_mask(sequence, mask):
    """Zeros the padded steps of a [B, T, d] sequence."""
    return sequence * ops.cast(ops.expand_dims(mask, -1), sequence.dtype)


def at_least_one_step(sequence, mask):
    """(sequence, mask) with one padding step appended when the time axis is empty.

    A batch padded to its longest clip has 0 steps in a modality that every clip of it
    lacks (a served clip without audio, a small last batch); recurrent layers cannot run
    over 0 steps, and one masked step changes no output.
    """
    import tensorflow as tf

    steps = sequence.shape[1]
    if steps is not None and steps > 0:
        return sequence, mask
    missing = tf.maximum(1 - tf.shape(sequence)[1], 0)
    sequence = tf.pad(sequence, [[0, 0], [0, missing], [0, 0]])
    mask = tf.pad(mask, [[0, 0], [0, missing]])
    return sequence, mask


def valid_lengths(mask, dtype="float32"):
    """Number of valid steps per row, [B], as `dtype`."""
    return ops.sum(ops.cast(mask, dtype), axis=1)


def masked_mean(sequence, mask):
    """Mean over the valid steps of a [B, T, d] sequence -> [B, d]; 0 for length 0.
    Summed and divided in float32, returned in the sequence's dtype."""
    total = ops.sum(ops.cast(apply_mask(sequence, mask), "float32"), axis=1)
    count = ops.expand_dims(valid_lengths(mask, "float32"), -1)
    return ops.cast(total / ops.maximum(count, 1.0), sequence.dtype)


def masked_max(sequence, mask):
    """Max over the valid steps of a [B, T, d] sequence -> [B, d]; 0 for length 0."""
    # A large finite negative (not -inf) keeps the gradient of empty rows finite.
    very_negative = ops.cast(large_negative(sequence.dtype), sequence.dtype)
    filled = ops.where(ops.expand_dims(mask, -1), sequence, very_negative)
    best = ops.max(filled, axis=1)
    has_steps = ops.expand_dims(ops.any(mask, axis=1), -1)
    return ops.where(has_steps, best, ops.zeros_like(best))


def last_valid_step(sequence, mask):
    """The step at index length-1 of a [B, T, d] sequence -> [B, d]; 0 for length 0."""
    count = ops.cast(valid_lengths(mask, "float32"), "int32")
    # A one-hot selection (rather than a gather) works with a dynamic T and gives a
    # zero row for length 0.
    steps = ops.arange(ops.shape(sequence)[1], dtype="int32")
    select = ops.equal(ops.expand_dims(steps, 0), ops.expand_dims(count - 1, 1))
    return ops.sum(apply_mask(sequence, select), axis=1)


def masked_softmax(scores, mask, axis=-1):
    """Softmax of `scores` over the True entries of `mask`; all-False rows give zeros.
    Computed in float32, returned in the scores' dtype."""
    filled = ops.where(mask, ops.cast(scores, "float32"), large_negative("float32"))
    weights = ops.softmax(filled, axis=axis) * ops.cast(mask, "float32")
    return ops.cast(weights, scores.dtype)
