"""LF-DNN: late fusion of three unimodal sub-networks by a small DNN.

After MMSA's `LF_DNN` (Williams et al., "Recognizing Emotions in Video Using Multimodal
DNN Feature Fusion", 2018; benchmarked in Yu et al., CH-SIMS, ACL 2020): audio and vision
are averaged over time and passed through `PooledSubNet`s, the text through an LSTM
(`RecurrentSubNet`); the three vectors are concatenated, dropped out and read by three
dense layers (ReLU, ReLU, linear).
"""

import keras
from keras import layers, ops

from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.baselines._subnets import PooledSubNet, RecurrentSubNet
from m3sa_tf.models.registry import ModelSpec

_INDEX = {"text": 0, "audio": 1, "vision": 2}


def build_unimodal_subnets(model, hparams, seed):
    """{modality: sub-network} of the TFN family for `model.modalities`.

    `hparams` has MMSA's `hidden_dims` (text, audio, vision), `text_out` and `dropouts`
    (audio, vision, text, post-fusion); returns the nets and their output widths."""
    hidden = hparams["hidden_dims"]
    dropouts = hparams["dropouts"]
    drop = {"audio": dropouts[0], "vision": dropouts[1], "text": dropouts[2]}
    nets, widths = {}, {}
    for i, m in enumerate(model.modalities):
        kwargs = model.sublayer_kwargs(f"{m}_subnet")
        if m == "text":
            nets[m] = RecurrentSubNet(hidden[0], hparams["text_out"], dropout=drop[m],
                                      seed=seed + i, **kwargs)
            widths[m] = int(hparams["text_out"])
        else:
            nets[m] = PooledSubNet(hidden[_INDEX[m]], dropout=drop[m], seed=seed + i,
                                   **kwargs)
            widths[m] = int(hidden[_INDEX[m]])
    return nets, widths


@keras.saving.register_keras_serializable(package="m3sa_tf")
class LFDNN(MultimodalModel):
    """Late-fusion DNN over per-modality sub-networks.

    Hyper-parameters (`config.model_hparams`, MMSA's names): `hidden_dims` [text, audio,
    vision] widths of the sub-networks, `text_out` width of the text vector,
    `post_fusion_dim`, `dropouts` [audio, vision, text, post-fusion].

    Outputs: `fused` [B]; `feature_{m}` (the unimodal vectors, used by TLF-DNN's
    contrastive loss) are internal and not served.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("mosi", model="lf_dnn",
        ...                              model_hparams=LFDNN.TINY_HPARAMS)
        >>> model = LFDNN(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> model(example_features({"text": 6, "audio": 3, "vision": 2}))["fused"].shape
        TensorShape([2])
    """

    # Small widths for tests and examples.
    TINY_HPARAMS = {"hidden_dims": [8, 8, 8], "text_out": 6, "post_fusion_dim": 8,
                    "dropouts": [0.0, 0.0, 0.0, 0.0]}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        seed = self.config.seed
        self.subnets, widths = build_unimodal_subnets(self, hp, seed)
        self.fusion_width = sum(widths.values())
        self.post_fusion_dropout = layers.Dropout(hp["dropouts"][3], seed=seed + 10,
                                                  dtype=self.dtype_policy)
        self.post_fusion = [
            layers.Dense(hp["post_fusion_dim"], activation="relu",
                         **self.sublayer_kwargs("post_fusion_layer_1")),
            layers.Dense(hp["post_fusion_dim"], activation="relu",
                         **self.sublayer_kwargs("post_fusion_layer_2")),
            layers.Dense(1, **self.sublayer_kwargs("post_fusion_layer_3")),
        ]

    def unimodal_features(self, sequences, masks, training=False):
        return {m: self.subnets[m](sequences[m], masks[m], training=training)
                for m in self.modalities}

    def forward(self, sequences, masks, training=False):
        features = self.unimodal_features(sequences, masks, training)
        hidden = ops.concatenate([features[m] for m in self.modalities], axis=-1)
        hidden = self.post_fusion_dropout(hidden, training=training)
        for layer in self.post_fusion:
            hidden = layer(hidden)
        outputs = {"fused": ops.reshape(hidden, (-1,))}
        outputs.update({f"feature_{m}": v for m, v in features.items()})
        return outputs


# MMSA's config_regression.json, lf_dnn: "mosi" for MOSI and MOSEI (MMSA's MOSEI entry
# differs slightly; one family keeps the defaults in one place), "sims" for CH-SIMS.
LF_DNN_HPARAMS = {
    "mosi": {"hidden_dims": [128, 16, 128], "text_out": 256, "post_fusion_dim": 128,
             "dropouts": [0.2, 0.2, 0.2, 0.2]},
    "sims": {"hidden_dims": [128, 32, 128], "text_out": 256, "post_fusion_dim": 32,
             "dropouts": [0.3, 0.3, 0.3, 0.5]},
}
LF_DNN_TRAINING = {
    "mosi": {"batch_size": 128, "learning_rate": 1e-3, "weight_decay": 1e-2,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
    "sims": {"batch_size": 128, "learning_rate": 5e-3, "weight_decay": 5e-3,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
}
# MMSA's config_tune.json ranges, narrowed to what one search can cover.
LF_DNN_SEARCH_SPACE = {
    "post_fusion_dim": ("choice", [16, 32, 64, 128]),
    "text_out": ("choice", [32, 64, 128, 256]),
    "learning_rate": ("float", 5e-4, 5e-3, "log"),
    "weight_decay": ("float", 1e-4, 1e-2, "log"),
}

SPEC = ModelSpec(
    name="lf_dnn",
    title="LF-DNN",
    model_class=LFDNN,
    hparams=LF_DNN_HPARAMS,
    training=LF_DNN_TRAINING,
    search_space=LF_DNN_SEARCH_SPACE,
    reference="MMSA models/singleTask/LF_DNN.py; Williams et al. 2018",
)
