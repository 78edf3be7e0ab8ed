"""Self-MM: self-supervised multi-task learning with generated unimodal labels.

After MMSA's `SELF_MM` (Yu et al., "Learning Modality-Specific Representations with
Self-Supervised Multi-Task Learning for Multimodal Sentiment Analysis", AAAI 2021): a
text vector (BERT's first token, or an LSTM on the precomputed feature path), audio and
vision LSTMs over their valid steps, a fusion MLP on the concatenated vectors and one MLP
head per modality. The unimodal heads learn from labels that no dataset provides: the
unimodal label generation module (ULGM) keeps a positive and a negative class centre of
the fused representation and of each unimodal one, and moves the fused label by how
much closer to its positive centre each modality's representation lies than the fused
representation does.

MMSA keeps every training sample's representation and generated labels in tables indexed
by the sample's position in the dataset, recomputes the centres from the whole table
after each batch and averages each sample's label over epochs. Our batches carry no
sample index, so here the centres are bias-corrected exponential moving averages of each
batch's positive and negative representations, kept in non-trainable variables and
updated in `compute_loss` when (and only when) it is called for training, and each
batch's unimodal labels are generated on the fly from the current centres (see
`SelfMM` for the exact order; docs/baselines.md lists the departures).
"""

import keras
from keras import layers, ops

from m3sa_tf.config import ConfigError
from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.baselines._subnets import RecurrentSubNet
from m3sa_tf.models.registry import ModelSpec

# MMSA's guard in the ULGM's divisions.
_MIN = 1e-8
# MMSA's per-branch hyper-parameter prefixes (it calls the vision branch "video").
_BRANCH = {"fusion": "fusion", "text": "text", "audio": "audio", "vision": "video"}
TEXT_ENCODERS = ("auto", "first_token", "lstm")


def relative_margin(features, positive, negative):
    """MMSA's ULGM margin: (d(x, neg) - d(x, pos)) / (d(x, pos) + 1e-8), per row.

    Args:
        features: [B, d] representations; positive, negative: [d] class centres.

    Returns:
        [B]: positive when a row lies nearer its positive centre than its negative one.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0]], "float32")
        >>> float(relative_margin(x, np.array([1.0, 0.0]), np.array([0.0, 0.0]))[0]) > 1e7
        True
    """
    to_positive = ops.norm(features - positive, axis=-1)
    to_negative = ops.norm(features - negative, axis=-1)
    return (to_negative - to_positive) / (to_positive + _MIN)


def generate_label(fused_label, fused_margin, unimodal_margin, bound):
    """MMSA's ULGM label for one modality from the fused label and the two margins.

    label = clip(0.5 * alpha * y_f + 0.5 * (y_f + delta_s - delta_f), -H, H) with
    alpha = delta_s / (delta_f + 1e-8). A denominator closer to zero than 1e-8 keeps its
    sign and becomes +-1e-8, so that no row can become inf * 0 = NaN (MMSA's own formula
    can); everywhere else the result is MMSA's.

    Args:
        fused_label: [B] y_f; fused_margin: [B] delta_f; unimodal_margin: [B] delta_s.
        bound: H, the label range's half-width.

    Returns:
        [B] generated labels.

    Example:
        >>> import numpy as np
        >>> one = np.ones(1, "float32")
        >>> float(generate_label(one, one, one, 3.0)[0])  # equal margins keep y_f
        1.0
    """
    denominator = fused_margin + _MIN
    tiny = ops.abs(denominator) < _MIN
    denominator = ops.where(tiny, ops.where(denominator < 0, -_MIN, _MIN), denominator)
    alpha = unimodal_margin / denominator
    label = 0.5 * alpha * fused_label + 0.5 * (fused_label + unimodal_margin - fused_margin)
    return ops.clip(label, -bound, bound)


