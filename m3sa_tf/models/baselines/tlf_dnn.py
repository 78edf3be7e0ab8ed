"""TLF-DNN: LF-DNN trained with the paper's contrastive multi-task loss (eqs 26–27).

The M³SA paper (Lin et al., TASLP 2024, Table III) runs LF-DNN on CMU-MOSI, which has no
unimodal labels, with contrastive learning between the modalities as the extra
subtasks, and calls it TLF-DNN. The paper gives no architecture beyond that; here it is
LF-DNN unchanged plus one linear projection per modality, from its sub-network's vector
to a shared embedding, on which eq. 26 compares the modalities of one clip (positive
pairs) with those of the other clips of the batch (negative pairs). The loss is
M³SA's own `M3SALoss` with task "contrastive", so the embedding width, τ, the pair
weights ∂_αβ and their per-epoch decay are the config's fields that M³SA uses
(`contrastive_dim`, `temperature`, `contrastive_weights`, `contrastive_normalize`,
`contrastive_pair_weight`, `subtask_weight_*`): every model of Table III trained with
eq. 27 is then trained with the same settings.
"""

import keras
from keras import layers

from m3sa_tf.losses.m3sa_loss import M3SALoss
from m3sa_tf.models.baselines.lf_dnn import (
    LF_DNN_HPARAMS,
    LF_DNN_SEARCH_SPACE,
    LF_DNN_TRAINING,
    LFDNN,
)
from m3sa_tf.models.registry import ModelSpec


@keras.saving.register_keras_serializable(package="m3sa_tf")
class TLFDNN(LFDNN):
    """LF-DNN with per-modality embeddings trained by the contrastive loss of eq. 26.

    Hyper-parameters: LF-DNN's (`config.model_hparams`); the contrastive ones are the
    config's own fields (see the module docstring). The task is always "contrastive",
    whatever `config.task` says and whether or not the data has unimodal labels (which
    it does not use: TLF-DNN has no unimodal heads).

    Outputs: `fused` [B]; `embedding_{m}` [B, config.contrastive_dim] and `feature_{m}`
    are internal and not served. With a single modality there is no pair, hence no
    projection and no contrastive term (the model is then LF-DNN).

    Loss (per sample n): ∂_f·|ŷ_f − y_f| + Σ_pairs ∂_αβ·ℓ_αβ,n (`M3SALoss`), whose batch
    mean is eq. 27; `self.m3sa_loss` is the `M3SALoss`, so `SubtaskWeightScheduler`
    decays the ∂_αβ each epoch as it does for M³SA.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("mosi", model="tlf_dnn", contrastive_dim=4,
        ...                              model_hparams=TLFDNN.TINY_HPARAMS)
        >>> model = TLFDNN(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> out = model(example_features({"text": 6, "audio": 3, "vision": 2}))
        >>> out["fused"].shape, out["embedding_audio"].shape
        (TensorShape([2]), TensorShape([2, 4]))
    """

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        self.m3sa_loss = M3SALoss(self.config.replace(task="contrastive"),
                                  self.has_unimodal_labels)
        paired = sorted({m for pair in self.m3sa_loss.pairs for m in pair.split("_")},
                        key=self.modalities.index)
        self.projections = {
            m: layers.Dense(self.config.contrastive_dim,
                            **self.sublayer_kwargs(f"contrastive_projection_{m}"))
            for m in paired
        }

    def forward(self, sequences, masks, training=False):
        outputs = super().forward(sequences, masks, training=training)
        for m, projection in self.projections.items():
            outputs[f"embedding_{m}"] = projection(outputs[f"feature_{m}"])
        return outputs

    def per_sample_loss(self, y, y_pred):
        return self.m3sa_loss.call(y, y_pred)


SPEC = ModelSpec(
    name="tlf_dnn",
    title="TLF-DNN",
    model_class=TLFDNN,
    # LF-DNN's MMSA defaults: the paper gives none of its own for TLF-DNN.
    hparams=LF_DNN_HPARAMS,
    training=LF_DNN_TRAINING,
    search_space=LF_DNN_SEARCH_SPACE,
    # The contrastive loss reads the config's own fields, the ones M³SA's eq. 27 uses.
    config_fields=("contrastive_dim", "temperature", "contrastive_weights",
                   "contrastive_normalize", "contrastive_pair_weight",
                   "subtask_weight_schedule", "subtask_weight_decay",
                   "subtask_weight_floor", "fused_weight", "regression_loss"),
    reference="Lin et al., M³SA, TASLP 2024, Table III and eqs 26-27; LF-DNN after MMSA",
)
