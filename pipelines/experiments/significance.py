"""Is a cell's difference from the reference cell larger than noise? Seeds and test clips.

An experiment trains several cells (e.g. M³SA with and without multi-scale) over a few
seeds and scores each on the same test clips. Two kinds of noise can fake a difference,
and each tool here measures one of them:

- ``paired_seed_test``: TRAINING noise. Each seed gives every cell one value of a metric;
  a paired two-sided t-test over seeds (``scipy.stats.ttest_rel``) asks whether the
  difference would survive retraining with other initialisations, shuffles and dropout
  masks. It says nothing about the test set: every seed is scored on the same clips.
- ``bootstrap_difference``: TEST-SET sampling noise. A paired bootstrap over the test
  clips (the same resampled clips for both cells and every seed) asks whether the
  difference would survive a different draw of test clips from the same distribution.
  It averages over the seeds it is given, so it does not see training noise.

``verdict`` therefore calls a cell "better" or "worse" than the reference only when BOTH
agree: the seed test's p-value is below ``alpha`` AND the clip bootstrap's interval
excludes 0, on the same side as the seeds' mean difference (``higher_is_better`` says
which side is an improvement: only ``MAE`` is lower-is-better). Anything else is "n.s.".
A difference that is stable over seeds but rests on a handful of clips, or that holds
over clips for one lucky set of seeds, is not reported as a finding. With 2–5 seeds the
t-test has 1–4 degrees of freedom and little power, so "n.s." often means "too few
seeds", not "no effect". When several cells are compared with one reference, correct the
seed p-values of one metric with ``holm_adjust`` first and pass the adjusted value, e.g.
``verdict({**test, "p_value": adjusted}, interval)``.

Example (two seeds per cell, six test clips; cheap and deterministic):
    >>> import numpy as np
    >>> labels = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])
    >>> reference = np.array([[0.3, -0.2, 0.4, -0.1, 0.2, -0.3],
    ...                       [-0.1, 0.2, -0.3, 0.1, -0.4, 0.3]])
    >>> other = labels + np.array([[0.1], [-0.1]])
    >>> interval = bootstrap_difference(labels, reference, other, "MAE", "mosi",
    ...                                 n_resamples=200)
    >>> round(interval["difference"], 4), interval["high"] < 0
    (-1.1083, True)
    >>> test = paired_seed_test([0.80, 0.81, 0.79], [0.83, 0.85, 0.82])
    >>> round(test["t"], 3), round(test["p_value"], 4)
    (10.0, 0.0099)
    >>> verdict(test, {"low": 0.01, "high": 0.05, "metric": "Has0_acc_2"})
    'better'
    >>> holm_adjust([0.01, None, 0.04])
    [0.02, None, 0.04]
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.stats

from msa_core import metrics as msa_metrics

__all__ = [
    "bootstrap_difference",
    "higher_is_better",
    "holm_adjust",
    "metric_on_resamples",
    "paired_seed_test",
    "verdict",
]

# Differences that agree to this fraction of the inputs' magnitude are "all identical":
# 0.83 - 0.80 and 0.84 - 0.81 differ by rounding only and must not give a huge t.
_IDENTICAL_RTOL = 1e-12
# Resample rows processed at once for the correlation, bounding the [rows, N] temporaries.
_CORR_CHUNK_ELEMENTS = 2_000_000


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of a protocol metric is an improvement.

    Args:
        metric: a name of ``msa_core.metrics.metric_names(family)``.

    Returns:
        False for ``MAE`` (an error), True for every accuracy, F1 score and ``Corr``.
    """
    return metric != "MAE"


