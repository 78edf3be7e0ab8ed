"""MISA: modality-invariant and -specific representations.

After MMSA's `MISA` (Hazarika et al., "MISA: Modality-Invariant and -Specific
Representations for Multimodal Sentiment Analysis", ACM MM 2020): every modality becomes
one utterance vector (audio and vision through a two-layer bidirectional LSTM with a
layer norm between the layers, the text as the mean of its BERT sequence, or through the
same kind of LSTM), projected to a common width. A shared encoder (one for all
modalities) and a private encoder per modality split each vector into an invariant and
a specific part; a one-layer transformer attends over the six parts and an MLP reads
their concatenation. Training adds to the regression loss a central moment discrepancy
between the shared parts, a soft orthogonality between the parts, and the
reconstruction of every projected vector from its two parts.
"""

import itertools

import keras
from keras import layers, ops

from m3sa_tf.config import ConfigError
from m3sa_tf.layers.masking import masked_mean
from m3sa_tf.losses.cmd_loss import central_moment_discrepancy, difference_loss
from m3sa_tf.losses.regression import per_sample_regression_loss
from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.registry import ModelSpec

TEXT_ENCODERS = ("mean", "lstm")
# PyTorch's LayerNorm epsilon, which MISA's layer norms keep.
_LAYER_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MISAStackedBiLSTM(keras.layers.Layer):
    """MISA's utterance encoder: a bidirectional LSTM, a layer norm of its sequence, a
    second bidirectional LSTM, and the final states of both LSTMs in both directions.

    Args:
        hidden_size: width of every LSTM direction (MISA: the input width).

    Call arguments:
        sequence: [B, T, D] float.
        mask: [B, T] bool, right-padded; a row without steps gives zero states.

    Returns:
        [B, 4 * hidden_size]: first layer forward/backward, second layer forward/backward.

    Example:
        >>> import numpy as np
        >>> net = MISAStackedBiLSTM(3)
        >>> tuple(net(np.ones((2, 5, 4), "float32"), np.ones((2, 5), bool)).shape)
        (2, 12)
    """

    def __init__(self, hidden_size, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)

        def bidirectional(name, return_sequences):
            cell = layers.LSTM(self.hidden_size, return_sequences=return_sequences,
                               return_state=True, dtype=self.dtype_policy)
            return layers.Bidirectional(cell, dtype=self.dtype_policy, name=name)

        self.rnn1 = bidirectional("rnn_1", True)
        self.norm = layers.LayerNormalization(epsilon=_LAYER_NORM_EPSILON,
                                              dtype=self.dtype_policy, name="layer_norm")
        self.rnn2 = bidirectional("rnn_2", False)

    def build(self, sequence_shape, mask_shape=None):
        self.rnn1.build((None, None, sequence_shape[-1]))
        self.norm.build((None, None, 2 * self.hidden_size))
        self.rnn2.build((None, None, 2 * self.hidden_size))

    def call(self, sequence, mask, training=False):
        # The mask keeps both directions to the valid steps, as MMSA's packed sequences do.
        hidden, forward1, _, backward1, _ = self.rnn1(sequence, mask=mask, training=training)
        _, forward2, _, backward2, _ = self.rnn2(self.norm(hidden), mask=mask,
                                                 training=training)
        return ops.concatenate([forward1, backward1, forward2, backward2], axis=-1)

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return (sequence_shape[0], 4 * self.hidden_size)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size)
        return config


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MISAFusionTransformer(keras.layers.Layer):
    """One post-norm transformer encoder layer over a short, fully valid token sequence
    (PyTorch's `nn.TransformerEncoderLayer` defaults: ReLU feed-forward, dropout on the
    attention weights and after each sub-layer, layer norm after each residual sum).

    Args:
        width: token width (the model's hidden size); divisible by `num_heads`.
        num_heads: attention heads.
        intermediate_dim: width of the feed-forward layer.
        dropout: dropout rate.
        seed: dropout seed.

    Call arguments:
        tokens: [B, N, width] float.

    Returns:
        [B, N, width].

    Example:
        >>> import numpy as np
        >>> tuple(MISAFusionTransformer(4, 2, 8)(np.ones((2, 6, 4), "float32")).shape)
        (2, 6, 4)
    """

    def __init__(self, width, num_heads=2, intermediate_dim=2048, dropout=0.1, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.width = int(width)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.seed = seed

        def seed_at(offset):
            return None if seed is None else seed + offset

        policy = self.dtype_policy
        self.attention = layers.MultiHeadAttention(
            self.num_heads, self.width // self.num_heads, dropout=self.dropout,
            seed=seed_at(0), dtype=policy, name="self_attention")
        self.attention_dropout = layers.Dropout(self.dropout, seed=seed_at(1), dtype=policy)
        self.attention_norm = layers.LayerNormalization(
            epsilon=_LAYER_NORM_EPSILON, dtype=policy, name="attention_norm")
        self.feed_forward_in = layers.Dense(self.intermediate_dim, activation="relu",
                                            dtype=policy, name="feed_forward_1")
        self.feed_forward_dropout = layers.Dropout(self.dropout, seed=seed_at(2),
                                                   dtype=policy)
        self.feed_forward_out = layers.Dense(self.width, dtype=policy, name="feed_forward_2")
        self.output_dropout = layers.Dropout(self.dropout, seed=seed_at(3), dtype=policy)
        self.output_norm = layers.LayerNormalization(
            epsilon=_LAYER_NORM_EPSILON, dtype=policy, name="output_norm")

    def build(self, tokens_shape):
        shape = (None, None, self.width)
        self.attention.build(shape, shape)
        self.attention_norm.build(shape)
        self.feed_forward_in.build(shape)
        self.feed_forward_out.build((None, None, self.intermediate_dim))
        self.output_norm.build(shape)

    def call(self, tokens, training=False):
        attended = self.attention(tokens, tokens, training=training)
        tokens = self.attention_norm(
            tokens + self.attention_dropout(attended, training=training))
        hidden = self.feed_forward_dropout(self.feed_forward_in(tokens), training=training)
        hidden = self.output_dropout(self.feed_forward_out(hidden), training=training)
        return self.output_norm(tokens + hidden)

    def compute_output_shape(self, tokens_shape):
        return tuple(tokens_shape)

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_heads=self.num_heads,
                      intermediate_dim=self.intermediate_dim, dropout=self.dropout,
                      seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MISA(MultimodalModel):
    """Shared and private utterance representations, fused by a transformer.

    Hyper-parameters (`config.model_hparams`, MMSA's names where it has them):
    `hidden_size` common width of every representation; `dropout` of the output MLP;
    `text_encoder` "mean" (the masked mean of the text sequence, MMSA's BERT path) or
    "lstm" (MISA's stacked bidirectional LSTM, its non-BERT path); `transformer_heads`,
    `transformer_ff_dim`, `transformer_dropout` of the fusion layer (PyTorch's defaults
    in MMSA); the loss weights `diff_weight`, `sim_weight`, `recon_weight` and
    `cmd_moments`, the highest moment the CMD matches.

    Outputs: `fused` [B]; internal to the loss: `projected_{m}`, `shared_{m}`,
    `private_{m}` and `reconstructed_{m}` [B, hidden_size] per modality.

    Loss (`per_sample_loss`): squared error of `fused` + recon_weight · the mean squared
    reconstruction error of the projected vectors (both per sample) + diff_weight · the
    soft orthogonality of the parts + sim_weight · the CMD between the shared parts. The
    last two are statistics of the whole batch: every sample carries the batch's value,
    so the batch mean that `task_loss` takes is exactly MMSA's loss (docs/baselines.md).

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("mosi", model="misa",
        ...                              model_hparams=MISA.TINY_HPARAMS)
        >>> model = MISA(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> model(example_features({"text": 6, "audio": 3, "vision": 2}))["fused"].shape
        TensorShape([2])
    """

    # Small widths for tests and examples.
    TINY_HPARAMS = {"hidden_size": 8, "dropout": 0.0, "transformer_ff_dim": 16,
                    "transformer_dropout": 0.0}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        seed = self.config.seed
        width = int(hp["hidden_size"])
        heads = int(hp["transformer_heads"])
        if hp["text_encoder"] not in TEXT_ENCODERS:
            raise ConfigError(f"model_hparams.text_encoder={hp['text_encoder']!r} for "
                              f"'misa': expected one of {list(TEXT_ENCODERS)}")
        if width % heads:
            raise ConfigError(f"model_hparams.hidden_size={width} for 'misa' must be a "
                              f"multiple of transformer_heads={heads}")
        self.hidden_size = width
        self.encoders = {}
        for m in self.modalities:
            if m == "text" and hp["text_encoder"] == "mean":
                continue  # MMSA's BERT path: the masked mean, no recurrent encoder
            self.encoders[m] = MISAStackedBiLSTM(self.input_width(m),
                                                 **self.sublayer_kwargs(f"{m}_rnn"))
        self.projections, self.project_norms, self.private, self.reconstruct = {}, {}, {}, {}
        for m in self.modalities:
            self.projections[m] = layers.Dense(width, activation="relu",
                                               **self.sublayer_kwargs(f"project_{m}"))
            self.project_norms[m] = layers.LayerNormalization(
                epsilon=_LAYER_NORM_EPSILON, **self.sublayer_kwargs(f"project_{m}_norm"))
            self.private[m] = layers.Dense(width, activation="sigmoid",
                                           **self.sublayer_kwargs(f"private_{m}"))
            self.reconstruct[m] = layers.Dense(width, **self.sublayer_kwargs(f"recon_{m}"))
        self.shared = layers.Dense(width, activation="sigmoid",
                                   **self.sublayer_kwargs("shared"))
        self.transformer = MISAFusionTransformer(
            width, heads, hp["transformer_ff_dim"], hp["transformer_dropout"],
            seed=seed + 10, **self.sublayer_kwargs("fusion_transformer"))
        self.fusion_hidden = layers.Dense(3 * width, **self.sublayer_kwargs("fusion_layer_1"))
        self.fusion_dropout = layers.Dropout(hp["dropout"], seed=seed + 20,
                                             dtype=self.dtype_policy)
        self.fusion_out = layers.Dense(1, **self.sublayer_kwargs("fusion_layer_3"))

    def utterance_vector(self, modality, sequence, mask, training=False):
        """One vector per clip for `modality`, before the projection."""
        if modality in self.encoders:
            return self.encoders[modality](sequence, mask, training=training)
        return masked_mean(sequence, mask)

    def forward(self, sequences, masks, training=False):
        outputs = {}
        privates, shareds = [], []
        for m in self.modalities:
            vector = self.utterance_vector(m, sequences[m], masks[m], training)
            projected = self.project_norms[m](self.projections[m](vector))
            private = self.private[m](projected)
            shared = self.shared(projected)
            outputs[f"projected_{m}"] = projected
            outputs[f"private_{m}"] = private
            outputs[f"shared_{m}"] = shared
            outputs[f"reconstructed_{m}"] = self.reconstruct[m](private + shared)
            privates.append(private)
            shareds.append(shared)
        tokens = self.transformer(ops.stack(privates + shareds, axis=1), training=training)
        hidden = ops.reshape(tokens, (-1, 2 * len(self.modalities) * self.hidden_size))
        # MMSA's order inside the MLP: linear, dropout, ReLU.
        hidden = ops.relu(self.fusion_dropout(self.fusion_hidden(hidden), training=training))
        outputs["fused"] = ops.reshape(self.fusion_out(hidden), (-1,))
        return outputs

    # ------------------------------------------------------------------ loss
    def regularisation_terms(self, y_pred):
        """{"recon": [B], "diff": scalar, "sim": scalar}, unweighted, from the outputs.

        recon: mean over the modalities of each clip's mean squared reconstruction error;
        diff: the soft orthogonality summed over every (private, shared) pair of a
        modality and every pair of privates; sim: the CMD averaged over the pairs of
        shared parts (0 with one modality)."""
        hp = self.config.model_hparams
        recon = ops.mean(ops.stack([
            ops.mean(ops.square(y_pred[f"reconstructed_{m}"] - y_pred[f"projected_{m}"]),
                     axis=-1)
            for m in self.modalities], axis=0), axis=0)
        diff = ops.zeros(())
        for m in self.modalities:
            diff = diff + difference_loss(y_pred[f"private_{m}"], y_pred[f"shared_{m}"])
        pairs = list(itertools.combinations(self.modalities, 2))
        for a, b in pairs:
            diff = diff + difference_loss(y_pred[f"private_{a}"], y_pred[f"private_{b}"])
        sim = ops.zeros(())
        for a, b in pairs:
            sim = sim + central_moment_discrepancy(y_pred[f"shared_{a}"],
                                                   y_pred[f"shared_{b}"],
                                                   hp["cmd_moments"])
        if pairs:
            sim = sim / len(pairs)
        return {"recon": recon, "diff": diff, "sim": sim}

    def per_sample_loss(self, y, y_pred):
        hp = self.config.model_hparams
        terms = self.regularisation_terms(y_pred)
        task = per_sample_regression_loss("mse", y["fused"], y_pred["fused"])
        # The batch statistics are added to every sample: the batch mean of a constant is
        # the constant, so the reduced loss equals MMSA's sum of batch-level terms.
        batch_terms = hp["diff_weight"] * terms["diff"] + hp["sim_weight"] * terms["sim"]
        return task + hp["recon_weight"] * terms["recon"] + batch_terms


_COMMON_HPARAMS = {"hidden_size": 128, "text_encoder": "mean", "transformer_heads": 2,
                   "transformer_ff_dim": 2048, "transformer_dropout": 0.1, "cmd_moments": 5}
# MMSA's config_regression.json, misa: "mosi" for MOSI and MOSEI (MMSA's MOSEI entry has
# dropout 0.5, sim_weight 0.8, diff_weight 0.3 and batch 64), "sims" for CH-SIMS.
MISA_HPARAMS = {
    "mosi": dict(_COMMON_HPARAMS, dropout=0.2, diff_weight=0.1, sim_weight=0.3,
                 recon_weight=1.0),
    "sims": dict(_COMMON_HPARAMS, dropout=0.0, diff_weight=0.3, sim_weight=1.0,
                 recon_weight=0.8),
}
# MMSA's trainer builds Adam with the learning rate alone, so the configuration's
# weight_decay (5e-5 on SIMS) never reaches it: no decay here either. grad_clip (a
# clip by value in MMSA) becomes the clip by norm our optimizers take.
MISA_TRAINING = {
    "mosi": {"batch_size": 16, "learning_rate": 1e-4, "weight_decay": 0.0,
             "early_stopping_patience": 8, "gradient_clip_norm": 0.8},
    "sims": {"batch_size": 64, "learning_rate": 1e-4, "weight_decay": 0.0,
             "early_stopping_patience": 8, "gradient_clip_norm": 1.0},
}
# MMSA's config_tune.json ranges for misa.
MISA_SEARCH_SPACE = {
    "hidden_size": ("choice", [64, 128, 256]),
    "dropout": ("choice", [0.0, 0.2, 0.5]),
    "diff_weight": ("choice", [0.1, 0.3, 0.5]),
    "sim_weight": ("choice", [0.5, 0.8, 1.0]),
    "recon_weight": ("choice", [0.5, 0.8, 1.0]),
    "learning_rate": ("choice", [1e-4, 5e-4, 1e-3]),
    "batch_size": ("choice", [16, 32, 64]),
}

SPEC = ModelSpec(
    name="misa",
    title="MISA",
    model_class=MISA,
    hparams=MISA_HPARAMS,
    training=MISA_TRAINING,
    search_space=MISA_SEARCH_SPACE,
    reference="MMSA models/singleTask/MISA.py, trains/singleTask/MISA.py; "
              "Hazarika et al. 2020",
)
