"""`MultimodalModel`: what every model of M³SA-TF shares, M³SA and the baselines alike.

A model of this project takes one feature dict and returns one output dict, so that the
data pipeline, the training protocol, the metrics, export and the tuner never need to
know which architecture they are driving:

- inputs (interfaces §2): `{m}` float [B, T_m, D_m] and `{m}_length` int [B] for every
  modality m of `config.modalities`; with `config.text_path="bert"` the text comes as
  `text_token_ids`, `text_segment_ids` (int) and `text_padding_mask` (bool) [B, T_t];
  with `config.text_path="embedding"` as `text_token_ids` int32 [B, T_t] and
  `text_length` int32 [B], looked up in the model's own word-embedding table
  (`word_embedding`, `config.vocab_size` × `config.word_embedding_dim`). Other keys (`id`, …) are ignored. Batch size and lengths may change between calls.
- outputs: `fused` [B] always; `text`/`audio`/`vision` [B] for models with unimodal
  heads; anything else (embeddings, reconstructions) is auxiliary: it feeds the model's
  own loss and is not served.
- loss: the model computes its own (`compute_loss` calls `task_loss`), so
  `model.compile(optimizer=...)` plus `model.fit(...)` trains any of them, and logs
  `fused_loss`, the fused head's L1 error, which picks the best epoch for every model.

Subclasses implement `forward(sequences, masks, training)` on masked, float sequences
(the base class turns lengths into masks, zeros the padding, runs the BERT encoder
when the text path is "bert" and looks the token ids up when it is "embedding"), and override `task_loss` when their loss is not the
L1 error of the fused output.
"""

import keras
import tensorflow as tf
from keras import ops

from m3sa_tf.config import ConfigError, M3SAConfig
from m3sa_tf.layers.masking import apply_mask, at_least_one_step, lengths_to_mask
from m3sa_tf.losses.regression import per_sample_regression_loss

BERT_INPUTS = ("text_token_ids", "text_segment_ids", "text_padding_mask")
# The text inputs of the "embedding" text path.
EMBEDDING_INPUTS = ("text_token_ids", "text_length")
# The outputs a served model answers with; any other output is internal to training.
SERVED_OUTPUTS = ("fused", "text", "audio", "vision")


