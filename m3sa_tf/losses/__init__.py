"""The losses of M³SA: eq. 25 (multi-task), eqs 26–27 (contrastive multi-task)."""

from m3sa_tf.losses.contrastive_loss import contrastive_pair_terms, l2_normalize
from m3sa_tf.losses.m3sa_loss import M3SALoss
from m3sa_tf.losses.multitask_loss import multitask_loss_terms
from m3sa_tf.losses.regression import per_sample_regression_loss
from m3sa_tf.losses.subtask_weight_scheduler import SubtaskWeightScheduler

__all__ = [
    "M3SALoss",
    "SubtaskWeightScheduler",
    "contrastive_pair_terms",
    "l2_normalize",
    "multitask_loss_terms",
    "per_sample_regression_loss",
]
