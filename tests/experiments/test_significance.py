"""Significance of a cell's difference from the reference cell (pipelines.experiments.significance).

The seed test must be scipy's paired t-test with its degenerate cases defined; the clip
bootstrap must be exactly the protocol's metrics (msa_core.metrics) on the resampled
clips, only faster; and a cell is "better"/"worse" only when seeds and clips agree.
"""

import math

import numpy as np
import pytest
import scipy.stats

from msa_core.metrics import compute_metrics, metric_names
from pipelines.experiments.significance import (
    bootstrap_difference,
    higher_is_better,
    holm_adjust,
    metric_on_resamples,
    paired_seed_test,
    verdict,
)

FAMILIES = ("mosi", "sims")


def clips(family, n, seed, n_seeds=(2, 1)):
    """Labels and per-seed predictions like a real test set: exact 0 labels, labels on
    the rounding and bin edges, predictions that are sometimes exactly 0."""
    rng = np.random.default_rng(seed)
    if family == "mosi":
        labels = np.round(rng.uniform(-3, 3, n) * 2) / 2  # steps of 0.5: zeros, .5 ties
        scale = 1.0
    else:
        labels = rng.choice([-1.0, -0.8, -0.2, -0.1, 0.0, 0.1, 0.2, 0.6, 1.0], n)
        scale = 1.0 / 3.0
    rows = []
    for s in n_seeds:
        predictions = labels + rng.normal(0, scale, (s, n))
        predictions[:, ::7] = 0.0
        rows.append(predictions)
    return labels, rows[0], rows[1]


def mean_metric(family, metric, labels, rows):
    return float(np.mean([compute_metrics(family, labels, row)[metric] for row in rows]))


