"""The MSA metrics equal hand-worked examples, MMSA's own code, and reject bad input."""

import math

import numpy as np
import pytest

from m3sa_tf.metrics import (
    MetricInputError,
    compute_metrics,
    metric_names,
    mosi_metrics,
    paper_acc_2,
    paper_acc_3,
    sims_bins,
    sims_metrics,
    unimodal_accuracy,
)
from msa_core.metrics import SIMS_EDGES_2, SIMS_EDGES_3, SIMS_EDGES_5

from tests.metrics.mmsa_reference import mmsa_mosei_regression, mmsa_sims_regression

# --------------------------------------------------------------------------- MOSI / MOSEI
# Worked example. Index:        0     1     2     3     4     5     6
MOSI_TRUE = np.array([-2.0, -0.4, 0.0, 0.0, 2.2, 2.6, 3.0])
MOSI_PRED = np.array([-1.5, 0.2, -0.3, 0.5, 2.5, 3.4, 2.0])
# Has0 (>= 0):  true F F T T T T T   pred F T F T T T T   -> hits 0,3,4,5,6 = 5/7
#   F1: class F (support 2): predicted {0,2}, correct {0}: P=1/2 R=1/2 F1=1/2
#       class T (support 5): predicted {1,3,4,5,6}, correct 4: P=4/5 R=4/5 F1=4/5
#       weighted: (2*1/2 + 5*4/5) / 7 = 5/7
# Non0: labels 0 at 2,3 dropped. true > 0: F F T T T; pred > 0: F T T T T -> 4/5
#   F1: class F (support 2): predicted {0}: P=1 R=1/2 F1=2/3
#       class T (support 3): predicted 4, correct 3: P=3/4 R=1 F1=6/7
#       weighted: (2*2/3 + 3*6/7) / 5 = 82/105
# Mult_acc_5: clip ±2 then round half-to-even
#   true -> [-2, -0.4, 0, 0, 2, 2, 2] -> [-2, -0, 0, 0, 2, 2, 2]
#   pred -> [-1.5, 0.2, -0.3, 0.5, 2, 2, 2] -> [-2, 0, -0, 0, 2, 2, 2]  (-1.5->-2, 0.5->0)
#   all 7 agree -> 1.0 (half-away-from-zero would turn 0.5 into 1 and give 6/7)
# Mult_acc_7: clip ±3 then round half-to-even
#   true -> [-2, -0, 0, 0, 2, 3, 3]; pred -> [-2, 0, -0, 0, 2 (2.5->2), 3 (3.4 clipped), 2]
#   only index 6 differs -> 6/7
# MAE (unclipped): |diffs| 0.5 0.6 0.3 0.5 0.3 0.8 1.0 = 4.0 -> 4/7
# Paper_Acc_2 = Has0 rule -> 5/7
# Paper_Acc_3: sign true [-1 -1 0 0 1 1 1], sign pred [-1 1 -1 1 1 1 1] -> hits 0,4,5,6 = 4/7


def test_mosi_metrics_equal_the_hand_worked_example():
    m = mosi_metrics(MOSI_TRUE, MOSI_PRED)
    assert m["Has0_acc_2"] == pytest.approx(5 / 7)
    assert m["Has0_F1_score"] == pytest.approx(5 / 7)
    assert m["Non0_acc_2"] == pytest.approx(4 / 5)
    assert m["Non0_F1_score"] == pytest.approx(82 / 105)
    assert m["Mult_acc_5"] == pytest.approx(1.0)
    assert m["Mult_acc_7"] == pytest.approx(6 / 7)
    assert m["MAE"] == pytest.approx(4 / 7)
    assert m["Paper_Acc_2"] == pytest.approx(5 / 7)
    assert m["Paper_Acc_3"] == pytest.approx(4 / 7)


def test_mosi_returns_exactly_the_documented_names_as_python_floats():
    m = compute_metrics("mosi", MOSI_TRUE, MOSI_PRED)
    assert tuple(m) == metric_names("mosi") == (
        "Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score",
        "Mult_acc_5", "Mult_acc_7", "MAE", "Corr", "Paper_Acc_2", "Paper_Acc_3",
    )
    assert all(type(v) is float for v in m.values())


