"""MTFN: the multi-task Tensor Fusion Network of CH-SIMS.

After MMSA's `MTFN` and its trainer (Yu et al., "CH-SIMS: A Chinese Multimodal Sentiment
Analysis Dataset with Fine-grained Annotations of Modality", ACL 2020): TFN (the TFN
family's sub-networks, the tensor fusion and its three-layer head) plus one three-layer
head per modality on the unimodal vectors, each regressing its own unimodal label
(y_T, y_A, y_V of SIMS). The loss is the weighted sum of the four L1 errors, with MMSA's
per-task weights, and each sub-network carries its own L2 penalty, as MMSA's optimizer
gives each a weight decay of its own and the heads none.
"""

import keras

from m3sa_tf.models.baselines._multitask import UnimodalLabelTasks
from m3sa_tf.models.baselines._subnets import DenseRegressionHead
from m3sa_tf.models.baselines.tfn import TFN
from m3sa_tf.models.registry import ModelSpec

_POST_DROPOUT_INDEX = {"text": 0, "audio": 1, "vision": 2}


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MTFN(UnimodalLabelTasks, TFN):
    """Tensor Fusion Network with unimodal heads trained on the unimodal labels.

    Hyper-parameters (`config.model_hparams`; MMSA's names, except that MMSA's task
    weights M, T, A, V are `fused_weight`, `text_weight`, `audio_weight`, `vision_weight`
    and its `video_weight_decay` is `vision_weight_decay`):
        hidden_dims [text, audio, vision], text_out: the sub-networks' widths;
        dropouts [audio, vision, text]: the sub-networks' dropout rates;
        post_fusion_dim, post_text_dim, post_audio_dim, post_video_dim: the heads'
            widths;
        post_dropouts [text, audio, vision, fusion]: dropout before each head;
        fused_weight, text_weight, audio_weight, vision_weight: the loss weights of the
            four L1 errors;
        text_weight_decay, audio_weight_decay, vision_weight_decay: the coefficient c of
            each sub-network's penalty c/2 * sum(w^2) (Adam's coupled weight decay).

    Any non-empty subset of the modalities works (heads and loss terms for the
    modalities present). Needs unimodal labels (SIMS).

    Outputs: `fused` [B] in the label range; `text`/`audio`/`vision` [B] (linear, as in
    MMSA; with a task weight of 0 that head is not trained); `feature_{m}` internal.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("sims", model="mtfn",
        ...                              model_hparams=MTFN.TINY_HPARAMS)
        >>> model = MTFN(cfg, {"text": 6, "audio": 3, "vision": 2}, True)
        >>> out = model(example_features({"text": 6, "audio": 3, "vision": 2}))
        >>> [k for k in out if not k.startswith("feature_")]
        ['fused', 'text', 'audio', 'vision']
    """

    # Small widths for tests and examples; every task weighted, so every head learns.
    TINY_HPARAMS = {"hidden_dims": [8, 4, 4], "text_out": 6, "post_fusion_dim": 8,
                    "post_text_dim": 4, "post_audio_dim": 4, "post_video_dim": 4,
                    "dropouts": [0.0, 0.0, 0.0], "post_dropouts": [0.0, 0.0, 0.0, 0.0],
                    "fused_weight": 0.6, "text_weight": 0.4, "audio_weight": 0.2,
                    "vision_weight": 1.0, "text_weight_decay": 1e-3,
                    "audio_weight_decay": 1e-4, "vision_weight_decay": 1e-5}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        self.check_unimodal_labels("MTFN", has_unimodal_labels)
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        seed = self.config.seed
        width = {"text": hp["post_text_dim"], "audio": hp["post_audio_dim"],
                 "vision": hp["post_video_dim"]}
        self.heads = {
            m: DenseRegressionHead(
                width[m], dropout=hp["post_dropouts"][_POST_DROPOUT_INDEX[m]],
                seed=seed + 20 + _POST_DROPOUT_INDEX[m], **self.sublayer_kwargs(f"post_{m}"),
            )
            for m in self.modalities
        }
        self.set_task_weights(hp)

    @staticmethod
    def post_fusion_dropout_rate(hparams):
        return hparams["post_dropouts"][3]

    def forward(self, sequences, masks, training=False):
        features = self.unimodal_features(sequences, masks, training)
        _, fused = self.fuse(features, training)
        outputs = {"fused": fused}
        for m in self.modalities:
            outputs[m] = self.heads[m](features[m], training=training)
        outputs.update({f"feature_{m}": v for m, v in features.items()})
        return outputs


# MMSA's config_regression.json, mtfn: its SIMS entry. MMSA has no MOSI/MOSEI entry
# (the model needs unimodal labels, which only SIMS has); "mosi" repeats the SIMS values
# so that the spec is complete.
_SIMS_HPARAMS = {
    "hidden_dims": [256, 32, 256], "text_out": 256, "post_fusion_dim": 64,
    "post_text_dim": 64, "post_audio_dim": 4, "post_video_dim": 8,
    "dropouts": [0.2, 0.2, 0.2], "post_dropouts": [0.2, 0.2, 0.2, 0.2],
    "fused_weight": 0.6, "text_weight": 0.4, "audio_weight": 0.0, "vision_weight": 1.0,
    "text_weight_decay": 1e-3, "audio_weight_decay": 1e-4, "vision_weight_decay": 1e-5,
}
MTFN_HPARAMS = {"mosi": dict(_SIMS_HPARAMS), "sims": dict(_SIMS_HPARAMS)}
# MMSA's trainer decays only the sub-networks (the penalties above); its config's
# `weight_decay` is never read, so the optimizer's decoupled decay is off.
_SIMS_TRAINING = {"batch_size": 64, "learning_rate": 5e-3, "weight_decay": 0.0,
                  "early_stopping_patience": 8, "gradient_clip_norm": None}
MTFN_TRAINING = {"mosi": dict(_SIMS_TRAINING), "sims": dict(_SIMS_TRAINING)}
# MMSA's config_tune.json ranges for the scalar hyper-parameters.
MTFN_SEARCH_SPACE = {
    "text_out": ("choice", [32, 64, 128, 256]),
    "post_fusion_dim": ("choice", [16, 32, 64, 128]),
    "post_text_dim": ("choice", [8, 16, 32, 64]),
    "post_video_dim": ("choice", [8, 16, 32, 64]),
    "text_weight": ("choice", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    "audio_weight": ("choice", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    "vision_weight": ("choice", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    "batch_size": ("choice", [32, 64]),
    "learning_rate": ("float", 5e-4, 5e-3, "log"),
}

SPEC = ModelSpec(
    name="mtfn",
    title="MTFN",
    model_class=MTFN,
    hparams=MTFN_HPARAMS,
    training=MTFN_TRAINING,
    needs_unimodal_labels=True,
    search_space=MTFN_SEARCH_SPACE,
    reference="MMSA models/multiTask/MTFN.py and trains/multiTask/MTFN.py; Yu et al., "
              "ACL 2020",
)
