"""The M³SA model (paper §III, Fig. 1) as a Keras model, and `build_model`."""

import keras
import tensorflow as tf
from keras import ops

from m3sa_tf.config import ConfigError, M3SAConfig
from m3sa_tf.layers.contrastive_projection import ContrastiveProjection
from m3sa_tf.layers.early_fusion import EarlyFusion
from m3sa_tf.layers.key_modality_fusion import KeyModalityFusion
from m3sa_tf.layers.late_fusion import LateFusion
from m3sa_tf.layers.masking import apply_mask, lengths_to_mask
from m3sa_tf.layers.multi_scale_block import MultiScaleBlock
from m3sa_tf.layers.sentiment_head import SentimentHead
from m3sa_tf.losses.m3sa_loss import M3SALoss
from m3sa_tf.losses.regression import per_sample_regression_loss

BERT_INPUTS = ("text_token_ids", "text_segment_ids", "text_padding_mask")


def provisional_key(config, key_modality=None):
    """The key modality the model is built with: `key_modality`, else the config's;
    "auto" becomes "text" (or the first configured modality when text is absent) until
    training has chosen one on validation data."""
    key = key_modality or config.key_modality
    if key == "auto":
        key = "text" if "text" in config.modalities else config.modalities[0]
    if key not in config.modalities:
        raise ConfigError(
            f"key_modality={key!r} is not among the model's modalities {list(config.modalities)}"
        )
    return key