def test_mosi_zero_labels_count_as_non_negative_in_has0_and_are_dropped_in_non0():
    # label 0 with prediction -0.1: Has0 says wrong (0 >= 0 but -0.1 < 0);
    # Non0 drops it, leaving only the correct sample at index 1.
    m = mosi_metrics([0.0, 1.0], [-0.1, 2.0])
    assert m["Has0_acc_2"] == 0.5
    assert m["Non0_acc_2"] == 1.0
    # label 0 with prediction exactly 0: right under Has0 (both >= 0).
    assert mosi_metrics([0.0, 1.0], [0.0, 2.0])["Has0_acc_2"] == 1.0


def test_mosi_non0_compares_prediction_zero_as_negative():
    # Non0 asks "> 0" of predictions too: a prediction of exactly 0 on a positive label is wrong.
    assert mosi_metrics([1.0, -1.0], [0.0, -1.0])["Non0_acc_2"] == 0.5


def test_mosi_non0_is_nan_when_every_label_is_zero():
    m = mosi_metrics([0.0, 0.0], [0.3, -0.3])
    assert math.isnan(m["Non0_acc_2"]) and math.isnan(m["Non0_F1_score"])
    assert m["Has0_acc_2"] == 0.5


def test_mosi_rounding_is_half_to_even():
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -2.5 -> -2: all agree with these labels.
    labels = [0.0, 2.0, 2.0, 0.0, -2.0]
    preds = [0.5, 1.5, 2.5, -0.5, -2.5]
    assert mosi_metrics(labels, preds)["Mult_acc_7"] == 1.0
    # Under half-away-from-zero 0.5 would become 1 and miss the label 0.
    assert mosi_metrics([1.0], [0.5])["Mult_acc_7"] == 0.0


def test_mosi_clipping_maps_extreme_values_to_the_outer_classes():
    # 5.0 clips to 3 (acc_7) and to 2 (acc_5); the label 2.7 rounds to 3 and clips to 2.
    m = mosi_metrics([2.7], [5.0])
    assert m["Mult_acc_7"] == 1.0 and m["Mult_acc_5"] == 1.0
    # 2.4 rounds to 2 under ±3 but the label 3.0 stays 3: wrong for acc_7, right for acc_5.
    m = mosi_metrics([3.0], [2.4])
    assert m["Mult_acc_7"] == 0.0 and m["Mult_acc_5"] == 1.0


def test_mosi_mae_and_corr_use_unclipped_predictions():
    # true [-3, 0, 3], pred [-6, 0, 3]. MAE = (3 + 0 + 0) / 3 = 1.
    # Centred: true [-3, 0, 3]; pred mean -1 -> [-5, 1, 4].
    # cov sum = 15 + 0 + 12 = 27; sums of squares 18 and 42 -> Corr = 27 / sqrt(756).
    # (Clipped to ±3 the prediction would equal the label: MAE 0, Corr 1.)
    m = mosi_metrics([-3.0, 0.0, 3.0], [-6.0, 0.0, 3.0])
    assert m["MAE"] == pytest.approx(1.0)
    assert m["Corr"] == pytest.approx(27 / math.sqrt(756))


def test_corr_hand_worked_and_zero_for_constant_inputs():
    # true [1,2,3] centred [-1,0,1]; pred [1,3,2] centred [-1,1,0]: cov 1, norms sqrt2*sqrt2.
    assert mosi_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])["Corr"] == pytest.approx(0.5)
    assert mosi_metrics([1.0, 2.0, 3.0], [0.4, 0.4, 0.4])["Corr"] == 0.0
    assert sims_metrics([0.2, 0.2], [0.1, 0.5])["Corr"] == 0.0
    assert mosi_metrics([1.0], [2.0])["Corr"] == 0.0  # one sample: constant too


