"""Multimodal sentiment analysis metrics as the field reports them (MMSA's definitions).

The evaluation protocol's numbers, shared by training (`m3sa_tf.metrics` re-exports
them), the synthetic data's Bayes reference (`tfrecords.synthetic`) and the baselines.
Plain functions over NumPy arrays (or anything ``np.asarray`` accepts: lists, tensors
already converted to NumPy). They reproduce ``MetricsTop`` of the MMSA toolkit
(``__eval_mosei_regression`` for MOSI/MOSEI, ``__eval_sims_regression`` for CH-SIMS) and
add the M³SA paper's own ``Paper_Acc_2`` and ``Paper_Acc_3``. ``docs/metrics.md`` gives
every definition and what differs between MMSA's names and the paper's.

Deliberate differences from MMSA, all documented in ``docs/metrics.md``:
- values are full precision (MMSA rounds the MOSI values to 4 decimals for display);
- ``Corr`` is 0.0 instead of NaN when either array is constant (a correlation with a
  constant is undefined; NaN would poison early stopping, logging and averaging);
- ``Non0_acc_2`` / ``Non0_F1_score`` are NaN when every label is 0 (MMSA crashes);
- non-finite inputs, empty arrays and shape mismatches raise ``MetricInputError``.

Example:
    >>> import numpy as np
    >>> m = compute_metrics("mosi", np.array([-1.0, 0.0, 2.0]), np.array([-1.2, 0.3, 1.6]))
    >>> m["Has0_acc_2"], m["Mult_acc_7"], round(m["MAE"], 4)
    (1.0, 1.0, 0.3)
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from msa_core.constants import FAMILIES

MOSI_METRIC_NAMES = (
    "Has0_acc_2",
    "Has0_F1_score",
    "Non0_acc_2",
    "Non0_F1_score",
    "Mult_acc_5",
    "Mult_acc_7",
    "MAE",
    "Corr",
    "Paper_Acc_2",
    "Paper_Acc_3",
)
SIMS_METRIC_NAMES = (
    "Mult_acc_2",
    "Mult_acc_3",
    "Mult_acc_5",
    "F1_score",
    "MAE",
    "Corr",
    "Paper_Acc_2",
    "Paper_Acc_3",
)

# CH-SIMS bin edges (MMSA): bin i is the right-closed interval (edges[i], edges[i + 1]].
# The outer edges ±1.01 only make the closed range [-1, 1] fall inside the first/last bin.
SIMS_EDGES_2 = (-1.01, 0.0, 1.01)
SIMS_EDGES_3 = (-1.01, -0.1, 0.1, 1.01)
SIMS_EDGES_5 = (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01)


class MetricInputError(ValueError):
    """Raised when labels or predictions cannot be scored (shape, emptiness, NaN, family)."""


def metric_names(family: str) -> tuple[str, ...]:
    """The metric names ``compute_metrics(family, ...)`` returns, in order."""
    return MOSI_METRIC_NAMES if _check_family(family) == "mosi" else SIMS_METRIC_NAMES


def compute_metrics(family: str, y_true, y_pred) -> dict[str, float]:
    """Every metric of a dataset family.

    Args:
        family: "mosi" (CMU-MOSI and CMU-MOSEI, labels in [-3, 3]) or "sims" (CH-SIMS,
            labels in [-1, 1]); ``DatasetInfo.family`` says which applies.
        y_true: labels, shape [N] (or [N, 1]).
        y_pred: regression predictions, same shape as ``y_true``.

    Returns:
        dict name -> Python float, names as ``metric_names(family)``.
    """
    family = _check_family(family)
    if family == "mosi":
        return mosi_metrics(y_true, y_pred)
    return sims_metrics(y_true, y_pred)


def mosi_metrics(y_true, y_pred) -> dict[str, float]:
    """MOSI/MOSEI metrics (MMSA ``__eval_mosei_regression`` plus the paper's Acc_2/Acc_3).

    - ``Has0_acc_2``/``Has0_F1_score``: negative (< 0) vs non-negative (>= 0), all samples.
    - ``Non0_acc_2``/``Non0_F1_score``: samples whose label is exactly 0 dropped, then
      positive (> 0) vs non-positive; NaN when every label is 0.
    - ``Mult_acc_5``/``Mult_acc_7``: labels and predictions clipped to ±2 / ±3, then
      rounded half-to-even (``np.round``), then compared.
    - ``MAE``, ``Corr`` (Pearson): on the unclipped arrays.
    F1 scores are scikit-learn's support-weighted F1.
    """
    true, pred = _validated_pair(y_true, y_pred)
    true64, pred64 = true.astype(np.float64), pred.astype(np.float64)

    has0_true, has0_pred = true64 >= 0, pred64 >= 0
    nonzero = true64 != 0
    if np.any(nonzero):
        non0_true, non0_pred = true64[nonzero] > 0, pred64[nonzero] > 0
        non0_acc = _accuracy(non0_true, non0_pred)
        non0_f1 = _weighted_f1(non0_true, non0_pred)
    else:
        non0_acc = non0_f1 = float("nan")

    return {
        "Has0_acc_2": _accuracy(has0_true, has0_pred),
        "Has0_F1_score": _weighted_f1(has0_true, has0_pred),
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_5": _rounded_class_accuracy(true64, pred64, 2.0),
        "Mult_acc_7": _rounded_class_accuracy(true64, pred64, 3.0),
        "MAE": _mae(true64, pred64),
        "Corr": _pearson(true64, pred64),
        "Paper_Acc_2": paper_acc_2(true64, pred64),
        "Paper_Acc_3": paper_acc_3(true64, pred64),
    }


def sims_metrics(y_true, y_pred) -> dict[str, float]:
    """CH-SIMS metrics (MMSA ``__eval_sims_regression`` plus the paper's Acc_2/Acc_3).

    Labels and predictions are first clipped to [-1, 1]; then

    - ``Mult_acc_2``: bins (-1.01, 0], (0, 1.01]: 0 counts as negative;
    - ``Mult_acc_3``: bins (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01];
    - ``Mult_acc_5``: bins (-1.01, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1.01];
    - ``F1_score``: weighted F1 on the 2 bins;
    - ``MAE``, ``Corr``: on the clipped arrays (as MMSA).

    Edges are compared in each array's own floating dtype, as MMSA's NumPy code does, so a
    float32 label stored as 0.1 lies in (-0.1, 0.1] although float32(0.1) > 0.1 in float64.
    ``Paper_Acc_2``/``Paper_Acc_3`` use the sign (< 0 vs >= 0; negative/zero/positive).
    """
    true, pred = _validated_pair(y_true, y_pred)
    true_c = np.clip(true, -1.0, 1.0)
    pred_c = np.clip(pred, -1.0, 1.0)
    true2, pred2 = sims_bins(true_c, SIMS_EDGES_2), sims_bins(pred_c, SIMS_EDGES_2)
    true64, pred64 = true_c.astype(np.float64), pred_c.astype(np.float64)
    return {
        "Mult_acc_2": _accuracy(true2, pred2),
        "Mult_acc_3": _accuracy(sims_bins(true_c, SIMS_EDGES_3), sims_bins(pred_c, SIMS_EDGES_3)),
        "Mult_acc_5": _accuracy(sims_bins(true_c, SIMS_EDGES_5), sims_bins(pred_c, SIMS_EDGES_5)),
        "F1_score": _weighted_f1(true2, pred2),
        "MAE": _mae(true64, pred64),
        "Corr": _pearson(true64, pred64),
        "Paper_Acc_2": paper_acc_2(true64, pred64),
        "Paper_Acc_3": paper_acc_3(true64, pred64),
    }


def unimodal_accuracy(family: str, y_true, y_pred) -> float:
    """Binary accuracy that ranks unimodal heads for the key-modality choice.

    ``Has0_acc_2`` for "mosi", ``Mult_acc_2`` for "sims" (the same values
    ``compute_metrics`` reports under those names).
    """
    family = _check_family(family)
    true, pred = _validated_pair(y_true, y_pred)
    if family == "mosi":
        return _accuracy(true >= 0, pred >= 0)
    true_c, pred_c = np.clip(true, -1.0, 1.0), np.clip(pred, -1.0, 1.0)
    return _accuracy(sims_bins(true_c, SIMS_EDGES_2), sims_bins(pred_c, SIMS_EDGES_2))


def paper_acc_2(y_true, y_pred) -> float:
    """The M³SA paper's Acc_2: negative (< 0) vs non-negative (>= 0)."""
    true, pred = _validated_pair(y_true, y_pred)
    return _accuracy(true >= 0, pred >= 0)


def paper_acc_3(y_true, y_pred) -> float:
    """The M³SA paper's Acc_3: negative / zero / positive by sign, exact zero is neutral."""
    true, pred = _validated_pair(y_true, y_pred)
    return _accuracy(np.sign(true), np.sign(pred))


def sims_bins(values: np.ndarray, edges) -> np.ndarray:
    """Index i of the right-closed bin (edges[i], edges[i + 1]] holding each value.

    Edges are cast to ``values``' dtype first (MMSA compares a float32 array with Python
    floats, which NumPy evaluates in float32). Values outside (edges[0], edges[-1]] raise.
    """
    values = np.asarray(values)
    edges = np.asarray(edges, dtype=values.dtype if values.dtype.kind == "f" else np.float64)
    # searchsorted(side="left") returns j with edges[j-1] < v <= edges[j]: right-closed bins.
    index = np.searchsorted(edges, values, side="left") - 1
    outside = (index < 0) | (index >= len(edges) - 1)
    if np.any(outside):
        raise MetricInputError(
            f"values {values[outside][:5].tolist()} lie outside the bins "
            f"({float(edges[0])}, {float(edges[-1])}]"
        )
    return index


def _check_family(family) -> str:
    if family not in FAMILIES:
        raise MetricInputError(
            f"unknown metric family {family!r}; expected one of {FAMILIES} "
            "(MOSEI and the synthetic MOSI/MOSEI use 'mosi': DatasetInfo.family says which)"
        )
    return family


def _as_float_vector(values, name: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except Exception as error:  # e.g. ragged nested lists
        raise MetricInputError(f"{name} is not array-like: {error}") from None
    if array.dtype.kind not in "iuf":
        raise MetricInputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # Keras regression heads often emit [N, 1]
    if array.ndim != 1:
        raise MetricInputError(
            f"{name} must have shape [N] or [N, 1], got {list(np.shape(values))}"
        )
    if array.size == 0:
        raise MetricInputError(f"{name} is empty; metrics need at least one sample")
    bad = ~np.isfinite(array)
    if np.any(bad):
        positions = np.flatnonzero(bad)
        raise MetricInputError(
            f"{name} has {positions.size} non-finite value(s) (NaN or inf), first at index "
            f"{int(positions[0])}: {array[positions[0]]}; expected finite numbers"
        )
    return array


def _validated_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    true = _as_float_vector(y_true, "y_true")
    pred = _as_float_vector(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise MetricInputError(
            f"y_true has {true.shape[0]} samples but y_pred has {pred.shape[0]}; "
            "expected one prediction per label"
        )
    return true, pred


def _accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(true == pred))


def _weighted_f1(true: np.ndarray, pred: np.ndarray) -> float:
    # zero_division=0 gives sklearn's default value without its warning.
    return float(f1_score(true, pred, average="weighted", zero_division=0))


def _rounded_class_accuracy(true: np.ndarray, pred: np.ndarray, clip_value: float) -> float:
    true_class = np.round(np.clip(true, -clip_value, clip_value))
    pred_class = np.round(np.clip(pred, -clip_value, clip_value))
    return _accuracy(true_class, pred_class)


def _mae(true: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - true)))


def _pearson(true: np.ndarray, pred: np.ndarray) -> float:
    """Pearson correlation as ``np.corrcoef``; 0.0 when either array is constant."""
    if np.ptp(true) == 0.0 or np.ptp(pred) == 0.0:
        return 0.0
    return float(np.corrcoef(pred, true)[0, 1])
