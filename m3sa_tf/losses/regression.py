"""Per-sample regression losses L_i of eq. 25."""

from keras import ops

REGRESSION_LOSSES = ("l1", "mse", "huber")


def per_sample_regression_loss(kind, y_true, y_pred, huber_delta=1.0):
    """L(ŷ, y) for every sample, [B]: "l1" |ŷ−y|, "mse" (ŷ−y)², or "huber" (δ = 1).

    Example:
        >>> ops.convert_to_numpy(per_sample_regression_loss("l1", [0.0, 1.0], [0.5, -1.0])).tolist()
        [0.5, 2.0]
    """
    if kind not in REGRESSION_LOSSES:
        raise ValueError(f"regression loss {kind!r} is not one of {list(REGRESSION_LOSSES)}")
    y_true = ops.reshape(ops.convert_to_tensor(y_true, "float32"), (-1,))
    y_pred = ops.reshape(ops.convert_to_tensor(y_pred, "float32"), (-1,))
    error = y_pred - y_true
    if kind == "l1":
        return ops.abs(error)
    if kind == "mse":
        return ops.square(error)
    absolute = ops.abs(error)
    quadratic = ops.minimum(absolute, huber_delta)
    return 0.5 * ops.square(quadratic) + huber_delta * (absolute - quadratic)