class _PerSampleMean(keras.losses.Loss):
    """Reduces a precomputed per-sample loss (passed as `y_pred`) as every Keras loss
    is reduced: weighted, averaged over the batch, divided by the replicas in sync."""

    def call(self, y_true, y_pred):
        return y_pred


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MultimodalModel(keras.Model):
    """Base class of the model zoo (see the module docstring for the contract).

    Args:
        config: `M3SAConfig` (or its dict); the model reads its architecture fields,
            `config.model_hparams`, `modalities`, `text_path` and `seed`; for the
            "embedding" text path also `vocab_size` (which must be set: the training
            protocol fills it in from the dataset, `pipelines.protocol`) and
            `word_embedding_dim`.
        feature_dims: {modality: D_m}, the widths of the data's feature sequences
            (the text's is not needed on the "bert" and "embedding" text paths).
        has_unimodal_labels: whether the data carries y_T, y_A, y_V.
        text_encoder: a built `BertTextEncoder` (or its serialised dict) for the BERT
            text path; loaded from `config.bert_preset` when None.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, …). A `dtype` policy given
            here reaches every sublayer made through `sublayer_kwargs`. Under a mixed
            policy ("mixed_float16" on a GPU, "mixed_bfloat16"; given here or set
            with `keras.mixed_precision.set_global_policy`) the layers compute in half
            precision on float32 variables, and the outputs, the loss and the metrics
            are float32 (tests/model/test_mixed_precision.py).

    Subclasses call `super().__init__` first, create their layers with
    `**self.sublayer_kwargs(name)`, and implement `forward`.
    """

    def __init__(self, config, feature_dims, has_unimodal_labels, text_encoder=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = M3SAConfig.from_dict(config)
        self.config = config
        self.feature_dims = {m: int(v) for m, v in dict(feature_dims).items()}
        self.has_unimodal_labels = bool(has_unimodal_labels)
        self.modalities = tuple(config.modalities)
        self.uses_bert = config.text_path == "bert" and "text" in self.modalities
        self.uses_word_embedding = (config.text_path == "embedding"
                                    and "text" in self.modalities)
        needed = [m for m in self.modalities
                  if not (m == "text" and (self.uses_bert or self.uses_word_embedding))]
        missing = [m for m in needed if m not in self.feature_dims]
        if missing:
            raise ConfigError(
                f"feature_dims lacks {missing}; expected a width for each of {needed}, "
                f"got {self.feature_dims}"
            )
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
        self.word_embedding = None
        if self.uses_word_embedding:
            if config.vocab_size is None:
                raise ConfigError(
                    "text_path='embedding' needs vocab_size (the rows of the word-embedding "
                    "table); the training protocol sets it to the dataset's vocabulary "
                    "(pipelines.protocol.resolve_vocab_size), a model built directly needs "
                    "it in its config"
                )
            # Rows are token ids; id 0 (padding) is an ordinary row, hidden by the mask.
            self.word_embedding = keras.layers.Embedding(
                int(config.vocab_size), int(config.word_embedding_dim),
                **self.sublayer_kwargs("word_embedding"),
            )
        # Logged as `fused_loss` / `val_fused_loss`: comparable across models and
        # independent of any decaying subtask weight, so it can pick the best epoch.
        # Both in float32 whatever the model's dtype policy (mixed precision).
        self.fused_loss_tracker = keras.metrics.Mean(name="fused_loss", dtype="float32")
        self._loss_reducer = _PerSampleMean(name="task_loss", dtype="float32")

    # ------------------------------------------------------------------ helpers
    def sublayer_kwargs(self, name):
        """`name` plus this model's dtype policy, for the layers the model creates."""
        return {"name": name, "dtype": self.dtype_policy}

    def input_width(self, modality):
        """The width of `modality`'s sequence as `forward` sees it."""
        if modality == "text" and self.uses_bert:
            return int(self.text_encoder.hidden_dim)
        if modality == "text" and self.uses_word_embedding:
            return int(self.config.word_embedding_dim)
        return self.feature_dims[modality]

    # ------------------------------------------------------------------ inputs
    def input_keys(self):
        """The feature keys `call` reads."""
        keys = []
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                keys.extend(BERT_INPUTS)
            elif m == "text" and self.uses_word_embedding:
                keys.extend(EMBEDDING_INPUTS)
            else:
                keys.extend([m, f"{m}_length"])
        return keys

    def input_signature(self):
        """A dict of `tf.TensorSpec` with dynamic batch and length, for `tf.function`,
        `model.export(..., input_signature=[model.input_signature()])` and serving."""
        spec = {}
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                for key in BERT_INPUTS:
                    dtype = tf.bool if key == "text_padding_mask" else tf.int32
                    spec[key] = tf.TensorSpec([None, None], dtype, key)
            elif m == "text" and self.uses_word_embedding:
                spec["text_token_ids"] = tf.TensorSpec([None, None], tf.int32, "text_token_ids")
                spec["text_length"] = tf.TensorSpec([None], tf.int32, "text_length")
            else:
                spec[m] = tf.TensorSpec([None, None, self.feature_dims[m]], tf.float32, m)
                spec[f"{m}_length"] = tf.TensorSpec([None], tf.int32, f"{m}_length")
        return spec

    def served_output_names(self):
        """The outputs a served model returns: `fused` and the unimodal heads it has."""
        outputs = self(self._dummy_features(), training=False)
        return [k for k in SERVED_OUTPUTS if k in outputs]

    @property
    def _default_save_signature(self):
        # Keras derives the SavedModel's default signature from the build shapes, with
        # every input float32 and fixed lengths; the real signature is dynamic and has
        # int32 lengths and token ids.
        @tf.function(input_signature=[self.input_signature()])
        def serving_default(features):
            return self(features, training=False)

        return serving_default

    def encode_inputs(self, features, training=False):
        """(sequences, masks): per modality a float32 [B, T, D] sequence with zeros past
        its length and its bool [B, T] mask (BERT's output for the "bert" text path,
        the looked-up word vectors for the "embedding" one)."""
        missing = [k for k in self.input_keys() if k not in features]
        if missing:
            raise KeyError(
                f"{type(self).__name__} input lacks {missing}; expected the features "
                f"{self.input_keys()} (got {sorted(features)})"
            )
        sequences, masks = {}, {}
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                mask = ops.cast(features["text_padding_mask"], "bool")
                sequence = self.text_encoder(
                    features["text_token_ids"], features["text_segment_ids"], mask,
                    training=training,
                )
            elif m == "text" and self.uses_word_embedding:
                ids = self._checked_token_ids(features["text_token_ids"])
                mask = lengths_to_mask(features["text_length"], ops.shape(ids)[1])
                sequence = apply_mask(ops.cast(self.word_embedding(ids), "float32"), mask)
            else:
                sequence = ops.cast(features[m], "float32")
                if sequence.shape[-1] is not None and sequence.shape[-1] != self.feature_dims[m]:
                    raise ValueError(
                        f"feature {m!r} has width {sequence.shape[-1]}; the model was built "
                        f"for {self.feature_dims[m]}"
                    )
                mask = lengths_to_mask(features[f"{m}_length"], ops.shape(sequence)[1])
                sequence = apply_mask(sequence, mask)
            sequences[m], masks[m] = at_least_one_step(sequence, mask)
        return sequences, masks

    def _checked_token_ids(self, ids):
        """The token ids as int32, after checking that each indexes a row of the table.

        An id outside [0, vocab_size) means the table is smaller than the data's id
        space (a wrong `vocab_size`), so the call stops with an InvalidArgumentError
        naming the table size rather than reading a row that does not exist. Where
        assertions are compiled away (XLA, the default for `fit` on a GPU), such an id
        is clipped to the nearest valid row (0 or vocab_size - 1) instead: never a wrap
        and never a read outside the table. Padding ids (0) are always valid.
        """
        ids = tf.cast(ids, tf.int32)
        rows = int(self.config.vocab_size)
        checks = [
            tf.debugging.assert_non_negative(
                ids, message="text_token_ids holds a negative token id"),
            tf.debugging.assert_less(
                ids, tf.constant(rows, tf.int32),
                message=f"text_token_ids holds an id >= vocab_size={rows}, the rows of "
                        "the word-embedding table; set vocab_size to the data's id space"),
        ]
        with tf.control_dependencies(checks):
            return tf.clip_by_value(ids, 0, rows - 1)

    # ------------------------------------------------------------------ forward
    def build(self, features_shape=None):
        # Creating the weights needs one pass; a tiny concrete batch does it whether the
        # model is built by a first call or by `load_model` from its build config.
        self.call(self._dummy_features(), training=False)
        self.built = True

    def get_build_config(self):
        # The weights' shapes follow from the config alone (dynamic batch and lengths).
        return {"features_shape": {}}

    def build_from_config(self, config):
        self.build({})

    def _dummy_features(self):
        dummy = {}
        for m in self.modalities:
            if m == "text" and self.uses_bert:
                for k in BERT_INPUTS:
                    dtype = "bool" if k == "text_padding_mask" else "int32"
                    dummy[k] = ops.ones((1, 2), dtype=dtype)
            elif m == "text" and self.uses_word_embedding:
                dummy["text_token_ids"] = ops.zeros((1, 2), dtype="int32")
                dummy["text_length"] = ops.ones((1,), dtype="int32")
            else:
                dummy[m] = ops.zeros((1, 2, self.feature_dims[m]))
                dummy[f"{m}_length"] = ops.ones((1,), dtype="int32")
        return dummy

    def call(self, features, training=False):
        sequences, masks = self.encode_inputs(features, training)
        outputs = self.forward(sequences, masks, training=training)
        if "fused" not in outputs:
            raise KeyError(f"{type(self).__name__}.forward returned no 'fused' output")
        # Losses and metrics run in float32 whatever the compute dtype (mixed precision).
        ordered = ["fused"] + [k for k in outputs if k != "fused"]
        return {k: ops.cast(outputs[k], "float32") for k in ordered}

    def forward(self, sequences, masks, training=False):
        """Maps masked sequences to the output dict; implemented by each model."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    # ------------------------------------------------------------------ loss
    def per_sample_loss(self, y, y_pred):
        """The model's training loss per sample, [B]; by default the L1 error of
        `fused`. Models with subtasks override it."""
        return per_sample_regression_loss("l1", y["fused"], y_pred["fused"])

    def task_loss(self, y, y_pred, sample_weight=None):
        """`per_sample_loss` averaged over the batch the way a Keras loss is (sample
        weights, and the division by the number of replicas under a strategy)."""
        per_sample = self.per_sample_loss(y, y_pred)
        return self._loss_reducer(ops.zeros_like(per_sample), per_sample, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """`task_loss` plus any regularisation losses; also tracks `fused_loss`."""
        loss = self.task_loss(y, y_pred, sample_weight)
        if isinstance(y, dict) and "fused" in y and "fused" in y_pred:
            self.fused_loss_tracker.update_state(
                per_sample_regression_loss("l1", y["fused"], y_pred["fused"]),
                sample_weight=sample_weight,
            )
        for extra in self.losses:
            loss = loss + self._aggregate_additional_loss(extra)
        return loss

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        config = super().get_config()
        config.update(
            config=self.config.model_dict(),
            feature_dims=dict(self.feature_dims),
            has_unimodal_labels=self.has_unimodal_labels,
        )
        if self.text_encoder is not None:
            config["text_encoder"] = keras.saving.serialize_keras_object(self.text_encoder)
        return config