def paired_seed_test(reference: Sequence[float], other: Sequence[float]) -> Dict[str, Any]:
    """Paired two-sided t-test over seeds of one metric: is ``other`` different?

    ``t`` and ``p_value`` are those of ``scipy.stats.ttest_rel(other, reference)``, so a
    positive ``t`` means ``other`` is larger. Degenerate cases, where scipy gives NaN or
    nothing, are defined here:

    - one seed (n = 1): ``t`` and ``p_value`` are None (no variance to test against);
    - every difference identical (zero variance, up to float rounding of the inputs):
      all 0 gives ``t`` 0.0 and ``p_value`` 1.0 (nothing differs); any other common value
      gives ``t`` ±inf and ``p_value`` 0.0 (scipy's own result for exactly equal ones).

    Args:
        reference: the reference cell's metric values, one per seed.
        other: the other cell's values for the SAME seeds in the same order.

    Returns:
        {"n": number of seeds, "mean_difference": mean of other - reference,
        "t": float or None, "p_value": float or None}.

    Raises:
        ValueError: empty or unequal-length inputs, not 1-D, or a NaN/inf value.
    """
    ref = _seed_values(reference, "reference")
    oth = _seed_values(other, "other")
    if ref.shape != oth.shape:
        raise ValueError(
            f"reference has {ref.size} seed value(s) but other has {oth.size}; the test "
            "pairs them by seed, so both need the same seeds in the same order"
        )
    if ref.size == 0:
        raise ValueError("no seed values: the paired test needs at least one seed per cell")
    differences = oth - ref
    result: Dict[str, Any] = {
        "n": int(differences.size),
        "mean_difference": float(np.mean(differences)),
        "t": None,
        "p_value": None,
    }
    if differences.size < 2:
        return result
    scale = max(1.0, float(np.max(np.abs(np.concatenate([ref, oth])))))
    tolerance = _IDENTICAL_RTOL * scale
    if np.ptp(differences) <= tolerance:
        # Zero variance: scipy divides 0 by 0 (NaN) or d by 0 (±inf, p 0.0).
        common = float(np.mean(differences))
        if abs(common) <= tolerance:
            result.update(t=0.0, p_value=1.0)
        else:
            result.update(t=math.copysign(math.inf, common), p_value=0.0)
        return result
    test = scipy.stats.ttest_rel(oth, ref)
    result.update(t=float(test.statistic), p_value=float(test.pvalue))
    return result


