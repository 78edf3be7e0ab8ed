"""What MMSA's two multi-task baselines on SIMS (MLF-DNN, MTFN) share: they need the
unimodal labels, their loss weighs four L1 terms, and MMSA decays each unimodal
sub-network's weights with its own L2 coefficient."""

import tensorflow as tf
from keras import ops

from m3sa_tf.config import ConfigError
from m3sa_tf.losses.multitask_loss import multitask_loss_terms

_TASKS = ("fused", "text", "audio", "vision")


class UnimodalLabelTasks:
    """Mixin of a `MultimodalModel` with `subnets` ({modality: layer}) and heads on SIMS'
    unimodal labels.

    Call `check_unimodal_labels` before `super().__init__`, and `set_task_weights(hp)`
    once the sub-networks exist; `hp` holds `{task}_weight` for fused/text/audio/vision
    and `{modality}_weight_decay`.

    Loss: the batch mean of Σ_i w_i·|ŷ_i − y_i| over the fused head and every unimodal
    head whose label is in the batch, plus `subnet_penalty()`.
    """

    def check_unimodal_labels(self, title, has_unimodal_labels):
        if not has_unimodal_labels:
            raise ConfigError(
                f"{title} trains on the unimodal labels y_T, y_A, y_V; build it for data "
                "that has them (SIMS), with has_unimodal_labels=True"
            )

    def set_task_weights(self, hp):
        self.loss_weights = {key: float(hp[f"{key}_weight"])
                             for key in ("fused",) + self.modalities}
        self.subnet_decays = {m: float(hp[f"{m}_weight_decay"]) for m in self.modalities}

    def per_sample_loss(self, y, y_pred):
        unimodal = {m: self.loss_weights[m] for m in self.modalities}
        return multitask_loss_terms(y, y_pred, self.loss_weights["fused"], unimodal,
                                    kind="l1")

    def subnet_penalty(self):
        """Σ_m c_m/2 · Σ w² over the weights of sub-network m: its gradient c_m·w is
        what MMSA's Adam adds to that sub-network's gradients."""
        penalty = ops.zeros((), "float32")
        for m, decay in self.subnet_decays.items():
            if not decay:
                continue
            for weight in self.subnets[m].trainable_weights:
                squares = ops.sum(ops.square(ops.cast(weight, "float32")))
                penalty = penalty + 0.5 * decay * squares
        return penalty

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        # The replicas' gradients are summed, so each replica adds its share.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss + self.subnet_penalty() / float(replicas)
