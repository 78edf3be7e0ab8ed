"""MulT: the Multimodal Transformer for unaligned sequences.

After MMSA's `MULT` (Tsai et al., "Multimodal Transformer for Unaligned Multimodal
Language Sequences", ACL 2019): each modality is projected by a temporal Conv1D to a
common width d; every target modality attends every other (source) modality through
its own crossmodal transformer; a target's crossmodal outputs are concatenated and run
through a self-attention transformer, whose last valid step is the target's vector;
the vectors are concatenated and read by a residual two-layer block and a linear output.

Two choices keep padding out of every output: attention masks built from the lengths
(keys past a source's length, queries past a target's), and the last VALID step as the
readout where MMSA takes the last padded step. An optional average pooling of the valid
steps down to `max_steps` bounds the attention's cost (see `pool_valid_steps`).
"""

import keras
from keras import layers, ops

from m3sa_tf.config import ConfigError
from m3sa_tf.layers.crossmodal_transformer import CrossmodalTransformer
from m3sa_tf.layers.masking import apply_mask, last_valid_step, valid_lengths
from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.registry import ModelSpec

# MMSA's suffixes of the per-modality hyper-parameters (conv1d_kernel_size_l, …).
_SUFFIX = {"text": "l", "audio": "a", "vision": "v"}


def pool_valid_steps(sequence, mask, max_steps):
    """Averages the valid steps of each row down to at most `max_steps` steps.

    A row of length L > max_steps is cut into max_steps consecutive windows of
    floor(L/max_steps) or ceil(L/max_steps) valid steps, each replaced by its mean (an
    adaptive average pooling of the valid steps alone); a row with L <= max_steps is
    returned unchanged. The windows depend on L only, so the padding never enters a
    mean, and the pooled mask comes from the lengths: min(L, max_steps) valid steps.

    Args:
        sequence: float [B, T, d], zero past the lengths.
        mask: bool [B, T].
        max_steps: the bound; 0 or None returns the inputs as they are.

    Returns:
        (pooled [B, min(T, max_steps), d], pooled mask [B, min(T, max_steps)]).

    Example:
        >>> import numpy as np
        >>> x = np.arange(5, dtype="float32").reshape(1, 5, 1)
        >>> pooled, m = pool_valid_steps(x, np.array([[1, 1, 1, 1, 0]], bool), 2)
        >>> np.asarray(pooled)[0, :, 0].tolist(), np.asarray(m).tolist()
        ([0.5, 2.5], [[True, True]])
    """
    if not max_steps:
        return sequence, mask
    mask = ops.cast(mask, "bool")
    steps = ops.shape(sequence)[1]
    lengths = valid_lengths(mask, "int32")
    pooled_lengths = ops.minimum(lengths, max_steps)
    windows = ops.arange(ops.minimum(steps, max_steps), dtype="int32")
    # Window s of a row covers steps [floor(s·L/P), floor((s+1)·L/P)), P the pooled
    # length: consecutive, non-empty when L >= P, and one step each when L <= max_steps.
    per_row = ops.expand_dims(ops.maximum(pooled_lengths, 1), 1)
    start = (ops.expand_dims(windows, 0) * ops.expand_dims(lengths, 1)) // per_row
    end = ((ops.expand_dims(windows, 0) + 1) * ops.expand_dims(lengths, 1)) // per_row
    pooled_mask = ops.expand_dims(windows, 0) < ops.expand_dims(pooled_lengths, 1)
    positions = ops.arange(steps, dtype="int32")[None, None, :]
    member = ops.logical_and(positions >= start[:, :, None], positions < end[:, :, None])
    member = ops.logical_and(member, pooled_mask[:, :, None])
    weights = ops.cast(member, sequence.dtype)
    weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1.0)
    return ops.einsum("bst,btd->bsd", weights, sequence), pooled_mask