# --- paired_seed_test --------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5])
def test_paired_seed_test_is_scipy_ttest_rel_of_other_minus_reference(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        reference = rng.uniform(0.7, 0.9, n)
        other = reference + rng.normal(0.01, 0.02, n)
        expected = scipy.stats.ttest_rel(other, reference)
        result = paired_seed_test(list(reference), list(other))
        assert result["n"] == n
        assert result["mean_difference"] == pytest.approx(np.mean(other - reference), abs=1e-15)
        assert result["t"] == pytest.approx(float(expected.statistic), rel=1e-12)
        assert result["p_value"] == pytest.approx(float(expected.pvalue), rel=1e-12)


def test_paired_seed_test_positive_t_means_other_is_larger():
    result = paired_seed_test([0.80, 0.81, 0.79], [0.83, 0.85, 0.82])
    assert result["t"] > 0 and result["mean_difference"] > 0


def test_one_seed_has_a_difference_but_no_test():
    assert paired_seed_test([0.8], [0.9]) == {
        "n": 1, "mean_difference": pytest.approx(0.1), "t": None, "p_value": None,
    }


def test_identical_cells_are_not_different():
    result = paired_seed_test([0.8, 0.7, 0.9], [0.8, 0.7, 0.9])
    assert (result["t"], result["p_value"], result["mean_difference"]) == (0.0, 1.0, 0.0)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy's, on constant data
def test_a_constant_nonzero_difference_is_infinitely_significant_as_in_scipy():
    up = paired_seed_test([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    down = paired_seed_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert (up["t"], up["p_value"]) == (math.inf, 0.0)
    assert (down["t"], down["p_value"]) == (-math.inf, 0.0)
    scipy_up = scipy.stats.ttest_rel([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert (float(scipy_up.statistic), float(scipy_up.pvalue)) == (math.inf, 0.0)


def test_differences_equal_up_to_float_rounding_count_as_constant():
    # 0.83 - 0.80 != 0.84 - 0.81 in floating point; scipy would report a huge finite t.
    result = paired_seed_test([0.80, 0.81, 0.82], [0.83, 0.84, 0.85])
    assert (result["t"], result["p_value"]) == (math.inf, 0.0)
    assert paired_seed_test([0.1 + 0.2, 0.3], [0.3, 0.1 + 0.2])["p_value"] == 1.0


@pytest.mark.parametrize(
    "reference, other, message",
    [
        ([0.8, float("nan")], [0.8, 0.9], "reference has a non-finite value"),
        ([0.8, 0.9], [0.8, float("inf")], "other has a non-finite value"),
        ([0.8, 0.9, 0.7], [0.8, 0.9], "same seeds"),
        ([], [], "at least one seed"),
        ([[0.8, 0.9]], [[0.8, 0.9]], "1-D"),
    ],
)
def test_paired_seed_test_rejects_bad_inputs_naming_the_problem(reference, other, message):
    with pytest.raises(ValueError, match=message):
        paired_seed_test(reference, other)


# --- bootstrap_difference ----------------------------------------------------------------


def test_bootstrap_is_reproducible_with_the_same_seed_and_varies_with_another():
    labels, reference, other = clips("mosi", 60, 1)
    first = bootstrap_difference(labels, reference, other, "Has0_acc_2", "mosi", n_resamples=300, seed=7)
    again = bootstrap_difference(labels, reference, other, "Has0_acc_2", "mosi", n_resamples=300, seed=7)
    elsewhere = bootstrap_difference(labels, reference, other, "Has0_acc_2", "mosi", n_resamples=300, seed=8)
    assert first == again
    assert (first["low"], first["high"]) != (elsewhere["low"], elsewhere["high"])
    assert first["difference"] == elsewhere["difference"]
    assert set(first) == {"difference", "low", "high", "n_resamples", "confidence", "metric"}
    assert (first["n_resamples"], first["confidence"], first["metric"]) == (300, 0.95, "Has0_acc_2")


@pytest.mark.parametrize("family", FAMILIES)
def test_difference_is_the_protocol_metric_of_other_minus_reference_averaged_over_seeds(family):
    labels, reference, other = clips(family, 80, 2, n_seeds=(3, 2))
    for metric in metric_names(family):
        result = bootstrap_difference(labels, reference, other, metric, family, n_resamples=5)
        expected = mean_metric(family, metric, labels, other) - mean_metric(family, metric, labels, reference)
        assert result["difference"] == expected, metric


def slow_bootstrap(family, labels, reference, other, n_resamples, seed):
    """The definition, the long way: loop over resamples calling msa_core.metrics."""
    indices = np.random.default_rng(seed).integers(0, labels.size, size=(n_resamples, labels.size))
    differences = {name: [] for name in metric_names(family)}
    for row in indices:
        per_cell = []
        for predictions in (reference, other):
            values = [compute_metrics(family, labels[row], p[row]) for p in predictions]
            per_cell.append({name: np.mean([v[name] for v in values]) for name in differences})
        for name in differences:
            differences[name].append(per_cell[1][name] - per_cell[0][name])
    return {name: np.asarray(values) for name, values in differences.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_interval_matches_a_slow_loop_over_resamples_with_the_same_draws(family):
    labels, reference, other = clips(family, 40, 3)
    slow = slow_bootstrap(family, labels, reference, other, n_resamples=150, seed=11)
    for metric in metric_names(family):
        result = bootstrap_difference(
            labels, reference, other, metric, family, n_resamples=150, confidence=0.9, seed=11
        )
        low, high = np.nanpercentile(slow[metric], [5.0, 95.0])
        assert result["low"] == pytest.approx(low, abs=1e-9), metric
        assert result["high"] == pytest.approx(high, abs=1e-9), metric


@pytest.mark.parametrize("family", FAMILIES)
def test_same_predictions_give_exactly_a_zero_interval(family):
    labels, reference, _ = clips(family, 50, 4)
    for metric in metric_names(family):
        result = bootstrap_difference(labels, reference, reference.copy(), metric, family, n_resamples=100)
        assert (result["difference"], result["low"], result["high"]) == (0.0, 0.0, 0.0), metric


def test_a_clearly_better_cell_has_an_interval_on_the_improving_side():
    rng = np.random.default_rng(5)
    labels = rng.uniform(-3, 3, 300)
    good = labels + rng.normal(0, 0.3, (3, 300))
    noise = rng.uniform(-3, 3, (3, 300))
    accuracy = bootstrap_difference(labels, noise, good, "Has0_acc_2", "mosi", n_resamples=500)
    mae = bootstrap_difference(labels, noise, good, "MAE", "mosi", n_resamples=500)
    assert 0 < accuracy["low"] <= accuracy["difference"] <= accuracy["high"]
    assert mae["low"] <= mae["difference"] <= mae["high"] < 0
    # Swapping the cells mirrors the interval.
    swapped = bootstrap_difference(labels, good, noise, "Has0_acc_2", "mosi", n_resamples=500)
    assert swapped["high"] == pytest.approx(-accuracy["low"]) and swapped["high"] < 0


def test_a_single_seed_may_be_given_as_a_vector():
    labels, reference, other = clips("sims", 30, 7, n_seeds=(1, 1))
    as_rows = bootstrap_difference(labels, reference, other, "MAE", "sims", n_resamples=50)
    as_vectors = bootstrap_difference(labels, reference[0], other[0], "MAE", "sims", n_resamples=50)
    assert as_rows == as_vectors


def test_bootstrap_rejects_bad_inputs():
    labels, reference, other = clips("mosi", 20, 8)
    with pytest.raises(ValueError, match="unknown metric 'Mult_acc_3'.*known: Has0_acc_2, Has0_F1_score"):
        bootstrap_difference(labels, reference, other, "Mult_acc_3", "mosi")
    with pytest.raises(ValueError, match="unknown metric family"):
        bootstrap_difference(labels, reference, other, "MAE", "iemocap")
    with pytest.raises(ValueError, match=r"other_predictions must have shape \[seeds, 20\]"):
        bootstrap_difference(labels, reference, other[:, :19], "MAE", "mosi")
    bad = reference.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_difference(labels, bad, other, "MAE", "mosi")
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_difference(labels, reference, other, "MAE", "mosi", confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_difference(labels, reference, other, "MAE", "mosi", n_resamples=0)


# --- the vectorised metrics --------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorised_metrics_equal_msa_core_on_random_resamples(family, dtype):
    labels, reference, _ = clips(family, 30, 9)
    labels, predictions = labels.astype(dtype), reference[0].astype(dtype)
    indices = np.random.default_rng(10).integers(0, 30, size=(15, 30))
    # Edge resamples: one clip drawn 30 times (constant: Corr is 0.0) and, on MOSI, only
    # 0-label clips (Non0 metrics are NaN).
    zero = np.flatnonzero(labels == 0)
    assert zero.size, "the data must hold a 0 label for the Non0 edge case"
    indices = np.vstack([indices, np.full(30, 3), np.resize(zero, 30)])
    for metric in metric_names(family):
        fast = metric_on_resamples(family, metric, labels, predictions, indices)
        slow = np.array([compute_metrics(family, labels[row], predictions[row])[metric] for row in indices])
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12, equal_nan=True, err_msg=metric)
        if metric.startswith(("Has0_acc", "Non0_acc", "Mult_acc", "Paper_Acc")):
            np.testing.assert_array_equal(fast, slow, err_msg=metric)  # accuracies exactly


def test_sims_labels_on_a_bin_edge_keep_their_own_dtype():
    # float32(0.1) > 0.1 in float64, but msa_core (as MMSA) bins it into (-0.1, 0.1].
    labels = np.array([0.1, -0.1, 0.7, 0.5], dtype=np.float32)
    predictions = np.array([0.05, -0.5, 0.69, 0.5], dtype=np.float32)
    indices = np.array([[0, 1, 2, 3], [0, 0, 0, 3]])
    for metric in ("Mult_acc_3", "Mult_acc_5"):
        fast = metric_on_resamples("sims", metric, labels, predictions, indices)
        slow = [compute_metrics("sims", labels[r], predictions[r])[metric] for r in indices]
        assert list(fast) == slow


# --- holm_adjust, higher_is_better, verdict ----------------------------------------------


def test_holm_adjust_matches_a_hand_computed_example():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04).
    adjusted = holm_adjust([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_adjust_passes_none_through_caps_at_one_and_rejects_nan():
    assert holm_adjust([None, 0.6, None, 0.2]) == [None, pytest.approx(0.6), None, pytest.approx(0.4)]
    assert holm_adjust([0.7, 0.9]) == [1.0, 1.0]
    assert holm_adjust([]) == []
    assert holm_adjust([None]) == [None]
    with pytest.raises(ValueError, match="not in"):
        holm_adjust([0.1, float("nan")])


def test_only_mae_is_lower_is_better():
    assert not higher_is_better("MAE")
    assert all(higher_is_better(m) for f in FAMILIES for m in metric_names(f) if m != "MAE")


def test_verdict_needs_both_the_seed_test_and_the_clip_interval():
    significant_up = {"n": 3, "mean_difference": 0.02, "t": 8.0, "p_value": 0.01}
    interval_up = {"low": 0.01, "high": 0.03, "metric": "Has0_acc_2"}
    assert verdict(significant_up, interval_up) == "better"
    # Either one alone is not enough.
    assert verdict({**significant_up, "p_value": 0.2}, interval_up) == "n.s."
    assert verdict(significant_up, {**interval_up, "low": -0.01}) == "n.s."
    assert verdict({**significant_up, "p_value": None}, interval_up) == "n.s."
    assert verdict(significant_up, {**interval_up, "low": float("nan"), "high": float("nan")}) == "n.s."
    # The level is alpha, strictly.
    assert verdict({**significant_up, "p_value": 0.05}, interval_up) == "n.s."
    assert verdict({**significant_up, "p_value": 0.05}, interval_up, alpha=0.1) == "better"
    # Seeds and clips pointing opposite ways are no finding.
    assert verdict(significant_up, {**interval_up, "low": -0.03, "high": -0.01}) == "n.s."


def test_verdict_direction_follows_higher_is_better():
    down = {"n": 3, "mean_difference": -0.1, "t": -9.0, "p_value": 0.01}
    interval_down = {"low": -0.2, "high": -0.05}
    assert verdict(down, {**interval_down, "metric": "MAE"}) == "better"
    assert verdict(down, {**interval_down, "metric": "Corr"}) == "worse"
    up = {**down, "mean_difference": 0.1}
    assert verdict(up, {"low": 0.05, "high": 0.2, "metric": "MAE"}) == "worse"


def test_end_to_end_a_better_cell_reads_better_and_a_copy_reads_ns():
    rng = np.random.default_rng(12)
    labels = rng.uniform(-3, 3, 200)
    reference = labels + rng.normal(0, 2.0, (3, 200))
    other = labels + rng.normal(0, 0.5, (3, 200))
    for metric in ("Has0_acc_2", "MAE"):
        per_seed_ref = [compute_metrics("mosi", labels, r)[metric] for r in reference]
        per_seed_other = [compute_metrics("mosi", labels, o)[metric] for o in other]
        test = paired_seed_test(per_seed_ref, per_seed_other)
        interval = bootstrap_difference(labels, reference, other, metric, "mosi", n_resamples=300)
        assert verdict(test, interval) == "better", (metric, test, interval)
        same = bootstrap_difference(labels, reference, reference, metric, "mosi", n_resamples=50)
        assert verdict(paired_seed_test(per_seed_ref, per_seed_ref), same) == "n.s."
