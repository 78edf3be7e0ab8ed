"""The loss of M³SA: eq. 25 (multi-task) or eqs 26–27 (contrastive multi-task)."""

import keras
from keras import ops

from m3sa_tf.config import M3SAConfig, PAIRS
from m3sa_tf.losses.contrastive_loss import contrastive_pair_terms
from m3sa_tf.losses.multitask_loss import multitask_loss_terms
from m3sa_tf.losses.regression import per_sample_regression_loss


@keras.saving.register_keras_serializable(package="m3sa_tf")
class M3SALoss(keras.losses.Loss):
    """The model's training loss, usable inside `fit` and in a custom training loop.

    The task comes from `config.resolve_task(has_unimodal_labels)`:

    - "multitask" (eq. 25): mean over samples of ∂_f·L_f + Σ_m ∂_m·L_m, L the
      regression loss (config.regression_loss), over the unimodal heads whose labels
      are in the batch.
    - "contrastive" (eqs 26–27): L = (1/N)(Σ_pairs ∂_αβ·L_αβ + Σ_n ∂_f·L_f), with L_αβ of
      eq. 26 on the model's `embedding_*` outputs (see `contrastive_pair_terms` for the
      readings). Eq. 27's 1/N over a sum of per-sample terms is the batch mean of
      ∂_f·L_f,n + Σ_pairs ∂_αβ·ℓ_αβ,n, which is how it is computed.
    - "fused_only": mean of ∂_f·L_f.

    In the tasks other than "multitask" the unimodal heads are trained as set by
    config.unimodal_head_training: unless "off", each adds ∂_m·L(ŷ_m, y), y its unimodal
    label when the batch has one and the fused label otherwise (with "probe" the model
    stops the gradient at the heads' input, so these terms train the heads alone).

    The loss is computed per sample and reduced by Keras ("sum_over_batch_size"), so
    under a `tf.distribute` strategy the value is the replica's mean divided by the
    number of replicas (Keras' `scale_loss_for_distribution`): the replicas' summed
    gradients are the gradient of the global batch mean, in `fit` and equally in a
    custom loop that calls this object inside `strategy.run`. With a strategy, the
    negative pairs of eq. 26 are those of each replica's share of the batch.

    Subtask weights: ∂_f is fixed (config.fused_weight); the unimodal weights ∂_m and the
    pair weights ∂_αβ live in non-trainable variables (`subtask_weights`), set to
    `initial × factor` by `set_weight_factor` — the paper's "dynamic weight decay",
    driven each epoch by `SubtaskWeightScheduler`.

    Key-modality warm-up (§III-B): `set_key_warmup(True)` turns the same loss into the
    warm-up's eq. 25 — the pair weights are held at 0 and `head_gradient` (the fraction
    of the unimodal heads' gradient that reaches the blocks, read by the model) becomes
    1 — so that the warm-up and the main fit train one model with one traced training
    function. Outside the warm-up, `head_gradient` is 0 for probe heads and 1 otherwise.

    Args:
        config: an `M3SAConfig` (or its dict).
        has_unimodal_labels: whether the data carries y_T, y_A, y_V.

    Call arguments:
        y_true: dict with "fused" [B] (and "text"/"audio"/"vision" [B] for multitask).
        y_pred: the model's output dict.

    Returns:
        A scalar.

    Example:
        >>> cfg = M3SAConfig.for_dataset("sims", task="multitask")
        >>> loss = M3SALoss(cfg, has_unimodal_labels=True)
        >>> y = {"fused": [0.2], "text": [0.4], "audio": [0.0], "vision": [0.0]}
        >>> out = {"fused": [0.0], "text": [0.0], "audio": [0.0], "vision": [0.0]}
        >>> round(float(loss(y, out)), 4)
        0.6
    """

    def __init__(self, config, has_unimodal_labels=False, name="m3sa_loss",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(config, dict):
            config = M3SAConfig.from_dict(config)
        self.config = config
        self.has_unimodal_labels = bool(has_unimodal_labels)
        self.task = config.resolve_task(self.has_unimodal_labels)
        self.initial_weights = {}
        if self.trains_unimodal_heads:
            for m in config.modalities:
                self.initial_weights[m] = float(config.unimodal_weights[m])
        if self.task == "contrastive":
            for pair in self.pairs:
                self.initial_weights[pair] = float(config.contrastive_weights[pair])
        self.subtask_weights = {
            key: keras.Variable(value, trainable=False, dtype="float32",
                                name=f"subtask_weight_{key}")
            for key, value in self.initial_weights.items()
        }
        self.key_warmup = False
        self._factor = 1.0
        self.head_gradient = keras.Variable(self._head_gradient_value(), trainable=False,
                                            dtype="float32", name="head_gradient")

    @property
    def supports_key_warmup(self):
        """Whether `set_key_warmup` can express the warm-up: the unimodal heads must be
        trained by this loss (every task but "off" heads)."""
        return self.trains_unimodal_heads

    def _head_gradient_value(self):
        probe = self.task != "multitask" and self.config.unimodal_head_training == "probe"
        return 0.0 if probe and not self.key_warmup else 1.0

    def set_key_warmup(self, active):
        """Enters (True) or leaves (False) the key-modality warm-up: eq. 25 over the
        fused and unimodal heads, the heads' gradient reaching the blocks, no pair
        terms. The subtask weights keep the current epoch's factor."""
        if active and not self.supports_key_warmup:
            raise ValueError(
                "this loss does not train the unimodal heads "
                f"(unimodal_head_training={self.config.unimodal_head_training!r}), so it "
                "cannot serve as the key-modality warm-up")
        self.key_warmup = bool(active)
        self.head_gradient.assign(self._head_gradient_value())
        self.set_weight_factor(self._factor)

    @property
    def trains_unimodal_heads(self):
        return self.heads_are_trained(self.config, self.task)

    @staticmethod
    def heads_are_trained(config, task):
        """Whether the loss of `task` under `config` trains the unimodal heads (which
        also makes it able to serve as the key-modality warm-up)."""
        return task == "multitask" or config.unimodal_head_training != "off"

    @property
    def pairs(self):
        """The modality pairs of eq. 27 among the configured modalities."""
        present = set(self.config.modalities)
        return tuple(p for p in PAIRS if set(p.split("_")) <= present)

    def set_weight_factor(self, factor):
        """Sets every decaying subtask weight to its initial value × `factor` (the pair
        weights to 0 during the key-modality warm-up)."""
        self._factor = float(factor)
        for key, variable in self.subtask_weights.items():
            paused = self.key_warmup and key not in self.config.modalities
            variable.assign(0.0 if paused else self.initial_weights[key] * self._factor)

    def call(self, y_true, y_pred):
        if "fused" not in y_true or "fused" not in y_pred:
            raise KeyError(
                "M3SALoss needs the 'fused' label and the model's 'fused' output; got "
                f"labels {sorted(y_true)} and outputs {sorted(y_pred)}"
            )
        config = self.config
        if self.task == "multitask":
            return multitask_loss_terms(
                y_true, y_pred, config.fused_weight, self.subtask_weights,
                kind=config.regression_loss,
            )
        total = config.fused_weight * per_sample_regression_loss(
            config.regression_loss, y_true["fused"], y_pred["fused"]
        )
        if self.trains_unimodal_heads:
            for m in config.modalities:
                if m in y_pred:
                    target = y_true[m] if m in y_true else y_true["fused"]
                    term = per_sample_regression_loss(config.regression_loss, target, y_pred[m])
                    total = total + ops.cast(self.subtask_weights[m], term.dtype) * term
        if self.task == "contrastive":
            for pair in self.pairs:
                first, second = pair.split("_")
                keys = (f"embedding_{first}", f"embedding_{second}")
                if not all(k in y_pred for k in keys):
                    continue  # early fusion has no per-modality embeddings
                terms = contrastive_pair_terms(
                    y_pred[keys[0]], y_pred[keys[1]], config.temperature,
                    normalize=config.contrastive_normalize,
                    pair_weight=config.contrastive_pair_weight,
                )
                total = total + ops.cast(self.subtask_weights[pair], terms.dtype) * terms
        return total

    def get_config(self):
        config = super().get_config()
        config.update(config=self.config.to_dict(), has_unimodal_labels=self.has_unimodal_labels)
        return config