@keras.saving.register_keras_serializable(package="m3sa_tf")
class MulT(MultimodalModel):
    """The Multimodal Transformer (crossmodal attention between unaligned sequences).

    Hyper-parameters (`config.model_hparams`, MMSA's names):
        dst_feature_dim_nheads: [d, heads], the common width and the attention heads.
        nlevels: layers of each crossmodal transformer.
        mem_layers: the self-attention transformers have max(nlevels, mem_layers)
            layers (MMSA hard-codes 3; the tests' tiny models use 1).
        attn_dropout, attn_dropout_a, attn_dropout_v: attention-weight dropout of the
            transformers whose source is text, audio, vision (`attn_dropout` also for
            the self-attention transformers), as MMSA assigns them.
        relu_dropout, res_dropout, embed_dropout: the transformers' other dropouts.
        output_dropout: dropout inside the residual output block.
        text_dropout: dropout on the text sequence before its projection.
        conv1d_kernel_size_l / _a / _v: temporal kernel of each projection.
        attn_mask: MulT's causal ("future") attention mask, offset by the length
            difference (see `m3sa_tf.layers.crossmodal_transformer.attention_mask`).
        position_embedding: add sinusoidal position codes to the transformers' inputs.
        max_steps: valid steps are average-pooled to at most this many before the
            transformers (`pool_valid_steps`); 0 attends every step, as MMSA does.

    Needs at least two modalities (each target attends the others).

    Outputs: `fused` [B]; `feature_{m}` (each target's last valid step, MMSA's
    Feature_t/a/v) are internal and not served.

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("mosi", model="mult",
        ...                              model_hparams=MulT.TINY_HPARAMS)
        >>> model = MulT(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> model(example_features({"text": 6, "audio": 3, "vision": 2}))["fused"].shape
        TensorShape([2])
    """

    # Small widths for tests and examples; max_steps 4 makes the tests pool too.
    TINY_HPARAMS = {
        "dst_feature_dim_nheads": [8, 2], "nlevels": 1, "mem_layers": 1,
        "attn_dropout": 0.0, "attn_dropout_a": 0.0, "attn_dropout_v": 0.0,
        "relu_dropout": 0.0, "embed_dropout": 0.0, "res_dropout": 0.0,
        "output_dropout": 0.0, "text_dropout": 0.0, "conv1d_kernel_size_l": 3,
        "conv1d_kernel_size_a": 3, "conv1d_kernel_size_v": 1, "max_steps": 4,
    }

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        if len(self.modalities) < 2:
            raise ConfigError(
                f"mult needs at least two modalities (each attends the others); got "
                f"modalities={list(self.modalities)}"
            )
        width, heads = (int(v) for v in hp["dst_feature_dim_nheads"])
        if width < 1 or heads < 1 or width % heads:
            raise ConfigError(
                f"model_hparams.dst_feature_dim_nheads={list(hp['dst_feature_dim_nheads'])}"
                ": the width must be a positive multiple of the number of heads"
            )
        if int(hp["max_steps"]) < 0:
            raise ConfigError(f"model_hparams.max_steps={hp['max_steps']} must be >= 0 "
                              "(0: no pooling)")
        self.width, self.heads = width, heads
        self.max_steps = int(hp["max_steps"])
        seed = self.config.seed
        source_attn_dropout = {"text": hp["attn_dropout"], "audio": hp["attn_dropout_a"],
                               "vision": hp["attn_dropout_v"]}
        shared = dict(relu_dropout=hp["relu_dropout"], res_dropout=hp["res_dropout"],
                      embed_dropout=hp["embed_dropout"], causal=hp["attn_mask"],
                      position_embedding=hp["position_embedding"])

        self.text_dropout = layers.Dropout(hp["text_dropout"], seed=seed,
                                           dtype=self.dtype_policy)
        # Conv1D's own "same" zero padding stands in for the zeros past a row's length,
        # so a valid step near the end sees zeros whatever the batch's padded length.
        self.projections = {
            m: layers.Conv1D(width, int(hp[f"conv1d_kernel_size_{_SUFFIX[m]}"]),
                             padding="same", use_bias=False,
                             **self.sublayer_kwargs(f"proj_{_SUFFIX[m]}"))
            for m in self.modalities
        }
        self.crossmodal = {}
        self.self_attention = {}
        for i, target in enumerate(self.modalities):
            for j, source in enumerate(self.modalities):
                if source == target:
                    continue
                name = f"trans_{_SUFFIX[target]}_with_{_SUFFIX[source]}"
                self.crossmodal[name] = CrossmodalTransformer(
                    width, heads, int(hp["nlevels"]),
                    attn_dropout=source_attn_dropout[source],
                    seed=seed + 100 * (3 * i + j + 1), **shared,
                    **self.sublayer_kwargs(name))
            name = f"trans_{_SUFFIX[target]}_mem"
            self.self_attention[target] = CrossmodalTransformer(
                width * (len(self.modalities) - 1), heads,
                max(int(hp["nlevels"]), int(hp["mem_layers"])),
                attn_dropout=hp["attn_dropout"], seed=seed + 1000 * (i + 1), **shared,
                **self.sublayer_kwargs(name))
        combined = width * (len(self.modalities) - 1) * len(self.modalities)
        self.proj1 = layers.Dense(combined, activation="relu",
                                  **self.sublayer_kwargs("proj1"))
        self.output_dropout = layers.Dropout(hp["output_dropout"], seed=seed + 1,
                                             dtype=self.dtype_policy)
        self.proj2 = layers.Dense(combined, **self.sublayer_kwargs("proj2"))
        self.out_layer = layers.Dense(1, **self.sublayer_kwargs("out_layer"))

    def project(self, sequences, masks, training=False):
        """Per modality the projected, pooled sequence [B, T', d] and its mask."""
        projected, pooled_masks = {}, {}
        for m in self.modalities:
            sequence = sequences[m]
            if m == "text":
                sequence = self.text_dropout(sequence, training=training)
            # The kernel reaches past the length into padding steps; zeroing them keeps
            # the padding's conv outputs out of the attention and the pooling.
            sequence = apply_mask(self.projections[m](sequence), masks[m])
            projected[m], pooled_masks[m] = pool_valid_steps(sequence, masks[m],
                                                             self.max_steps)
        return projected, pooled_masks

    def forward(self, sequences, masks, training=False):
        x, x_masks = self.project(sequences, masks, training)
        features = {}
        for target in self.modalities:
            attended = [
                self.crossmodal[f"trans_{_SUFFIX[target]}_with_{_SUFFIX[source]}"](
                    x[target], x_masks[target], x[source], x_masks[source],
                    training=training)
                for source in self.modalities if source != target
            ]
            hidden = self.self_attention[target](
                ops.concatenate(attended, axis=-1), x_masks[target], training=training)
            features[target] = last_valid_step(hidden, x_masks[target])
        combined = ops.concatenate([features[m] for m in self.modalities], axis=-1)
        hidden = self.proj2(self.output_dropout(self.proj1(combined), training=training))
        outputs = {"fused": ops.reshape(self.out_layer(hidden + combined), (-1,))}
        outputs.update({f"feature_{m}": v for m, v in features.items()})
        return outputs


