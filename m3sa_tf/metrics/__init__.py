"""MSA metrics (MMSA's definitions plus the paper's own Acc_2/Acc_3)."""

from m3sa_tf.metrics.msa_metrics import (
    FAMILIES,
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

__all__ = [
    "FAMILIES",
    "MetricInputError",
    "compute_metrics",
    "metric_names",
    "mosi_metrics",
    "paper_acc_2",
    "paper_acc_3",
    "sims_bins",
    "sims_metrics",
    "unimodal_accuracy",
]