# --------------------------------------------------------------------------- CH-SIMS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sims_bins_are_right_closed_at_the_given_edges(dtype):
    values = np.array([-1.0, -0.7, -0.1, 0.0, 1e-6, 0.1, 0.7, 1.0], dtype=dtype)
    # 2 bins (-1.01, 0], (0, 1.01]: 0 is negative, anything above 0 positive.
    assert sims_bins(values, SIMS_EDGES_2).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # 3 bins (-1.01, -0.1], (-0.1, 0.1], (0.1, 1.01]: -0.1 negative, 0.1 neutral.
    assert sims_bins(values, SIMS_EDGES_3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    # 5 bins ..., (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1.01]: each edge closes its bin.
    assert sims_bins(values, SIMS_EDGES_5).tolist() == [0, 0, 1, 2, 2, 2, 3, 4]


def test_sims_bins_compare_in_the_arrays_own_precision():
    # float32(0.1) = 0.100000001490116...: in float32 it equals the edge 0.1 (neutral, as
    # in MMSA on float32 tensors); widened to float64 it is above 0.1 (positive).
    as_float32 = np.array([0.1], dtype=np.float32)
    assert sims_bins(as_float32, SIMS_EDGES_3).tolist() == [1]
    assert sims_bins(as_float32.astype(np.float64), SIMS_EDGES_3).tolist() == [2]


def test_sims_bins_reject_values_outside_the_range():
    with pytest.raises(MetricInputError, match="outside the bins"):
        sims_bins(np.array([1.5]), SIMS_EDGES_3)


# Worked example. Index:       0     1     2     3     4     5    6
SIMS_TRUE = np.array([-1.0, -0.8, -0.1, 0.0, 0.1, 0.6, 1.0], dtype=np.float32)
SIMS_PRED = np.array([-1.6, -0.6, 0.05, 0.02, 0.12, 0.7, 1.4], dtype=np.float32)
# clip [-1, 1]: pred -> [-1, -0.6, 0.05, 0.02, 0.12, 0.7, 1]
# acc_2 bins: true [0 0 0 0 1 1 1]  pred [0 0 1 1 1 1 1]            -> misses 2,3 -> 5/7
# acc_3 bins: true [0 0 0 1 1 2 2]  pred [0 0 1 1 2 2 2]            -> misses 2,4 -> 5/7
# acc_5 bins: true [0 0 1 2 2 3 4]  pred [0 1 2 2 3 3 4]            -> misses 1,2,4 -> 4/7
# F1 on acc_2 bins: class 0 (support 4): predicted {0,1}: P=1 R=1/2 F1=2/3
#                   class 1 (support 3): predicted 5, correct 3: P=3/5 R=1 F1=3/4
#                   weighted (4*2/3 + 3*3/4) / 7 = 59/84
# MAE on clipped: 0 + 0.2 + 0.15 + 0.02 + 0.02 + 0.1 + 0 = 0.49 -> 0.07
# Paper_Acc_2 (>= 0): true F F F T T T T, pred F F T T T T T -> miss 2 -> 6/7
#   (differs from Mult_acc_2 at index 3: label 0 with prediction 0.02)
# Paper_Acc_3 (sign): true [-1 -1 -1 0 1 1 1], pred [-1 -1 1 1 1 1 1] -> misses 2,3 -> 5/7


def test_sims_metrics_equal_the_hand_worked_example():
    m = sims_metrics(SIMS_TRUE, SIMS_PRED)
    assert tuple(m) == metric_names("sims") == (
        "Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr",
        "Paper_Acc_2", "Paper_Acc_3",
    )
    assert m["Mult_acc_2"] == pytest.approx(5 / 7)
    assert m["Mult_acc_3"] == pytest.approx(5 / 7)
    assert m["Mult_acc_5"] == pytest.approx(4 / 7)
    assert m["F1_score"] == pytest.approx(59 / 84)
    assert m["MAE"] == pytest.approx(0.07, abs=1e-6)  # float32 inputs
    assert m["Paper_Acc_2"] == pytest.approx(6 / 7)
    assert m["Paper_Acc_3"] == pytest.approx(5 / 7)
    assert all(type(v) is float for v in m.values())


def test_sims_mae_and_corr_use_clipped_predictions():
    # pred -3 clips to -1 = label: MAE 0, Corr 1 (unclipped: MAE 2/3, Corr < 1).
    m = sims_metrics([-1.0, 0.0, 1.0], [-3.0, 0.0, 1.0])
    assert m["MAE"] == 0.0
    assert m["Corr"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- shared


def test_unimodal_accuracy_is_has0_for_mosi_and_mult_acc_2_for_sims():
    assert unimodal_accuracy("mosi", MOSI_TRUE, MOSI_PRED) == pytest.approx(5 / 7)
    assert unimodal_accuracy("sims", SIMS_TRUE, SIMS_PRED) == pytest.approx(5 / 7)
    # label 0, prediction 0.02: right for MOSI's Has0, wrong for SIMS's acc_2.
    assert unimodal_accuracy("mosi", [0.0], [0.02]) == 1.0
    assert unimodal_accuracy("sims", [0.0], [0.02]) == 0.0


def test_paper_accuracies_by_sign():
    assert paper_acc_2([-1.0, 0.0, 1.0], [-0.5, 0.0, -0.1]) == pytest.approx(2 / 3)
    assert paper_acc_3([-1.0, 0.0, 1.0], [-0.5, 0.3, 0.1]) == pytest.approx(2 / 3)


def test_column_vectors_are_accepted():
    flat = compute_metrics("mosi", MOSI_TRUE, MOSI_PRED)
    assert compute_metrics("mosi", MOSI_TRUE[:, None], MOSI_PRED[:, None]) == flat


@pytest.mark.parametrize("family", ["mosi", "sims"])
def test_agrees_with_a_transcription_of_mmsa_on_random_data(family):
    rng = np.random.default_rng(7)
    for dtype, trial in [(np.float64, 0), (np.float32, 1), (np.float32, 2)]:
        n = 257
        if family == "mosi":
            # MOSI labels are multiples of 1/3 in [-3, 3] (many exact zeros); predictions
            # hit the rounding halves and overshoot the range.
            y_true = (rng.integers(-9, 10, n) / 3.0).astype(dtype)
            y_pred = np.concatenate([rng.normal(0, 2, n - 9), [0.5, 1.5, 2.5, -0.5, 0, 3.5, -4, 0, 0]])
        else:
            y_true = (rng.integers(-5, 6, n) / 5.0).astype(dtype)
            y_pred = np.concatenate([rng.normal(0, 0.6, n - 8), [-0.1, 0.1, 0.7, -0.7, 0, 1, -1.3, 2]])
        y_pred = y_pred.astype(dtype)
        ours = compute_metrics(family, y_true, y_pred)
        if family == "mosi":
            theirs = mmsa_mosei_regression(y_pred, y_true)
            for name, value in theirs.items():  # MMSA rounds these to 4 decimals
                assert round(ours[name], 4) == pytest.approx(value, abs=1e-12), (name, trial)
        else:
            theirs = mmsa_sims_regression(y_pred, y_true)
            for name, value in theirs.items():
                tolerance = 1e-12 if dtype == np.float64 else 1e-6  # MMSA's MAE sums in float32
                assert ours[name] == pytest.approx(float(value), abs=tolerance), (name, trial)


# --------------------------------------------------------------------------- errors


def test_unknown_family_is_rejected_with_the_choices():
    with pytest.raises(MetricInputError, match=r"unknown metric family 'iemocap'.*mosi.*sims"):
        compute_metrics("iemocap", [1.0], [1.0])
    with pytest.raises(MetricInputError, match="unknown metric family"):
        unimodal_accuracy("MOSI", [1.0], [1.0])


def test_shape_mismatch_is_rejected():
    with pytest.raises(MetricInputError, match="y_true has 3 samples but y_pred has 2"):
        compute_metrics("mosi", [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(MetricInputError, match=r"y_pred must have shape \[N\] or \[N, 1\], got \[2, 2\]"):
        compute_metrics("sims", [0.1, 0.2], [[0.1, 0.2], [0.3, 0.4]])


def test_empty_arrays_are_rejected():
    with pytest.raises(MetricInputError, match="y_true is empty"):
        compute_metrics("mosi", [], [])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_predictions_are_rejected_naming_the_array_and_index(bad):
    with pytest.raises(MetricInputError, match=r"y_pred has 1 non-finite value\(s\).*index 1"):
        compute_metrics("mosi", [1.0, 2.0], [1.0, bad])
    with pytest.raises(MetricInputError, match=r"y_true has 1 non-finite"):
        compute_metrics("sims", [bad, 0.2], [0.1, 0.2])


def test_non_numeric_input_is_rejected():
    with pytest.raises(MetricInputError, match="y_pred must hold real numbers"):
        compute_metrics("mosi", [1.0], ["positive"])
    with pytest.raises(MetricInputError, match="y_true must hold real numbers"):
        compute_metrics("mosi", [True], [1.0])