@keras.saving.register_keras_serializable(package="m3sa_tf")
class SelfMM(MultimodalModel):
    """Self-MM: fusion and unimodal heads trained on self-generated unimodal labels.

    Hyper-parameters (`config.model_hparams`, MMSA's names):
        text_encoder: "first_token" (MMSA: BERT's [CLS] vector, fine-tuned), "lstm"
            (an LSTM over the valid text steps, then a linear layer to `text_out`), or
            "auto": "first_token" when `config.text_path="bert"`, "lstm" on the
            precomputed-feature path, where the features are frozen and the first token
            alone would leave the text branch nothing to learn but its head.
        t_lstm_hidden_size, t_lstm_dropout, text_out: the text LSTM's width, dropout on
            its final state and output width ("lstm" only; the first-token vector keeps
            the text width, as MMSA's text_out=768 is BERT's width).
        a_lstm_hidden_size, audio_out, a_lstm_dropout; v_lstm_hidden_size, video_out,
            v_lstm_dropout: MMSA's AuViSubNet (LSTM final state, dropout, linear).
        post_{fusion,text,audio,video}_dim, post_{...}_dropout: each head is dropout,
            Dense(dim, relu) (the representation the ULGM reads), Dense(dim, relu),
            Dense(1).
        H: generated labels are clipped to [-H, H].
        centre_momentum: per-batch decay of the centres' moving averages.
        label_warmup_steps: training steps during which the unimodal labels equal the
            fused label (so the unimodal losses weigh 0), as in MMSA's first epoch,
            while the centres already gather.

    Training step (`compute_loss(..., training=True)`), with C the centres:
        1. labels from C (the fused label while warming up or while a centre needed
           has never seen a sample);
        2. C moves: the fused representation's centres by the sign of the fused label,
           each modality's by the sign of its step-1 label (zeros join neither, MMSA's
           excludeZero), each centre an EMA of its batch mean (unchanged when the batch
           has no such sample);
        3. labels from the moved C feed the loss: |fused - y_f| + sum over modalities of
           tanh(|y_m - y_f|) * |head_m - y_m|, with y_m and its weight held constant.
        Evaluation and inference read the centres and never move them.

    Outputs: `fused`, `text`, `audio`, `vision` [B] (served); `feature_fusion` and
    `feature_{m}` (the heads' first hidden layers, which the ULGM reads) are internal.
    Unimodal labels in `y` (SIMS) are ignored, as in MMSA's Self-MM.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> dims = {"text": 6, "audio": 3, "vision": 2}
        >>> cfg = M3SAConfig.for_dataset("mosi", model="self_mm",
        ...                              model_hparams=SelfMM.TINY_HPARAMS)
        >>> model = SelfMM(cfg, dims, False)
        >>> out = model(example_features(dims))
        >>> [k for k in out if not k.startswith("feature_")]
        ['fused', 'text', 'audio', 'vision']
    """

    # Small widths for tests and examples; labels are generated from the first step on.
    TINY_HPARAMS = {"t_lstm_hidden_size": 6, "text_out": 6, "a_lstm_hidden_size": 4,
                    "audio_out": 4, "v_lstm_hidden_size": 4, "video_out": 4,
                    "post_fusion_dim": 8, "post_text_dim": 4, "post_audio_dim": 4,
                    "post_video_dim": 4, "t_lstm_dropout": 0.0, "a_lstm_dropout": 0.0,
                    "v_lstm_dropout": 0.0, "post_fusion_dropout": 0.0,
                    "post_text_dropout": 0.0, "post_audio_dropout": 0.0,
                    "post_video_dropout": 0.0, "centre_momentum": 0.9,
                    "label_warmup_steps": 0}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        seed = self.config.seed
        self.text_mode = self._resolve_text_encoder(hp["text_encoder"])
        self.encoders, widths = {}, {}
        for i, m in enumerate(self.modalities):
            if m == "text" and self.text_mode == "first_token":
                widths[m] = self.input_width("text")
                continue
            prefix = m[0]
            out = hp["text_out"] if m == "text" else hp[f"{_BRANCH[m]}_out"]
            self.encoders[m] = RecurrentSubNet(
                hp[f"{prefix}_lstm_hidden_size"], out, dropout=hp[f"{prefix}_lstm_dropout"],
                seed=seed + i, **self.sublayer_kwargs(f"{_BRANCH[m]}_model"))
            widths[m] = int(out)
        self.tasks = ("fusion",) + self.modalities
        self.head_dims = {t: int(hp[f"post_{_BRANCH[t]}_dim"]) for t in self.tasks}
        self.head_dropouts, self.heads = {}, {}
        for i, t in enumerate(self.tasks):
            name = f"post_{_BRANCH[t]}"
            self.head_dropouts[t] = layers.Dropout(
                hp[f"{name}_dropout"], seed=seed + 10 + i, dtype=self.dtype_policy)
            self.heads[t] = [
                layers.Dense(self.head_dims[t], activation="relu",
                             **self.sublayer_kwargs(f"{name}_layer_1")),
                layers.Dense(self.head_dims[t], activation="relu",
                             **self.sublayer_kwargs(f"{name}_layer_2")),
                layers.Dense(1, **self.sublayer_kwargs(f"{name}_layer_3")),
            ]
        self.vector_widths = dict(widths, fusion=sum(widths.values()))
        self.label_bound = float(hp["H"])
        self.centre_momentum = float(hp["centre_momentum"])
        self.label_warmup_steps = float(hp["label_warmup_steps"])
        if not (0.0 <= self.centre_momentum < 1.0 and self.label_bound > 0
                and self.label_warmup_steps >= 0):
            raise ConfigError(
                "self_mm needs 0 <= centre_momentum < 1, H > 0 and label_warmup_steps >= 0; "
                f"got {self.centre_momentum}, {self.label_bound}, {self.label_warmup_steps}")
        self._make_centres()

    def _resolve_text_encoder(self, mode):
        if mode not in TEXT_ENCODERS:
            raise ConfigError(
                f"model_hparams.text_encoder={mode!r} for 'self_mm': expected one of "
                f"{list(TEXT_ENCODERS)}")
        if mode == "auto":
            return "first_token" if self.uses_bert else "lstm"
        return mode

    def _make_centres(self):
        # Each centre is sum / weight of a bias-corrected EMA, so that its first update
        # sets it to that batch's mean and weight 0 means "never seen a sample". Under a
        # distribution strategy every replica updates from its own batch and the updates
        # are averaged.
        def variable(name, shape):
            return self.add_weight(shape=shape, initializer="zeros", dtype="float32",
                                   trainable=False, autocast=False, aggregation="mean",
                                   name=name)

        self.centres = {
            t: {side: (variable(f"{t}_{side}_centre_sum", (self.head_dims[t],)),
                       variable(f"{t}_{side}_centre_weight", ()))
                for side in ("pos", "neg")}
            for t in self.tasks
        }
        self.label_steps = variable("label_generation_steps", ())

    # ------------------------------------------------------------------ forward
    def forward(self, sequences, masks, training=False):
        vectors = {}
        for m in self.modalities:
            if m in self.encoders:
                vectors[m] = self.encoders[m](sequences[m], masks[m], training=training)
            else:
                # The sequence is zero past the length, so an empty text gives zeros.
                vectors[m] = sequences[m][:, 0, :]
        vectors["fusion"] = ops.concatenate([vectors[m] for m in self.modalities], axis=-1)
        outputs, features = {}, {}
        for t in self.tasks:
            first, second, last = self.heads[t]
            hidden = first(self.head_dropouts[t](vectors[t], training=training))
            features[f"feature_{t}"] = hidden
            value = ops.reshape(last(second(hidden)), (-1,))
            outputs["fused" if t == "fusion" else t] = value
        outputs.update(features)
        return outputs

    # ------------------------------------------------------------------ ULGM
    def centre(self, task, side):
        """(centre [d], seen: bool scalar) of `task`'s "pos" or "neg" class."""
        total, weight = self.centres[task][side]
        return total / ops.maximum(weight, 1e-12), weight > 0

    def _margin(self, features, task):
        positive, positive_seen = self.centre(task, "pos")
        negative, negative_seen = self.centre(task, "neg")
        margin = relative_margin(features, positive, negative)
        return margin, ops.logical_and(positive_seen, negative_seen)

    def generate_unimodal_labels(self, fused_label, outputs):
        """{modality: [B] label} from the current centres; no gradient flows through.

        Args:
            fused_label: [B] y_f.
            outputs: the model's outputs (their `feature_*` entries are read).

        Each label is the fused label while warming up or while one of the four centres
        it needs has never seen a sample, MMSA's generated label otherwise."""
        fused_label = ops.reshape(ops.cast(fused_label, "float32"), (-1,))
        fused_label = ops.stop_gradient(fused_label)
        fused_margin, ready = self._margin(
            ops.stop_gradient(outputs["feature_fusion"]), "fusion")
        ready = ops.logical_and(ready, self.label_steps >= self.label_warmup_steps)
        labels = {}
        for m in self.modalities:
            margin, seen = self._margin(ops.stop_gradient(outputs[f"feature_{m}"]), m)
            label = generate_label(fused_label, fused_margin, margin, self.label_bound)
            labels[m] = ops.stop_gradient(
                ops.where(ops.logical_and(ready, seen), label, fused_label))
        return labels

    def update_centres(self, fused_label, outputs):
        """Moves the centres by one batch (steps 1-2 of the class docstring)."""
        fused_label = ops.reshape(ops.cast(fused_label, "float32"), (-1,))
        partition = dict(self.generate_unimodal_labels(fused_label, outputs),
                         fusion=fused_label)
        for t in self.tasks:
            features = ops.stop_gradient(outputs[f"feature_{t}"])
            label = ops.stop_gradient(partition[t])
            for side, member in (("pos", label > 0), ("neg", label < 0)):
                member = ops.cast(member, "float32")
                count = ops.sum(member)
                batch_mean = (ops.sum(features * ops.expand_dims(member, -1), axis=0)
                              / ops.maximum(count, 1.0))
                # A batch without such a sample leaves the centre as it was.
                decay = ops.where(count > 0, self.centre_momentum, 1.0)
                total, weight = self.centres[t][side]
                total.assign(decay * total + (1.0 - decay) * batch_mean)
                weight.assign(decay * weight + (1.0 - decay))
        self.label_steps.assign_add(1.0)

    # ------------------------------------------------------------------ loss
    def per_sample_loss(self, y, y_pred):
        """|fused - y_f| + sum_m tanh(|y_m - y_f|) |head_m - y_m|, y_m generated (MMSA's
        weighted L1; the generated labels and their weights carry no gradient)."""
        fused_label = ops.reshape(ops.cast(y["fused"], "float32"), (-1,))
        loss = ops.abs(y_pred["fused"] - fused_label)
        labels = self.generate_unimodal_labels(fused_label, y_pred)
        for m in self.modalities:
            weight = ops.tanh(ops.abs(labels[m] - fused_label))
            loss = loss + weight * ops.abs(y_pred[m] - labels[m])
        return loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Moves the centres first when training (Keras' train step passes
        training=True, its test step False), then the loss of `per_sample_loss`."""
        if training:
            self.update_centres(y["fused"], y_pred)
        return super().compute_loss(x, y, y_pred, sample_weight, training)


# MMSA's config_regression.json, self_mm: "mosi" for MOSI and MOSEI (MMSA's MOSEI entry
# differs slightly; one family keeps the defaults in one place), "sims" for CH-SIMS.
# t_lstm_* (our text LSTM), centre_momentum and label_warmup_steps are ours: the
# momentum keeps about one MMSA epoch of batches in the centres, and the warm-up is one
# MMSA epoch (MOSI 1284 clips / 16, SIMS 1368 / 32), during which MMSA generates no
# labels.
_COMMON = {"text_encoder": "auto", "t_lstm_hidden_size": 128, "t_lstm_dropout": 0.0,
           "text_out": 768, "a_lstm_hidden_size": 16, "audio_out": 16,
           "a_lstm_dropout": 0.0, "video_out": 32, "v_lstm_dropout": 0.0,
           "post_fusion_dim": 128, "post_audio_dim": 16, "post_video_dim": 32,
           "post_fusion_dropout": 0.0, "post_text_dropout": 0.1,
           "post_audio_dropout": 0.1, "post_video_dropout": 0.0}
SELF_MM_HPARAMS = {
    "mosi": dict(_COMMON, v_lstm_hidden_size=32, post_text_dim=32, H=3.0,
                 centre_momentum=0.99, label_warmup_steps=80),
    "sims": dict(_COMMON, v_lstm_hidden_size=64, post_text_dim=64, H=1.0,
                 centre_momentum=0.98, label_warmup_steps=43),
}
# MMSA trains BERT at 5e-5, the audio and vision LSTMs at 5e-3 and the rest at 1e-3
# (Adam with L2 weight decay 1e-3, 1e-2 on SIMS' audio/vision); one rate here: the
# rest's, which covers most weights on the feature path.
SELF_MM_TRAINING = {
    "mosi": {"batch_size": 16, "learning_rate": 1e-3, "weight_decay": 1e-3,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
    "sims": {"batch_size": 32, "learning_rate": 1e-3, "weight_decay": 1e-3,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
}
# MMSA's config_tune.json ranges, narrowed to what one search can cover.
SELF_MM_SEARCH_SPACE = {
    "post_fusion_dim": ("choice", [64, 128]),
    "post_text_dim": ("choice", [32, 64]),
    "a_lstm_hidden_size": ("choice", [16, 32]),
    "v_lstm_hidden_size": ("choice", [32, 64]),
    "post_fusion_dropout": ("choice", [0.0, 0.1]),
    "learning_rate": ("float", 1e-4, 1e-3, "log"),
    "weight_decay": ("float", 1e-3, 1e-2, "log"),
    "batch_size": ("choice", [16, 32]),
}

SPEC = ModelSpec(
    name="self_mm",
    title="Self-MM",
    model_class=SelfMM,
    hparams=SELF_MM_HPARAMS,
    training=SELF_MM_TRAINING,
    search_space=SELF_MM_SEARCH_SPACE,
    reference="MMSA models/multiTask/SELF_MM.py, trains/multiTask/SELF_MM.py; "
              "Yu et al. AAAI 2021",
)
