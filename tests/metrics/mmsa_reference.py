"""Independent NumPy transcription of MMSA's regression metrics, for agreement tests only.

Follows ``MetricsTop.__eval_mosei_regression`` and ``__eval_sims_regression`` of
thuiar/MMSA (src/MMSA/utils/metricsTop.py) step by step, with the torch tensors replaced
by NumPy arrays of the same dtype, so that every comparison happens as it does there:
the per-bin loops, the in-dtype edge comparisons, MMSA's 4-decimal rounding on MOSI.
It is deliberately written the long way, not sharing code with ``m3sa_tf.metrics``.
"""

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


def _multiclass_acc(y_pred, y_true):
    return np.sum(np.round(y_pred) == np.round(y_true)) / float(len(y_true))


def mmsa_mosei_regression(y_pred, y_true):
    preds = np.asarray(y_pred).reshape(-1)
    truth = np.asarray(y_true).reshape(-1)
    preds_a7, truth_a7 = np.clip(preds, -3.0, 3.0), np.clip(truth, -3.0, 3.0)
    preds_a5, truth_a5 = np.clip(preds, -2.0, 2.0), np.clip(truth, -2.0, 2.0)

    mae = np.mean(np.absolute(preds - truth))
    corr = np.corrcoef(preds, truth)[0][1]
    mult_a7 = _multiclass_acc(preds_a7, truth_a7)
    mult_a5 = _multiclass_acc(preds_a5, truth_a5)

    keep = np.array([i for i, e in enumerate(truth) if e != 0])
    nz_truth, nz_preds = truth[keep] > 0, preds[keep] > 0
    non0_acc2 = accuracy_score(nz_preds, nz_truth)
    non0_f1 = f1_score(nz_truth, nz_preds, average="weighted")

    bin_truth, bin_preds = truth >= 0, preds >= 0
    acc2 = accuracy_score(bin_preds, bin_truth)
    f1 = f1_score(bin_truth, bin_preds, average="weighted")
    return {
        "Has0_acc_2": round(acc2, 4),
        "Has0_F1_score": round(f1, 4),
        "Non0_acc_2": round(non0_acc2, 4),
        "Non0_F1_score": round(non0_f1, 4),
        "Mult_acc_5": round(mult_a5, 4),
        "Mult_acc_7": round(mult_a7, 4),
        "MAE": round(mae, 4),
        "Corr": round(corr, 4),
    }


def _assign_bins(values, edges):
    binned = values.copy()
    for i in range(len(edges) - 1):
        binned[np.logical_and(values > edges[i], values <= edges[i + 1])] = i
    return binned


def mmsa_sims_regression(y_pred, y_true):
    preds = np.clip(np.asarray(y_pred).reshape(-1), -1.0, 1.0)
    truth = np.clip(np.asarray(y_true).reshape(-1), -1.0, 1.0)
    ms_2 = [-1.01, 0.0, 1.01]
    ms_3 = [-1.01, -0.1, 0.1, 1.01]
    ms_5 = [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]
    preds_a2, truth_a2 = _assign_bins(preds, ms_2), _assign_bins(truth, ms_2)
    preds_a3, truth_a3 = _assign_bins(preds, ms_3), _assign_bins(truth, ms_3)
    preds_a5, truth_a5 = _assign_bins(preds, ms_5), _assign_bins(truth, ms_5)
    return {
        "Mult_acc_2": _multiclass_acc(preds_a2, truth_a2),
        "Mult_acc_3": _multiclass_acc(preds_a3, truth_a3),
        "Mult_acc_5": _multiclass_acc(preds_a5, truth_a5),
        "F1_score": f1_score(truth_a2, preds_a2, average="weighted"),
        "MAE": np.mean(np.absolute(preds - truth)),
        "Corr": np.corrcoef(preds, truth)[0][1],
    }