@keras.saving.register_keras_serializable(package="m3sa_tf")
class M3SAModel(keras.Model):
    """M³SA: multi-scale blocks, unimodal heads, key-modality fusion, fused head.

    Per modality m (config.modalities): `multi_scale_{m}` (eqs 1–7) gives X_m and F^n_m;
    `head_{m}` reads F^n_m through the readout (eqs 8–10); outside the multitask task,
    config.unimodal_head_training says how the heads learn (by default as probes: the
    gradient stops at F^n). `fusion` combines the X_m
    (config.fusion: "key" eqs 11–23, or the Fig. 8 ablations "equal", "late", "early")
    and `head_fused` reads the result (eq. 24). For the contrastive task,
    `contrastive_projection_{m}` maps the pooled X_m to the shared embedding of eq. 26.
    Early fusion has one block, `multi_scale_early`, over the joined inputs, and neither
    unimodal heads nor embeddings.

    Inputs (interfaces §2): a dict with `{m}` float [B, T_m, D_m] and `{m}_length` int
    [B] per modality; with config.text_path="bert" the text comes as `text_token_ids`,
    `text_segment_ids`, `text_padding_mask` [B, T_t] instead. Other keys (`id`, …) are
    ignored. Batch size and sequence lengths may vary from call to call.

    Outputs: a dict with `fused` [B], one `{m}` [B] per unimodal head and, for the
    contrastive task, `embedding_{m}` [B, config.contrastive_dim].

    Loss: `compute_loss` applies `self.m3sa_loss` (an `M3SALoss`, eq. 25 or eqs 26–27),
    so `model.compile(optimizer=...)` and `model.fit(dataset)` train it.

    Weights are drawn from Keras' random generator: call
    `keras.utils.set_random_seed(config.seed)` before building for reproducible weights;
    the dropout layers are seeded from config.seed.

    Example:
        >>> cfg = M3SAConfig.for_dataset("mosi", hidden_sizes={"text": 8, "audio": 4,
        ...     "vision": 4}, fusion_dim=8, num_heads=2, n_scales=2, head_hidden_size=4)
        >>> model = build_model(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> sorted(model(example_features({"text": 6, "audio": 3, "vision": 2})))
        ['audio', 'embedding_audio', 'embedding_text', 'embedding_vision', 'fused', 'text', 'vision']
    """

    def __init__(self, config, feature_dims, has_unimodal_labels, key_modality=None,
                 text_encoder=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = M3SAConfig.from_dict(config)
        self.config = config
        self.feature_dims = {m: int(v) for m, v in dict(feature_dims).items()}
        self.has_unimodal_labels = bool(has_unimodal_labels)
        self.key_modality = provisional_key(config, key_modality)
        self.task = config.resolve_task(self.has_unimodal_labels)
        self.modalities = tuple(config.modalities)
        self.uses_bert = config.text_path == "bert" and "text" in self.modalities
        needed = [m for m in self.modalities if not (m == "text" and self.uses_bert)]
        missing = [m for m in needed if m not in self.feature_dims]
        if missing:
            raise ConfigError(
                f"feature_dims lacks {missing}; expected a width for each of {needed}, "
                f"got {self.feature_dims}"
            )

        seed = config.seed
        self.text_encoder = None
        if self.uses_bert:
            from m3sa_tf.text.bert_text_encoder import BertTextEncoder, load_bert_backbone

            if text_encoder is None:
                text_encoder = BertTextEncoder(load_bert_backbone(config.bert_preset),
                                               name="text_encoder")
            elif isinstance(text_encoder, dict):
                text_encoder = keras.saving.deserialize_keras_object(text_encoder)
            text_encoder.trainable = config.bert_trainable
            self.text_encoder = text_encoder

        def block(name, width):
            return MultiScaleBlock(
                hidden_size=width, n_scales=config.n_scales,
                channel_ratio=config.channel_ratio, extractor=config.extractor,
                multi_scale=config.multi_scale, excitation_gate=config.excitation_gate,
                name=name,
            )

        def head(name, offset):
            return SentimentHead(hidden_size=config.head_hidden_size, dropout=config.dropout,
                                 readout=config.readout, seed=seed + 10 * offset, name=name)

        self.blocks = {}
        self.heads = {}
        self.projections = {}
        if config.fusion == "early":
            self.fusion = EarlyFusion(self.modalities, name="fusion")
            self.early_block = block("multi_scale_early", config.fusion_dim)
        else:
            for i, m in enumerate(self.modalities):
                self.blocks[m] = block(f"multi_scale_{m}", config.hidden_sizes[m])
                self.heads[m] = head(f"head_{m}", i + 1)
                if self.task == "contrastive":
                    self.projections[m] = ContrastiveProjection(
                        config.contrastive_dim, readout=config.readout,
                        name=f"contrastive_projection_{m}",
                    )
            if config.fusion == "late":
                self.fusion = LateFusion(self.modalities, readout=config.readout, name="fusion")
            else:
                self.fusion = KeyModalityFusion(
                    self.modalities, self.key_modality, fusion_dim=config.fusion_dim,
                    num_heads=config.num_heads, dropout=config.dropout,
                    strategy=config.fusion, readout=config.readout, seed=seed + 100,
                    name="fusion",
                )
        self.fused_head = head("head_fused", 0)
        self.m3sa_loss = M3SALoss(config, self.has_unimodal_labels)
        # Logged as `fused_loss` / `val_fused_loss`: the fused head's loss alone does
        # not shrink when the subtask weights decay, so it can pick the best epoch.
        self.fused_loss_tracker = keras.metrics.Mean(name="fused_loss")

    # ------------------------------------------------------------------ inputs
    def input_keys(self):
        """The feature keys `call` reads."""
        keys = []
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                keys.extend(BERT_INPUTS)
            else:
                keys.extend([m, f"{m}_length"])
        return keys

    def input_signature(self):
        """A dict of `tf.TensorSpec` with dynamic batch and length, for `tf.function`,
        `model.export(..., input_signature=[model.input_signature()])` and serving."""
        spec = {}
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                spec["text_token_ids"] = tf.TensorSpec([None, None], tf.int32, "text_token_ids")
                spec["text_segment_ids"] = tf.TensorSpec([None, None], tf.int32,
                                                         "text_segment_ids")
                spec["text_padding_mask"] = tf.TensorSpec([None, None], tf.bool,
                                                          "text_padding_mask")
            else:
                spec[m] = tf.TensorSpec([None, None, self.feature_dims[m]], tf.float32, m)
                spec[f"{m}_length"] = tf.TensorSpec([None], tf.int32, f"{m}_length")
        return spec

    @property
    def _default_save_signature(self):
        # Keras derives the SavedModel's default signature from the build shapes, with
        # every input float32 and fixed lengths; the model's real signature is dynamic
        # and has int32 lengths and token ids.
        @tf.function(input_signature=[self.input_signature()])
        def serving_default(features):
            return self(features, training=False)

        return serving_default

    def _sequences_and_masks(self, features, training):
        missing = [k for k in self.input_keys() if k not in features]
        if missing:
            raise KeyError(
                f"M3SAModel input lacks {missing}; expected the features {self.input_keys()} "
                f"(got {sorted(features)})"
            )
        sequences, masks = {}, {}
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                mask = ops.cast(features["text_padding_mask"], "bool")
                sequence = self.text_encoder(
                    features["text_token_ids"], features["text_segment_ids"], mask,
                    training=training,
                )
            else:
                sequence = ops.cast(features[m], "float32")
                if sequence.shape[-1] is not None and sequence.shape[-1] != self.feature_dims[m]:
                    raise ValueError(
                        f"feature {m!r} has width {sequence.shape[-1]}; the model was built "
                        f"for {self.feature_dims[m]}"
                    )
                mask = lengths_to_mask(features[f"{m}_length"], ops.shape(sequence)[1])
                sequence = apply_mask(sequence, mask)
            sequences[m], masks[m] = sequence, mask
        return sequences, masks

    # ------------------------------------------------------------------ forward
    def build(self, features_shape):
        # Creating the weights needs one pass; a tiny concrete batch does it whether the
        # model is built by a first call or by `load_model` from its build config.
        self._build_pass(features_shape)
        self.built = True

    def get_build_config(self):
        # The weights' shapes follow from the config alone (dynamic batch and lengths).
        return {"features_shape": {}}

    def build_from_config(self, config):
        self.build({})

    def _build_pass(self, features_shape):
        dummy = {}
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                for k in BERT_INPUTS:
                    dtype = "bool" if k == "text_padding_mask" else "int32"
                    dummy[k] = ops.ones((1, 2), dtype=dtype)
            else:
                dummy[m] = ops.zeros((1, 2, self.feature_dims[m]))
                dummy[f"{m}_length"] = ops.ones((1,), dtype="int32")
        self.call(dummy, training=False)

    def call(self, features, training=False):
        sequences, masks = self._sequences_and_masks(features, training)
        config = self.config
        outputs = {}
        if config.fusion == "early":
            joined, joined_mask = self.fusion(sequences, masks)
            fused_sequence, _ = self.early_block(joined, joined_mask, training=training)
            outputs["fused"] = self.fused_head(fused_sequence, joined_mask, training=training)
            return outputs

        high_level = {}
        probe_heads = (self.task != "multitask"
                       and config.unimodal_head_training == "probe")
        for m in self.modalities:
            x_m, last_scale = self.blocks[m](sequences[m], masks[m], training=training)
            high_level[m] = x_m
            if probe_heads:
                # The heads learn from F^n without changing what eq. 27 trains.
                last_scale = ops.stop_gradient(last_scale)
            outputs[m] = self.heads[m](last_scale, masks[m], training=training)
        if config.fusion == "late":
            fused = self.fusion(high_level, masks)
            outputs["fused"] = self.fused_head(fused, training=training)
        elif config.fusion == "equal":
            fused = self.fusion(high_level, masks, training=training)
            outputs["fused"] = self.fused_head(fused, training=training)
        else:
            fused = self.fusion(high_level, masks, training=training)
            outputs["fused"] = self.fused_head(fused, masks[self.key_modality],
                                               training=training)
        for m, projection in self.projections.items():
            outputs[f"embedding_{m}"] = projection(high_level[m], masks[m])
        # Keep the documented key order: fused, unimodal heads, embeddings.
        return {k: outputs[k] for k in
                ["fused"] + [k for k in outputs if k != "fused"]}

    # ------------------------------------------------------------------ loss
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Eq. 25 or eqs 26–27 (`self.m3sa_loss`) plus any regularisation losses.

        Both parts are already divided by the number of replicas under a distribution
        strategy (Keras' convention, which `train_step` undoes for the logged value).
        """
        loss = self.m3sa_loss(y, y_pred, sample_weight)
        if isinstance(y, dict) and "fused" in y and "fused" in y_pred:
            self.fused_loss_tracker.update_state(
                per_sample_regression_loss(self.config.regression_loss, y["fused"],
                                           y_pred["fused"]),
                sample_weight=sample_weight,
            )
        for extra in self.losses:
            loss = loss + self._aggregate_additional_loss(extra)
        return loss

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(
            config=self.config.to_dict(),
            feature_dims=dict(self.feature_dims),
            has_unimodal_labels=self.has_unimodal_labels,
            key_modality=self.key_modality,
        )
        if self.text_encoder is not None:
            config["text_encoder"] = keras.saving.serialize_keras_object(self.text_encoder)
        return config


def build_model(config, feature_dims, has_unimodal_labels, key_modality=None):
    """The M³SA model for `config` and the data's feature widths (not compiled).

    Args:
        config: `M3SAConfig`.
        feature_dims: {"text": D_t, "audio": D_a, "vision": D_v} (DatasetInfo.feature_dims).
        has_unimodal_labels: the data has y_T, y_A, y_V (selects the task when "auto").
        key_modality: overrides config.key_modality; "auto" builds with a provisional
            key (text when present), which training replaces after its warm-up.

    Returns:
        An `M3SAModel` whose weights exist (built on a one-sample dummy batch).
    """
    model = M3SAModel(config, feature_dims, has_unimodal_labels, key_modality=key_modality)
    model.build({})
    return model


def example_features(feature_dims, batch_size=2, lengths=None, seed=0, modalities=None):
    """A small random feature dict of interfaces §2 (for examples and smoke checks).

    `lengths` maps modality -> padded length T_m (default 4); valid lengths are drawn in
    [0, T_m]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = lengths or {}
    features = {}
    for m in modalities or feature_dims:
        steps = lengths.get(m, 4)
        valid = rng.integers(0, steps + 1, size=batch_size).astype("int32")
        values = rng.normal(size=(batch_size, steps, feature_dims[m])).astype("float32")
        values *= (np.arange(steps)[None, :, None] < valid[:, None, None])
        features[m] = values
        features[f"{m}_length"] = valid
    return features
