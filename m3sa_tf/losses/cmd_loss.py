"""MISA's batch-level regularisers: central moment discrepancy and soft orthogonality.

Both compare two sets of representations, [B, H] each, through statistics over the
batch (means, central moments, the cross-correlation matrix), so each returns one scalar
for the batch, not a value per sample. After MMSA's `CMD` and `DiffLoss`
(trains/singleTask/MISA.py), which follow Zellinger et al. 2017 (CMD, without the
1/|b-a|^k range scaling, the representations being sigmoid outputs in [0, 1]) and
Bousmalis et al. 2016 (the difference loss of domain separation networks).

Both compute in float32 whatever the dtype of their inputs (mixed precision).
"""

from keras import ops


def _euclidean_norm(difference):
    """‖difference‖₂ over every entry, with a zero (not NaN) gradient at the origin.

    The moments of two identical sets (a batch of one sample, say) coincide, and the
    plain square root's gradient there is 0·∞."""
    squared = ops.sum(ops.square(difference))
    positive = squared > 0
    safe = ops.where(positive, squared, ops.ones_like(squared))
    return ops.where(positive, ops.sqrt(safe), ops.zeros_like(squared))


def central_moment_discrepancy(x1, x2, n_moments=5):
    """CMD between two sets of vectors: the distance of their means plus the distances
    of their central moments of orders 2 … n_moments, each moment taken per feature.

    Args:
        x1, x2: [B, H] float, the two sets (same B, same H).
        n_moments: highest moment order (MISA: 5).

    Returns:
        A scalar: Σ_k ‖E[(x1-E x1)^k] − E[(x2-E x2)^k]‖₂, with the raw means at k = 1.

    Example:
        >>> a = ops.convert_to_tensor([[0.0, 1.0], [1.0, 1.0]])
        >>> b = ops.convert_to_tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> round(float(central_moment_discrepancy(a, b, n_moments=2)), 4)  # means differ by 1
        1.0
    """
    # Fifth powers of half-precision activations lose most of their digits: float32.
    x1, x2 = ops.cast(x1, "float32"), ops.cast(x2, "float32")
    mean1 = ops.mean(x1, axis=0)
    mean2 = ops.mean(x2, axis=0)
    total = _euclidean_norm(mean1 - mean2)
    centred1 = x1 - mean1
    centred2 = x2 - mean2
    for order in range(2, int(n_moments) + 1):
        moment1 = ops.mean(ops.power(centred1, order), axis=0)
        moment2 = ops.mean(ops.power(centred2, order), axis=0)
        total = total + _euclidean_norm(moment1 - moment2)
    return total


def difference_loss(x1, x2, epsilon=1e-6):
    """Soft orthogonality of two sets of vectors: the mean squared entry of U1ᵀU2, where
    U is the batch-centred set with every row scaled to unit length.

    The row norms are treated as constants (no gradient through them), as in MMSA, so
    the loss pushes the directions apart rather than shrinking the vectors; a zero row
    (a batch of one sample, once centred) stays zero thanks to `epsilon`.

    Args:
        x1: [B, H1] float.
        x2: [B, H2] float.
        epsilon: added to every row norm before the division.

    Returns:
        A scalar ≥ 0; 0 when, across the batch, no feature of one set varies together
        with any feature of the other.

    Example:
        >>> a = ops.convert_to_tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
        >>> b = ops.convert_to_tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
        >>> round(float(difference_loss(a, b)), 6)
        0.0
        >>> round(float(difference_loss(a, a)), 3)  # a set is not orthogonal to itself
        1.0
    """

    def unit_rows(x):
        centred = x - ops.mean(x, axis=0, keepdims=True)
        norms = ops.stop_gradient(ops.sqrt(ops.sum(ops.square(centred), axis=1,
                                                   keepdims=True)))
        return centred / (norms + epsilon)

    x1, x2 = ops.cast(x1, "float32"), ops.cast(x2, "float32")  # whatever the policy
    correlation = ops.matmul(ops.transpose(unit_rows(x1)), unit_rows(x2))
    return ops.mean(ops.square(correlation))
