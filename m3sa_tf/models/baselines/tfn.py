"""TFN: the Tensor Fusion Network.

After MMSA's `TFN` (Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment
Analysis", EMNLP 2017): the three sub-networks of the TFN family (`PooledSubNet` for
audio and vision, `RecurrentSubNet` for the text) give one vector per modality; each is
extended by a constant 1 and the outer product of the extended vectors, flattened, is the
fusion tensor. It holds the unimodal vectors themselves, all their pairwise products and
the trimodal products. Dropout and three dense layers (ReLU, ReLU, linear) read it, and a
sigmoid stretched over the label range gives the sentiment.
"""

import math

import keras
from keras import ops

from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.baselines._subnets import scaled_sigmoid
from m3sa_tf.models.baselines.lf_dnn import build_unimodal_subnets
from m3sa_tf.models.baselines._subnets import DenseRegressionHead
from m3sa_tf.models.registry import ModelSpec


def tensor_fusion(vectors):
    """The flattened outer product of `vectors`, each first extended by a leading 1.

    Args:
        vectors: a list of [B, d_i] tensors (the unimodal vectors, in a fixed order).

    Returns:
        [B, prod(d_i + 1)]: entry (i, j, k, ...) of the outer product, the first vector's
        index varying slowest. The leading 1s keep the lower-order terms: the entries
        with every other index at 0 are the unimodal vectors themselves.

    Example:
        >>> import numpy as np
        >>> a = np.array([[2.0]], "float32"); b = np.array([[3.0, 5.0]], "float32")
        >>> np.asarray(tensor_fusion([a, b])).tolist()
        [[1.0, 3.0, 5.0, 2.0, 6.0, 10.0]]
    """
    fused = None
    for vector in vectors:
        extended = ops.concatenate([ops.ones_like(vector[:, :1]), vector], axis=-1)
        if fused is None:
            fused = extended
            continue
        width = int(fused.shape[-1]) * int(extended.shape[-1])
        product = ops.expand_dims(fused, -1) * ops.expand_dims(extended, 1)
        fused = ops.reshape(product, (-1, width))
    return fused


@keras.saving.register_keras_serializable(package="m3sa_tf")
class TFN(MultimodalModel):
    """Tensor Fusion Network over the TFN family's unimodal sub-networks.

    Hyper-parameters (`config.model_hparams`, MMSA's names): `hidden_dims` [text, audio,
    vision] widths of the sub-networks, `text_out` width of the text vector,
    `post_fusion_dim`, `dropouts` [audio, vision, text, post-fusion].

    Any non-empty subset of the modalities works: the fusion tensor is the outer product
    over the modalities present (a single modality gives its vector and the 1).

    Outputs: `fused` [B], in the label range ((-3, 3) on MOSI/MOSEI, (-1, 1) on SIMS);
    `feature_{m}` (the unimodal vectors) are internal and not served.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("mosi", model="tfn", model_hparams=TFN.TINY_HPARAMS)
        >>> model = TFN(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> model(example_features({"text": 6, "audio": 3, "vision": 2}))["fused"].shape
        TensorShape([2])
        >>> model.fusion_width  # (6 + 1) * (4 + 1) * (4 + 1)
        175
    """

    # Small widths for tests and examples.
    TINY_HPARAMS = {"hidden_dims": [8, 4, 4], "text_out": 6, "post_fusion_dim": 8,
                    "dropouts": [0.0, 0.0, 0.0, 0.0]}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        seed = self.config.seed
        self.subnets, widths = build_unimodal_subnets(self, hp, seed)
        self.fusion_width = math.prod(widths[m] + 1 for m in self.modalities)
        # MMSA's post-fusion stack: dropout, Dense+ReLU twice, a linear output.
        self.post_fusion = DenseRegressionHead(
            hp["post_fusion_dim"], dropout=self.post_fusion_dropout_rate(hp), seed=seed + 10,
            **self.sublayer_kwargs("post_fusion"),
        )

    @staticmethod
    def post_fusion_dropout_rate(hparams):
        return hparams["dropouts"][3]

    def unimodal_features(self, sequences, masks, training=False):
        return {m: self.subnets[m](sequences[m], masks[m], training=training)
                for m in self.modalities}

    def fuse(self, features, training=False):
        """The fusion tensor of the unimodal vectors and the fused prediction [B]."""
        fusion = tensor_fusion([features[m] for m in self.modalities])
        logits = self.post_fusion(fusion, training=training)
        return fusion, scaled_sigmoid(logits, self.config.family)

    def forward(self, sequences, masks, training=False):
        features = self.unimodal_features(sequences, masks, training)
        _, fused = self.fuse(features, training)
        outputs = {"fused": fused}
        outputs.update({f"feature_{m}": v for m, v in features.items()})
        return outputs


# MMSA's config_regression.json, tfn: "mosi" from the MOSI entry (MOSI and MOSEI; MMSA's
# MOSEI entry differs), "sims" from the SIMS entry.
TFN_HPARAMS = {
    "mosi": {"hidden_dims": [128, 32, 128], "text_out": 32, "post_fusion_dim": 64,
             "dropouts": [0.3, 0.3, 0.3, 0.5]},
    "sims": {"hidden_dims": [128, 32, 128], "text_out": 256, "post_fusion_dim": 32,
             "dropouts": [0.4, 0.4, 0.4, 0.4]},
}
# MMSA trains TFN with plain Adam: no weight decay, no clipping.
TFN_TRAINING = {
    "mosi": {"batch_size": 32, "learning_rate": 1e-3, "weight_decay": 0.0,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
    "sims": {"batch_size": 32, "learning_rate": 5e-4, "weight_decay": 0.0,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
}
# MMSA's config_tune.json ranges for the scalar hyper-parameters (the tuner's choices
# are scalars, so the list-valued hidden_dims and dropouts keep their defaults).
TFN_SEARCH_SPACE = {
    "text_out": ("choice", [32, 64, 128, 256]),
    "post_fusion_dim": ("choice", [16, 32, 64, 128]),
    "batch_size": ("choice", [32, 64, 128]),
    "learning_rate": ("float", 5e-4, 5e-3, "log"),
}

SPEC = ModelSpec(
    name="tfn",
    title="TFN",
    model_class=TFN,
    hparams=TFN_HPARAMS,
    training=TFN_TRAINING,
    search_space=TFN_SEARCH_SPACE,
    reference="MMSA models/singleTask/TFN.py; Zadeh et al., EMNLP 2017",
)