def holm_adjust(p_values: Sequence[Optional[float]]) -> List[Optional[float]]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    The i-th smallest of m p-values is multiplied by (m - i + 1), capped at 1, and made
    non-decreasing in that order (step-down); rejecting where the adjusted value is below
    alpha controls the family-wise error rate at alpha.

    Args:
        p_values: p-values in [0, 1]; None entries (a test that could not run, e.g. one
            seed) are passed through as None and do not count in m.

    Returns:
        list of adjusted p-values (or None), same length and order as ``p_values``.

    Raises:
        ValueError: a p-value that is NaN or outside [0, 1].
    """
    present: List[Tuple[int, float]] = []
    for position, value in enumerate(p_values):
        if value is None:
            continue
        value = float(value)
        if not 0.0 <= value <= 1.0:  # also catches NaN
            raise ValueError(f"p-value {value} at position {position} is not in [0, 1]")
        present.append((position, value))
    adjusted: List[Optional[float]] = [None] * len(p_values)
    m = len(present)
    running = 0.0
    # sorted() is stable, so tied p-values keep their input order (the values agree anyway).
    for rank, (position, value) in enumerate(sorted(present, key=lambda item: item[1])):
        running = max(running, min(1.0, (m - rank) * value))
        adjusted[position] = running
    return adjusted


def verdict(test: Dict[str, Any], interval: Dict[str, Any], alpha: float = 0.05) -> str:
    """The summary table's word for one cell against the reference on one metric.

    Args:
        test: ``paired_seed_test``'s dict (its ``p_value`` may be replaced by a
            ``holm_adjust``-ed one).
        interval: ``bootstrap_difference``'s dict (``low``, ``high`` and ``metric`` are read).
        alpha: significance level of the seed test.

    Returns:
        "better" or "worse" when the seed test's p-value is below ``alpha`` AND the
        bootstrap interval excludes 0 on the same side as the seeds' mean difference
        (direction by ``higher_is_better(interval["metric"])``); "n.s." otherwise, also
        when the p-value is None or the interval NaN.
    """
    p_value = test.get("p_value")
    if p_value is None or not p_value < alpha:
        return "n.s."
    low, high = float(interval["low"]), float(interval["high"])
    if low > 0:
        clips_say = 1.0
    elif high < 0:
        clips_say = -1.0
    else:  # the interval holds 0, or is NaN
        return "n.s."
    if np.sign(test["mean_difference"]) != clips_say:
        return "n.s."  # seeds and clips disagree on the direction: no finding
    improved = (clips_say > 0) == higher_is_better(interval["metric"])
    return "better" if improved else "worse"


def bootstrap_difference(
    labels,
    reference_predictions,
    other_predictions,
    metric: str,
    family: str,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Dict[str, Any]:
    """Paired bootstrap over test clips of (other cell - reference cell) on one metric.

    Each resample draws N clip indices with replacement; the draws are
    ``np.random.default_rng(seed).integers(0, N, size=(n_resamples, N))``, one row per
    resample, and the SAME row is used for both cells and every seed (pairing removes
    the clips' shared difficulty from the noise). On a resample the metric is computed
    for each seed's predictions exactly as ``msa_core.metrics.compute_metrics`` defines
    it, averaged over that cell's seeds, and the reference's average is subtracted from
    the other's. The metrics are vectorised over resamples (a clip-count matrix), which
    makes 1000 resamples of 700 clips and 3 + 3 seeds take well under a second.

    A resample on which a ``Non0_*`` metric is undefined (it drew only 0 labels) is left
    out of the percentiles; if every one is, ``low`` and ``high`` are NaN.

    Args:
        labels: test labels, shape [N].
        reference_predictions: the reference cell's predictions, [S_ref, N] (one row per
            seed, clips aligned with ``labels``); a [N] array is one seed.
        other_predictions: the other cell's predictions, [S_other, N], same clips.
        metric: a name of ``msa_core.metrics.metric_names(family)``.
        family: "mosi" or "sims" (``DatasetInfo.family``).
        n_resamples: number of bootstrap resamples.
        confidence: coverage of the percentile interval, in (0, 1).
        seed: seed of the resampling generator.

    Returns:
        {"difference": the seed-averaged difference on the full test set (no
        resampling; computed with ``msa_core.metrics``), "low", "high": the percentile
        interval of the resampled differences at ``confidence``, "n_resamples",
        "confidence", "metric"}.

    Raises:
        ValueError: unknown family or metric (the message lists the known metrics),
            mismatched shapes, non-finite values, bad ``n_resamples``/``confidence``.
    """
    _check_metric(family, metric)
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    true = _label_vector(labels)
    reference_rows = _prediction_rows(reference_predictions, "reference_predictions", true.size)
    other_rows = _prediction_rows(other_predictions, "other_predictions", true.size)

    # The headline number comes from the protocol's own code, so that it is the value the
    # results tables report; this also validates every row (finite, non-empty).
    def full_set(rows: List[np.ndarray]) -> float:
        return float(np.mean([msa_metrics.compute_metrics(family, true, row)[metric] for row in rows]))

    difference = full_set(other_rows) - full_set(reference_rows)

    indices = np.random.default_rng(seed).integers(0, true.size, size=(n_resamples, true.size))
    counts = _clip_counts(indices, true.size)

    def resampled(rows: List[np.ndarray]) -> np.ndarray:
        return np.mean(
            [_metric_from_counts(family, metric, true, row, indices, counts) for row in rows],
            axis=0,
        )

    differences = resampled(other_rows) - resampled(reference_rows)
    tail = 100.0 * (1.0 - confidence) / 2.0
    if np.all(np.isnan(differences)):
        low = high = float("nan")
    else:
        low, high = (float(v) for v in np.nanpercentile(differences, [tail, 100.0 - tail]))
    return {
        "difference": difference,
        "low": low,
        "high": high,
        "n_resamples": int(n_resamples),
        "confidence": float(confidence),
        "metric": metric,
    }


def metric_on_resamples(family: str, metric: str, labels, predictions, indices) -> np.ndarray:
    """One seed's metric on many resamples of the clips at once (vectorised).

    Row r of the result equals
    ``compute_metrics(family, labels[indices[r]], predictions[indices[r]])[metric]``
    (to float rounding; accuracies exactly).

    Args:
        family: "mosi" or "sims".
        metric: a name of ``msa_core.metrics.metric_names(family)``.
        labels: test labels, shape [N].
        predictions: one seed's predictions, shape [N].
        indices: integer clip indices in [0, N), shape [R, N] (one resample per row).

    Returns:
        float64 array [R].
    """
    _check_metric(family, metric)
    true = _label_vector(labels)
    rows = _prediction_rows(predictions, "predictions", true.size)
    if len(rows) != 1 or np.ndim(predictions) != 1:
        raise ValueError(f"predictions must be one seed's vector [{true.size}], got {list(np.shape(predictions))}")
    pred = rows[0]
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != true.size or indices.dtype.kind not in "iu":
        raise ValueError(
            f"indices must be integers of shape [R, {true.size}], got {indices.dtype} "
            f"{list(indices.shape)}"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= true.size):
        raise ValueError(f"indices must lie in [0, {true.size})")
    return _metric_from_counts(family, metric, true, pred, indices, _clip_counts(indices, true.size))


# --- helpers ---------------------------------------------------------------------------


def _check_metric(family: str, metric: str) -> None:
    names = msa_metrics.metric_names(family)  # raises MetricInputError on a bad family
    if metric not in names:
        raise ValueError(
            f"unknown metric {metric!r} for family {family!r}; known: {', '.join(names)}"
        )


def _seed_values(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of per-seed values, got shape {list(array.shape)}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{name} has a non-finite value (NaN or inf) at seed position {int(bad[0])}: "
            f"{array[bad[0]]}; a failed or diverged run must be rerun or dropped from both cells"
        )
    return array


def _as_real(values, name: str) -> np.ndarray:
    # Same conversion as msa_core.metrics: integers become float64, floats keep their
    # dtype (the CH-SIMS bin edges are compared in the array's own dtype).
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        array = array.astype(np.float64)
    if array.dtype.kind != "f":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def _label_vector(labels) -> np.ndarray:
    true = _as_real(labels, "labels")
    if true.ndim == 2 and true.shape[1] == 1:
        true = true[:, 0]
    if true.ndim != 1 or true.size == 0:
        raise ValueError(f"labels must have shape [N] with N >= 1, got {list(true.shape)}")
    if not np.all(np.isfinite(true)):
        raise ValueError("labels hold non-finite values (NaN or inf)")
    return true


def _prediction_rows(predictions, name: str, n_clips: int) -> List[np.ndarray]:
    array = _as_real(predictions, name)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != n_clips:
        raise ValueError(
            f"{name} must have shape [seeds, {n_clips}] (one row per seed, clips aligned "
            f"with labels), got {list(array.shape)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} hold non-finite values (NaN or inf)")
    return list(array)


def _clip_counts(indices: np.ndarray, n_clips: int) -> np.ndarray:
    """How often each clip is drawn in each resample: float64 [R, N], rows sum to N."""
    n_rows = indices.shape[0]
    flat = (indices + n_clips * np.arange(n_rows)[:, None]).ravel()
    return np.bincount(flat, minlength=n_rows * n_clips).reshape(n_rows, n_clips).astype(np.float64)


def _per_clip_terms(family: str, metric: str, true: np.ndarray, pred: np.ndarray):
    """What each clip contributes to ``metric``, computed exactly as msa_core.metrics does.

    Returns one of
    ("accuracy", correct [N] bool, mask [N] bool or None),
    ("f1", true class [N] bool, predicted class [N] bool, mask or None),
    ("mae", absolute error [N] float64), ("corr", predictions [N], labels [N] float64).
    """
    if family == "mosi":
        t, p = true.astype(np.float64), pred.astype(np.float64)
    else:
        # CH-SIMS clips both arrays first; bins use the clipped arrays in their own dtype.
        true_c, pred_c = np.clip(true, -1.0, 1.0), np.clip(pred, -1.0, 1.0)
        t, p = true_c.astype(np.float64), pred_c.astype(np.float64)
        sims_bins = msa_metrics.sims_bins
        edges = {
            "Mult_acc_2": msa_metrics.SIMS_EDGES_2,
            "Mult_acc_3": msa_metrics.SIMS_EDGES_3,
            "Mult_acc_5": msa_metrics.SIMS_EDGES_5,
        }
        if metric in edges:
            return ("accuracy", sims_bins(true_c, edges[metric]) == sims_bins(pred_c, edges[metric]), None)
        if metric == "F1_score":
            return (
                "f1",
                sims_bins(true_c, msa_metrics.SIMS_EDGES_2) == 1,
                sims_bins(pred_c, msa_metrics.SIMS_EDGES_2) == 1,
                None,
            )
    if metric in ("Has0_acc_2", "Paper_Acc_2"):
        return ("accuracy", (t >= 0) == (p >= 0), None)
    if metric == "Paper_Acc_3":
        return ("accuracy", np.sign(t) == np.sign(p), None)
    if metric == "Has0_F1_score":
        return ("f1", t >= 0, p >= 0, None)
    if metric == "Non0_acc_2":
        return ("accuracy", (t > 0) == (p > 0), t != 0)
    if metric == "Non0_F1_score":
        return ("f1", t > 0, p > 0, t != 0)
    if metric in ("Mult_acc_5", "Mult_acc_7"):
        bound = 2.0 if metric == "Mult_acc_5" else 3.0
        return ("accuracy", np.round(np.clip(t, -bound, bound)) == np.round(np.clip(p, -bound, bound)), None)
    if metric == "MAE":
        return ("mae", np.abs(p - t))
    if metric == "Corr":
        return ("corr", p, t)
    raise ValueError(f"no vectorised form of metric {metric!r}")  # metric_names grew


def _metric_from_counts(
    family: str,
    metric: str,
    true: np.ndarray,
    pred: np.ndarray,
    indices: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """``metric`` on every resample; counts[r, i] = times clip i is drawn in resample r.

    Every metric is a function of sums over the drawn clips, and a sum over a resample
    is counts @ per-clip value: one matrix-vector product for all resamples.
    """
    terms = _per_clip_terms(family, metric, true, pred)
    kind, n_clips = terms[0], true.size
    if kind == "accuracy":
        _, correct, mask = terms
        if mask is None:
            return (counts @ correct.astype(np.float64)) / n_clips
        return _safe_ratio(counts @ (correct & mask).astype(np.float64), counts @ mask.astype(np.float64))
    if kind == "f1":
        _, t, p, mask = terms
        mask = np.ones(n_clips, dtype=bool) if mask is None else mask
        return _weighted_binary_f1(counts, t & mask, p & mask, mask)
    if kind == "mae":
        return (counts @ terms[1]) / n_clips
    return _weighted_pearson(terms[1], terms[2], indices, counts)


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # NaN where nothing was counted: msa_core's Non0 metrics are NaN without nonzero labels.
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _weighted_binary_f1(counts: np.ndarray, t: np.ndarray, p: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """scikit-learn's support-weighted F1 of a two-class problem, per resample.

    Per class c: F1_c = 2 tp_c / (support_c + predicted_c) (0 when both are 0, as
    ``zero_division=0``); weighted by support_c / n. A class absent from the labels has
    weight 0, which is what scikit-learn's weighting gives it too.
    """
    as_float = lambda values: values.astype(np.float64)  # noqa: E731
    n = counts @ as_float(mask)
    support_1, predicted_1 = counts @ as_float(t), counts @ as_float(p)
    tp_1 = counts @ as_float(t & p)
    tp_0 = counts @ as_float(mask & ~t & ~p)
    support_0, predicted_0 = n - support_1, n - predicted_1
    f1_1 = _zero_ratio(2.0 * tp_1, support_1 + predicted_1)
    f1_0 = _zero_ratio(2.0 * tp_0, support_0 + predicted_0)
    return _safe_ratio(support_0 * f1_0 + support_1 * f1_1, n)


def _zero_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(numerator.shape)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _weighted_pearson(x: np.ndarray, y: np.ndarray, indices: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pearson correlation of the drawn (x, y) pairs per resample; 0.0 where either is
    constant on the resample (msa_core's convention)."""
    n_rows, n_clips = counts.shape
    out = np.empty(n_rows)
    chunk = max(1, _CORR_CHUNK_ELEMENTS // n_clips)
    for start in range(0, n_rows, chunk):
        c = counts[start:start + chunk]
        # Two-pass (centred) sums like np.corrcoef, not raw moments, to avoid cancellation.
        dx = x[None, :] - ((c @ x) / n_clips)[:, None]
        dy = y[None, :] - ((c @ y) / n_clips)[:, None]
        sxy = np.einsum("rn,rn->r", c * dx, dy)
        sxx = np.einsum("rn,rn->r", c * dx, dx)
        syy = np.einsum("rn,rn->r", c * dy, dy)
        # Constancy from the drawn values themselves (np.ptp == 0 in msa_core): the
        # centred sums of a constant sample need not be exactly 0 after rounding.
        drawn_x, drawn_y = x[indices[start:start + chunk]], y[indices[start:start + chunk]]
        constant = (np.ptp(drawn_x, axis=1) == 0.0) | (np.ptp(drawn_y, axis=1) == 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = sxy / (np.sqrt(sxx) * np.sqrt(syy))
        out[start:start + chunk] = np.where(constant, 0.0, np.clip(r, -1.0, 1.0))
    return out
