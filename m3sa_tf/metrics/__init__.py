"""MSA metrics (MMSA's definitions plus the paper's own Acc_2/Acc_3); see docs/metrics.md.

The NumPy functions live in `msa_core.metrics` (the data layer scores its Bayes reference
with them without importing the model); they are re-exported here. The Keras pieces are
imported eagerly so that importing this package registers the streaming metrics for
deserialisation of saved, compiled models.
"""

from m3sa_tf.metrics.binary_sentiment_accuracy import BinarySentimentAccuracy
from m3sa_tf.metrics.metrics_callback import MSAMetricsCallback
from m3sa_tf.metrics.rounded_class_accuracy import RoundedClassAccuracy
from msa_core.metrics import (
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
    "BinarySentimentAccuracy",
    "FAMILIES",
    "MSAMetricsCallback",
    "MetricInputError",
    "RoundedClassAccuracy",
    "compute_metrics",
    "metric_names",
    "mosi_metrics",
    "paper_acc_2",
    "paper_acc_3",
    "sims_bins",
    "sims_metrics",
    "unimodal_accuracy",
]
