"""MulT's transformer encoder: crossmodal when given a source, self-attention otherwise."""

import math

import keras
from keras import layers, ops

from m3sa_tf.layers.masking import apply_mask, valid_lengths
from m3sa_tf.layers.positional_embedding import SinusoidalPositionalEmbedding


def attention_mask(query_mask, key_mask, causal=False):
    """Which keys each query may attend, bool [B, Tq, Tk].

    A query attends the valid keys of its row, and padding queries attend nothing.
    With `causal`, query i also stops at key i + |Lk − Lq| (Lq, Lk the row's valid
    lengths): MulT's "future" mask, whose offset lets the last valid query see every
    valid key whatever the two lengths. MulT computes the offset from the padded
    lengths; the valid ones keep the mask independent of the padding.
    """
    query_mask = ops.cast(query_mask, "bool")
    key_mask = ops.cast(key_mask, "bool")
    allowed = ops.logical_and(ops.expand_dims(query_mask, 2), ops.expand_dims(key_mask, 1))
    if causal:
        offset = ops.abs(valid_lengths(key_mask, "int32")
                         - valid_lengths(query_mask, "int32"))
        queries = ops.arange(ops.shape(query_mask)[1], dtype="int32")
        keys = ops.arange(ops.shape(key_mask)[1], dtype="int32")
        limit = ops.expand_dims(queries, 0)[:, :, None] + offset[:, None, None]
        allowed = ops.logical_and(allowed, ops.expand_dims(keys, 0)[:, None, :] <= limit)
    return allowed


