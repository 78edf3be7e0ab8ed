"""MLF-DNN: LF-DNN with a sentiment head per modality, trained on CH-SIMS' unimodal labels.

After MMSA's `MLF_DNN` (Yu et al., CH-SIMS, ACL 2020): the three unimodal sub-networks of
LF-DNN (`build_unimodal_subnets`); each modality's vector feeds its own head (dropout,
two ReLU layers, a linear output) that regresses the modality's own label y_T / y_A /
y_V, and their concatenation feeds the fused head. The loss is MMSA's weighted sum of
the four L1 errors, with fixed weights (its "M", "T", "A", "V"), plus an L2 penalty
on each sub-network with a coefficient of its own (MMSA's per-sub-network weight decays
of its Adam optimizer, which leaves the heads undecayed).
"""

import keras
from keras import ops

from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.baselines._multitask import UnimodalLabelTasks
from m3sa_tf.models.baselines._subnets import DenseRegressionHead
from m3sa_tf.models.baselines.lf_dnn import build_unimodal_subnets
from m3sa_tf.models.registry import ModelSpec

_POST_INDEX = {"text": 0, "audio": 1, "vision": 2, "fused": 3}


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MLFDNN(UnimodalLabelTasks, MultimodalModel):
    """Multi-task late-fusion DNN: unimodal heads and a fused head over LF-DNN's
    sub-networks.

    Hyper-parameters (`config.model_hparams`, MMSA's names): `hidden_dims` [text, audio,
    vision] sub-network widths, `text_out`, `dropouts` [audio, vision, text] inside the
    sub-networks, `post_fusion_dim`, `post_text_dim`, `post_audio_dim`,
    `post_video_dim` (head widths), `post_dropouts` [text, audio, vision, fused] on the
    heads' inputs; the fixed loss weights `fused_weight`, `text_weight`, `audio_weight`,
    `vision_weight` (MMSA's M, T, A, V); `text_weight_decay`, `audio_weight_decay`,
    `vision_weight_decay` (MMSA's `video_weight_decay`): the coefficient c of each
    sub-network's penalty c/2·Σw², what Adam's coupled weight decay adds in MMSA.
    (These names are MTFN's, the other multi-task model of CH-SIMS.)

    Any non-empty subset of the modalities works. Needs unimodal labels (SIMS).

    Outputs: `fused` [B] and one head `{m}` [B] per modality; `feature_{m}` (the unimodal
    vectors) are internal and not served.

    Loss: the batch mean of Σ_i w_i · |ŷ_i − y_i| over the fused head and every unimodal
    head whose label is in the batch (y_T, y_A, y_V on CH-SIMS), plus
    `subnet_penalty()`.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("sims", model="mlf_dnn",
        ...                              model_hparams=MLFDNN.TINY_HPARAMS)
        >>> model = MLFDNN(cfg, {"text": 6, "audio": 3, "vision": 2}, True)
        >>> out = model(example_features({"text": 6, "audio": 3, "vision": 2}))
        >>> [k for k in out if not k.startswith("feature_")]
        ['fused', 'text', 'audio', 'vision']
    """

    # Small widths for tests and examples.
    TINY_HPARAMS = {"hidden_dims": [8, 8, 8], "text_out": 6, "post_fusion_dim": 8,
                    "post_text_dim": 4, "post_audio_dim": 4, "post_video_dim": 4,
                    "dropouts": [0.0, 0.0, 0.0], "post_dropouts": [0.0, 0.0, 0.0, 0.0],
                    "fused_weight": 0.6, "text_weight": 0.2, "audio_weight": 0.8,
                    "vision_weight": 0.8, "text_weight_decay": 1e-4,
                    "audio_weight_decay": 1e-3, "vision_weight_decay": 1e-4}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        self.check_unimodal_labels("MLF-DNN", has_unimodal_labels)
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        seed = self.config.seed
        self.subnets, _ = build_unimodal_subnets(self, hp, seed)
        widths = {"text": hp["post_text_dim"], "audio": hp["post_audio_dim"],
                  "vision": hp["post_video_dim"], "fused": hp["post_fusion_dim"]}
        self.heads = {
            key: DenseRegressionHead(
                widths[key], dropout=hp["post_dropouts"][_POST_INDEX[key]],
                seed=seed + 10 + _POST_INDEX[key], **self.sublayer_kwargs(f"post_{key}"),
            )
            for key in ("fused",) + self.modalities
        }
        self.set_task_weights(hp)

    def forward(self, sequences, masks, training=False):
        features = {m: self.subnets[m](sequences[m], masks[m], training=training)
                    for m in self.modalities}
        joined = ops.concatenate([features[m] for m in self.modalities], axis=-1)
        outputs = {"fused": self.heads["fused"](joined, training=training)}
        for m in self.modalities:
            outputs[m] = self.heads[m](features[m], training=training)
        outputs.update({f"feature_{m}": v for m, v in features.items()})
        return outputs


# MMSA's config_regression.json has an mlf_dnn entry for SIMS only: the model needs
# unimodal labels, which MOSI and MOSEI lack. The "mosi" family repeats it so that the
# config resolves everywhere; the registry refuses to train it on data without them.
_SIMS_HPARAMS = {
    "hidden_dims": [64, 32, 64], "text_out": 32, "post_fusion_dim": 32,
    "post_text_dim": 16, "post_audio_dim": 4, "post_video_dim": 32,
    "dropouts": [0.3, 0.3, 0.3], "post_dropouts": [0.5, 0.5, 0.5, 0.5],
    "fused_weight": 0.6, "text_weight": 0.2, "audio_weight": 0.8, "vision_weight": 0.8,
    "text_weight_decay": 1e-4, "audio_weight_decay": 1e-3, "vision_weight_decay": 1e-4,
}
MLF_DNN_HPARAMS = {"mosi": _SIMS_HPARAMS, "sims": _SIMS_HPARAMS}
# MMSA's optimizer decays the sub-networks only (the penalties above) and gives the
# other weights its `weight_decay`, 0 on SIMS: the optimizer's decoupled decay is off.
_SIMS_TRAINING = {"batch_size": 32, "learning_rate": 2e-3, "weight_decay": 0.0,
                  "early_stopping_patience": 8, "gradient_clip_norm": None}
MLF_DNN_TRAINING = {"mosi": _SIMS_TRAINING, "sims": _SIMS_TRAINING}
# MMSA's config_tune.json ranges, narrowed to what one search can cover.
MLF_DNN_SEARCH_SPACE = {
    "text_out": ("choice", [32, 64, 128, 256]),
    "post_fusion_dim": ("choice", [16, 32, 64, 128]),
    "post_text_dim": ("choice", [8, 16, 32, 64]),
    "post_video_dim": ("choice", [8, 16, 32, 64]),
    "fused_weight": ("choice", [0.2, 0.4, 0.6, 0.8, 1.0]),
    "text_weight": ("choice", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    "audio_weight": ("choice", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    "vision_weight": ("choice", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    "batch_size": ("choice", [32, 64, 128]),
    "learning_rate": ("float", 5e-4, 5e-3, "log"),
}

SPEC = ModelSpec(
    name="mlf_dnn",
    title="MLF-DNN",
    model_class=MLFDNN,
    hparams=MLF_DNN_HPARAMS,
    training=MLF_DNN_TRAINING,
    needs_unimodal_labels=True,
    search_space=MLF_DNN_SEARCH_SPACE,
    reference="MMSA models/multiTask/MLF_DNN.py, trains/multiTask/MLF_DNN.py; Yu et al. 2020",
)
