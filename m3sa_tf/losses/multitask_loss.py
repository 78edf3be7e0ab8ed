"""The multi-task loss of eq. 25, per sample."""

from keras import ops

from m3sa_tf.losses.regression import per_sample_regression_loss


def multitask_loss_terms(labels, outputs, fused_weight, unimodal_weights, kind="l1"):
    """Σ_i ∂_i · L_i(ŷ_i, y_i) for every sample, [B] (eq. 25 before its 1/N Σ_n).

    The subtasks are the fused head (∂_f · L_f) and each unimodal head m whose prediction
    is in `outputs` *and* whose label is in `labels` (CH-SIMS has y_T, y_A, y_V; a head
    without a label contributes nothing). The batch mean of this vector is eq. 25's L.

    Args:
        labels: dict with "fused" [B] and optionally "text"/"audio"/"vision" [B].
        outputs: the model's output dict ("fused", "text", ...).
        fused_weight: ∂_f (number or scalar tensor).
        unimodal_weights: dict modality -> ∂_m (number or scalar tensor / variable).
        kind: the regression loss L_i ("l1", "mse", "huber").

    Example:
        >>> labels = {"fused": [1.0, -1.0], "text": [0.5, 0.0]}
        >>> outputs = {"fused": [0.0, -1.0], "text": [0.5, 1.0], "audio": [9.0, 9.0]}
        >>> ops.convert_to_numpy(multitask_loss_terms(labels, outputs, 1.0, {"text": 0.5})).tolist()
        [1.0, 0.5]
    """
    total = fused_weight * per_sample_regression_loss(kind, labels["fused"], outputs["fused"])
    for modality, weight in unimodal_weights.items():
        if modality in outputs and modality in labels:
            term = per_sample_regression_loss(kind, labels[modality], outputs[modality])
            total = total + ops.cast(weight, term.dtype) * term
    return total