@keras.saving.register_keras_serializable(package="m3sa_tf")
class CrossmodalTransformer(keras.layers.Layer):
    """A stack of pre-norm transformer layers in which a target sequence attends a
    source sequence (MulT's crossmodal transformer, Tsai et al. 2019) or itself.

    Inputs are scaled by sqrt(d), given sinusoidal position codes and dropped out
    (`embed_dropout`). Each layer then adds, to its input, multi-head attention from
    the layer-normed target to the layer-normed source (one norm shared by both, as in
    MulT) and a ReLU feed-forward block of width 4d; a final layer norm closes the
    stack. The source is embedded once and attended unchanged by every layer.

    Padding never reaches a valid step: keys past the source length are masked, rows
    past the target length are zeroed after every block, and a query with no key to
    attend (an empty source) gets a zero attention update instead of NaN.

    Args:
        embed_dim: d, the width of the target and of the source.
        num_heads: attention heads (d must be a multiple of it).
        num_layers: transformer layers.
        attn_dropout: dropout on the attention weights.
        relu_dropout: dropout after the feed-forward ReLU.
        res_dropout: dropout on each block's output before the residual sum.
        embed_dropout: dropout on the embedded inputs.
        causal: MulT's `attn_mask`: query i attends keys up to i + |Lk − Lq| only
            (see `attention_mask`).
        position_embedding: add the sinusoidal position codes.
        layer_norm_epsilon: PyTorch's default, which MulT uses.
        seed: dropout seed.

    Call arguments:
        target: float [B, Tq, d], the queries.
        target_mask: bool [B, Tq].
        source: float [B, Tk, d] keys and values; None for self-attention.
        source_mask: bool [B, Tk]; required with `source`.
        training: enables dropout.

    Returns:
        float [B, Tq, d], zero past the target lengths.

    Example:
        >>> import numpy as np
        >>> layer = CrossmodalTransformer(8, num_heads=2, num_layers=1)
        >>> target, source = np.ones((2, 3, 8), "float32"), np.ones((2, 5, 8), "float32")
        >>> masks = np.array([[1, 1, 0], [1, 0, 0]], bool), np.ones((2, 5), bool)
        >>> tuple(layer(target, masks[0], source, masks[1]).shape)
        (2, 3, 8)
    """

    def __init__(self, embed_dim, num_heads, num_layers, attn_dropout=0.0,
                 relu_dropout=0.0, res_dropout=0.0, embed_dropout=0.0, causal=False,
                 position_embedding=True, layer_norm_epsilon=1e-5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = int(embed_dim)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        if self.num_heads < 1 or self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim={embed_dim} must be a positive multiple of "
                f"num_heads={num_heads}"
            )
        self.attn_dropout = float(attn_dropout)
        self.relu_dropout = float(relu_dropout)
        self.res_dropout = float(res_dropout)
        self.embed_dropout = float(embed_dropout)
        self.causal = bool(causal)
        self.position_embedding = bool(position_embedding)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.seed = seed
        seeds = _SeedCounter(seed)
        policy = self.dtype_policy

        def norm(name):
            return layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=policy,
                                             name=name)

        def dropout(rate):
            return layers.Dropout(rate, seed=seeds.next(), dtype=policy)

        self.positions = (SinusoidalPositionalEmbedding(self.embed_dim, dtype=policy,
                                                        name="positions")
                          if self.position_embedding else None)
        self.embed_drop = dropout(self.embed_dropout)
        self.blocks = []
        for i in range(self.num_layers):
            self.blocks.append({
                "attention_norm": norm(f"layer_{i}_attention_norm"),
                "attention": layers.MultiHeadAttention(
                    self.num_heads, self.embed_dim // self.num_heads,
                    dropout=self.attn_dropout, seed=seeds.next(), dtype=policy,
                    name=f"layer_{i}_attention"),
                "attention_drop": dropout(self.res_dropout),
                "ffn_norm": norm(f"layer_{i}_ffn_norm"),
                "fc1": layers.Dense(4 * self.embed_dim, activation="relu", dtype=policy,
                                    name=f"layer_{i}_fc1"),
                "relu_drop": dropout(self.relu_dropout),
                "fc2": layers.Dense(self.embed_dim, dtype=policy, name=f"layer_{i}_fc2"),
                "ffn_drop": dropout(self.res_dropout),
            })
        self.final_norm = norm("final_norm")

    def build(self, target_shape, target_mask_shape=None, source_shape=None,
              source_mask_shape=None):
        width = target_shape[-1]
        if width is not None and width != self.embed_dim:
            raise ValueError(
                f"target width {width} differs from embed_dim={self.embed_dim}"
            )
        if source_shape is not None and source_shape[-1] not in (None, self.embed_dim):
            raise ValueError(
                f"source width {source_shape[-1]} differs from embed_dim={self.embed_dim}"
            )
        sequence = (None, None, self.embed_dim)
        for block in self.blocks:
            block["attention_norm"].build(sequence)
            block["attention"].build(sequence, sequence, sequence)
            block["ffn_norm"].build(sequence)
            block["fc1"].build(sequence)
            block["fc2"].build((None, None, 4 * self.embed_dim))
        self.final_norm.build(sequence)
        self.built = True

    def _embed(self, sequence, mask, training):
        sequence = sequence * ops.cast(math.sqrt(self.embed_dim), sequence.dtype)
        if self.positions is not None:
            sequence = sequence + ops.cast(self.positions(mask), sequence.dtype)
        return apply_mask(self.embed_drop(sequence, training=training), mask)

    def call(self, target, target_mask, source=None, source_mask=None, training=False):
        target_mask = ops.cast(target_mask, "bool")
        crossmodal = source is not None
        if crossmodal:
            if source_mask is None:
                raise ValueError("a source needs its source_mask")
            source_mask = ops.cast(source_mask, "bool")
            source = self._embed(source, source_mask, training)
        else:
            source_mask = target_mask
        allowed = attention_mask(target_mask, source_mask, self.causal)
        # A query with no key (padding rows, or an empty source) would make a softmax
        # over nothing; it may look at every key instead (all finite) and its update
        # is zeroed below, so neither NaN nor padding reaches the output.
        has_key = ops.any(allowed, axis=-1)
        allowed = ops.logical_or(allowed, ops.logical_not(ops.expand_dims(has_key, -1)))
        keep = ops.cast(ops.expand_dims(has_key, -1), self.compute_dtype)

        x = self._embed(target, target_mask, training)
        for block in self.blocks:
            queries = block["attention_norm"](x)
            keys = block["attention_norm"](source) if crossmodal else queries
            update = block["attention"](queries, keys, keys, attention_mask=allowed,
                                        training=training)
            x = x + block["attention_drop"](update * keep, training=training)
            hidden = block["fc1"](block["ffn_norm"](x))
            hidden = block["relu_drop"](hidden, training=training)
            update = block["ffn_drop"](block["fc2"](hidden), training=training)
            x = apply_mask(x + update, target_mask)
        return apply_mask(self.final_norm(x), target_mask)

    def compute_output_shape(self, target_shape, *args, **kwargs):
        return tuple(target_shape[:-1]) + (self.embed_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            embed_dim=self.embed_dim, num_heads=self.num_heads, num_layers=self.num_layers,
            attn_dropout=self.attn_dropout, relu_dropout=self.relu_dropout,
            res_dropout=self.res_dropout, embed_dropout=self.embed_dropout,
            causal=self.causal, position_embedding=self.position_embedding,
            layer_norm_epsilon=self.layer_norm_epsilon, seed=self.seed,
        )
        return config


class _SeedCounter:
    """Distinct dropout seeds derived from one (None stays None: unseeded)."""

    def __init__(self, seed):
        self.seed, self.count = seed, 0

    def next(self):
        if self.seed is None:
            return None
        self.count += 1
        return int(self.seed) + self.count
