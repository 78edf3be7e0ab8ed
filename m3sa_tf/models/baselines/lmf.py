"""LMF: Low-rank Multimodal Fusion.

After MMSA's `LMF` (Liu et al., "Efficient Low-rank Multimodal Fusion with
Modality-Specific Factors", ACL 2018): the TFN family's sub-networks give one vector per
modality, each extended by a leading 1 as in TFN. Instead of forming TFN's outer product
and a dense layer over it, LMF writes that layer's weight tensor as a sum of `rank`
outer products of per-modality factors; the fused output is then the element-wise
product, over the modalities, of each extended vector projected by its factor (one value
per rank component), combined by a learned weighted sum and a bias. The output is linear
(no squashing), as in MMSA.
"""

import keras
from keras import layers, ops

from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.baselines.lf_dnn import build_unimodal_subnets
from m3sa_tf.models.registry import ModelSpec


@keras.saving.register_keras_serializable(package="m3sa_tf")
class LowRankFusion(layers.Layer):
    """LMF's fusion of extended unimodal vectors through rank-`rank` factors.

    For vectors v_m [B, d_m], with z_m = [1, v_m] and factor W_m [d_m + 1, rank]:
    `output = (prod_m z_m @ W_m) @ w + b`, where w [rank, 1] weighs the rank components
    and b [1] is the bias. This equals a dense layer over TFN's fusion tensor whose weight
    tensor is `sum_r w_r * outer_m(W_m[:, r])`.

    Args:
        modalities: the names of the inputs, in the order `call` receives them (they name
            the factors).
        rank: the number of rank-1 components.

    Call arguments:
        vectors: a list of [B, d_m] tensors, one per modality.

    Returns:
        [B], the fused output.

    Example:
        >>> import numpy as np
        >>> fusion = LowRankFusion(("text", "audio"), rank=3)
        >>> tuple(fusion([np.ones((2, 4), "float32"), np.ones((2, 5), "float32")]).shape)
        (2,)
    """

    def __init__(self, modalities, rank, **kwargs):
        super().__init__(**kwargs)
        self.modality_names = tuple(modalities)
        self.rank = int(rank)

    def build(self, input_shapes):
        # Glorot normal over [d + 1, rank] and [rank, 1] gives the standard deviations of
        # MMSA's xavier_normal_ on its [rank, d + 1, 1] factors and [1, rank] weights.
        self.factors = [
            self.add_weight(shape=(int(shape[-1]) + 1, self.rank), name=f"{m}_factor",
                            initializer="glorot_normal")
            for m, shape in zip(self.modality_names, input_shapes)
        ]
        self.fusion_weights = self.add_weight(shape=(self.rank, 1), name="fusion_weights",
                                              initializer="glorot_normal")
        self.fusion_bias = self.add_weight(shape=(1,), name="fusion_bias",
                                           initializer="zeros")

    def rank_components(self, vectors):
        """[B, rank]: the product over the modalities of each extended vector's
        projection by its factor (MMSA's `fusion_zy`)."""
        product = None
        for vector, factor in zip(vectors, self.factors):
            extended = ops.concatenate([ops.ones_like(vector[:, :1]), vector], axis=-1)
            projected = ops.matmul(extended, factor)
            product = projected if product is None else product * projected
        return product

    def call(self, vectors):
        output = ops.matmul(self.rank_components(vectors), self.fusion_weights)
        return ops.reshape(output + self.fusion_bias, (-1,))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0],)

    def get_config(self):
        config = super().get_config()
        config.update(modalities=list(self.modality_names), rank=self.rank)
        return config


@keras.saving.register_keras_serializable(package="m3sa_tf")
class LMF(MultimodalModel):
    """Low-rank Multimodal Fusion over the TFN family's unimodal sub-networks.

    Hyper-parameters (`config.model_hparams`, MMSA's names): `hidden_dims` [text, audio,
    vision] widths of the sub-networks (the text vector is half the text LSTM's width,
    as in MMSA), `dropouts` [audio, vision, text, post-fusion] (the post-fusion rate is
    unused, as in MMSA), `rank`.

    Any non-empty subset of the modalities works: the product runs over the modalities
    present.

    Outputs: `fused` [B] (unbounded); `feature_{m}` (the unimodal vectors) are internal
    and not served.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("mosi", model="lmf", model_hparams=LMF.TINY_HPARAMS)
        >>> model = LMF(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> model(example_features({"text": 6, "audio": 3, "vision": 2}))["fused"].shape
        TensorShape([2])
    """

    # Small widths for tests and examples.
    TINY_HPARAMS = {"hidden_dims": [8, 8, 8], "dropouts": [0.0, 0.0, 0.0, 0.0], "rank": 4}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = dict(self.config.model_hparams)
        hp["text_out"] = hp["hidden_dims"][0] // 2
        self.subnets, _ = build_unimodal_subnets(self, hp, self.config.seed)
        self.fusion = LowRankFusion(self.modalities, hp["rank"],
                                    **self.sublayer_kwargs("low_rank_fusion"))

    def forward(self, sequences, masks, training=False):
        features = {m: self.subnets[m](sequences[m], masks[m], training=training)
                    for m in self.modalities}
        outputs = {"fused": self.fusion([features[m] for m in self.modalities])}
        outputs.update({f"feature_{m}": v for m, v in features.items()})
        return outputs


# MMSA's config_regression.json, lmf: "mosi" from the MOSI entry (MOSI and MOSEI; MMSA's
# MOSEI entry differs), "sims" from the SIMS entry. MMSA's `factor_lr` (the factors'
# own learning rate) has no counterpart: one optimizer, one rate (docs/baselines.md).
LMF_HPARAMS = {
    "mosi": {"hidden_dims": [128, 16, 128], "dropouts": [0.3, 0.3, 0.3, 0.3], "rank": 3},
    "sims": {"hidden_dims": [64, 16, 64], "dropouts": [0.2, 0.2, 0.2, 0.2], "rank": 4},
}
LMF_TRAINING = {
    "mosi": {"batch_size": 64, "learning_rate": 1e-3, "weight_decay": 5e-3,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
    "sims": {"batch_size": 64, "learning_rate": 2e-3, "weight_decay": 5e-3,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
}
# MMSA's config_tune.json ranges for the scalar hyper-parameters.
LMF_SEARCH_SPACE = {
    "rank": ("int", 3, 6),
    "batch_size": ("choice", [32, 64, 128]),
    "learning_rate": ("float", 5e-4, 5e-3, "log"),
    "weight_decay": ("choice", [0.0, 1e-4, 1e-3, 5e-3]),
}

SPEC = ModelSpec(
    name="lmf",
    title="LMF",
    model_class=LMF,
    hparams=LMF_HPARAMS,
    training=LMF_TRAINING,
    search_space=LMF_SEARCH_SPACE,
    reference="MMSA models/singleTask/LMF.py; Liu et al., ACL 2018",
)