# MMSA's config_regression.json, mult: "mosi" for MOSI and MOSEI (MMSA's MOSEI entry
# differs: width 30, 6 heads, kernels 5/1/3; one family keeps the defaults in one
# place), "sims" for CH-SIMS. attn_mask is MMSA's commonParams value, mem_layers the
# depth MMSA hard-codes; position_embedding and max_steps are ours (docs/baselines.md).
MULT_HPARAMS = {
    "mosi": {
        "dst_feature_dim_nheads": [50, 10], "nlevels": 4, "mem_layers": 3,
        "attn_dropout": 0.3, "attn_dropout_a": 0.2, "attn_dropout_v": 0.0,
        "relu_dropout": 0.0, "embed_dropout": 0.2, "res_dropout": 0.0,
        "output_dropout": 0.5, "text_dropout": 0.5, "conv1d_kernel_size_l": 5,
        "conv1d_kernel_size_a": 5, "conv1d_kernel_size_v": 5, "attn_mask": True,
        "position_embedding": True, "max_steps": 50,
    },
    "sims": {
        "dst_feature_dim_nheads": [50, 10], "nlevels": 2, "mem_layers": 3,
        "attn_dropout": 0.2, "attn_dropout_a": 0.1, "attn_dropout_v": 0.0,
        "relu_dropout": 0.0, "embed_dropout": 0.1, "res_dropout": 0.2,
        "output_dropout": 0.1, "text_dropout": 0.3, "conv1d_kernel_size_l": 5,
        "conv1d_kernel_size_a": 1, "conv1d_kernel_size_v": 1, "attn_mask": True,
        "position_embedding": True, "max_steps": 50,
    },
}
# MMSA trains MulT with Adam at these rates and no weight decay (its trainer does not
# pass the config's weight_decay to Adam) and stops after early_stop=8 epochs without
# improvement. It clips each gradient element to 0.6; our pipeline clips per-variable
# norms only, and an element clip that rarely binds on an L1 loss is left out.
MULT_TRAINING = {
    "mosi": {"batch_size": 16, "learning_rate": 2e-3, "weight_decay": 0.0,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
    "sims": {"batch_size": 16, "learning_rate": 2e-3, "weight_decay": 0.0,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
}
# MMSA's config_tune.json ranges (scalar ones: a search choice cannot be a pair).
MULT_SEARCH_SPACE = {
    "nlevels": ("choice", [2, 4, 6]),
    "attn_dropout": ("choice", [0.1, 0.2, 0.3, 0.4, 0.5]),
    "embed_dropout": ("choice", [0.0, 0.1, 0.2]),
    "output_dropout": ("choice", [0.1, 0.2, 0.3, 0.4, 0.5]),
    "text_dropout": ("choice", [0.1, 0.2, 0.3, 0.4, 0.5]),
    "learning_rate": ("choice", [5e-4, 1e-3, 2e-3, 5e-3]),
    "batch_size": ("choice", [4, 8, 16]),
}

SPEC = ModelSpec(
    name="mult",
    title="MulT",
    model_class=MulT,
    hparams=MULT_HPARAMS,
    training=MULT_TRAINING,
    search_space=MULT_SEARCH_SPACE,
    reference="MMSA models/singleTask/MULT.py, subNets/transformers_encoder; "
              "Tsai et al. 2019",
)
