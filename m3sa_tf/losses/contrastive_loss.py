"""The contrastive loss between two modalities, eq. 26, per positive pair."""

from keras import ops


def l2_normalize(embeddings, epsilon=1e-12):
    """Rows scaled to unit length; a zero row stays zero (no NaN)."""
    squared = ops.sum(ops.square(embeddings), axis=-1, keepdims=True)
    return embeddings * ops.rsqrt(ops.maximum(squared, epsilon))


def contrastive_pair_terms(embeddings_a, embeddings_b, temperature, normalize=True,
                           pair_weight="detached"):
    """The per-sample terms ℓ_i of eq. 26, [B]; L_αβ = Σ_i ℓ_i.

    With s_jk = u_α^j · u_β^k / τ over the batch (j, k = 1 … N):

        ℓ_i = − exp(s_ii) · log( exp(s_ii) / (exp(s_ii) + Σ_{j≠k} exp(s_jk)) ).

    Read as the paper writes it: positive pairs are the N pairs (u_α^i, u_β^i); the
    denominator holds this sample's positive pair plus *all* N²−N negative pairs of the
    batch (modality α of one sample with modality β of another) — not only the negatives
    that involve sample i, as InfoNCE would. Choices the paper leaves open:

    - `normalize=True`: u are L2-normalised first (s is the cosine similarity over τ).
      The paper says "dot product"; normalising bounds exp(s_ii) by e^{1/τ}, without
      which the exp(·) factor in front of the log can overflow.
    - `pair_weight`: the exp(s_ii) factor in front of the log is "detached" (used as a
      per-pair weight, no gradient; default), "full" (the literal formula, gradient
      through the factor too — which rewards *lowering* s_ii, since ℓ_i → 0 as s_ii → −∞),
      or "none" (the factor is dropped).

    A batch of one sample has no negative pair: its term is 0 (log 1). All sums use
    logsumexp, so large similarities do not overflow the log.

    Args:
        embeddings_a, embeddings_b: float [B, e], the two modalities' projections.
        temperature: τ > 0.

    Example:
        >>> import numpy as np
        >>> a = np.eye(2, dtype="float32")  # s = I: s_ii = 1, two negatives of 0
        >>> terms = ops.convert_to_numpy(contrastive_pair_terms(a, a, 1.0))
        >>> [round(float(v), 4) for v in terms]  # e · −log(e / (e + 2))
        [1.499, 1.499]
    """
    if pair_weight not in ("detached", "full", "none"):
        raise ValueError(
            f"pair_weight={pair_weight!r} is not one of ['detached', 'full', 'none']"
        )
    a = ops.convert_to_tensor(embeddings_a, "float32")
    b = ops.convert_to_tensor(embeddings_b, "float32")
    if normalize:
        a, b = l2_normalize(a), l2_normalize(b)
    similarity = ops.matmul(a, ops.transpose(b)) / temperature  # s_jk, [B, B]
    positive = ops.diagonal(similarity)  # s_ii, [B]
    batch = ops.shape(similarity)[0]
    off_diagonal = ops.logical_not(ops.eye(batch, dtype="bool"))
    # A large finite negative (not -inf) keeps the gradient finite for a batch of one.
    negatives = ops.where(off_diagonal, similarity, ops.cast(-1e9, similarity.dtype))
    log_negatives = ops.logsumexp(negatives)  # log Σ_{j≠k} exp(s_jk), a scalar
    log_denominator = ops.logaddexp(positive, log_negatives)
    log_probability = positive - log_denominator
    if pair_weight == "none":
        weight = ops.ones_like(positive)
    elif pair_weight == "detached":
        weight = ops.stop_gradient(ops.exp(positive))
    else:
        weight = ops.exp(positive)
    return -weight * log_probability
