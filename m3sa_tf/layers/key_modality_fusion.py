"""Key-modality fusion (paper §III-C, eqs 11–23), the `equal` ablation of Fig. 8, and
`multi_key`, a per-clip soft choice of the key (not the paper's)."""

import keras
from keras import ops

from m3sa_tf.config import FUSION_GATES
from m3sa_tf.layers.masking import apply_mask, large_negative, masked_mean
from m3sa_tf.layers.sequence_readout import SequenceReadout

STRATEGIES = ("key", "equal", "multi_key")


def _attention_mask(query_mask, key_mask):
    """[B, Tq, Tk]: True where a valid query may attend to a valid key."""
    return ops.logical_and(ops.expand_dims(query_mask, 2), ops.expand_dims(key_mask, 1))


@keras.saving.register_keras_serializable(package="m3sa_tf")
class KeyModalityFusion(keras.layers.Layer):
    """Fuses the modalities' high-level features X_m around a key modality β.

    strategy="key" (the paper's method): every X_m is first projected to `fusion_dim`
    (the modalities differ in width), then
      eqs 13–17  X_ββ = MultiHead(Q = X_β, K = X_β, V = X_β)   (self-attention),
      eqs 18–22  X_βα = MultiHead(Q = X_β, K = X_α, V = X_α)   for every other α,
      eq. 23     X_f = Concat(X_βα, X_βγ, X_ββ) along the feature axis.
    All parts have the key's length T_β, so X_f is [B, T_β, M·fusion_dim] for M
    modalities (with one modality X_f = X_ββ; with two, [X_βα, X_ββ]).

    strategy="equal" (Fig. 8's attention-based equal fusion): self-attention on every
    modality, X_mm; the sequences differ in length, so each is pooled with `readout`
    before the concatenation: X_f = Concat(pool(X_tt), pool(X_aa), pool(X_vv)),
    [B, M·fusion_dim].

    strategy="multi_key" (not the paper's): key fusion is run once around every modality
    as the key. For key β the part of modality m is X_βm (X_ββ for m = β), the parts are
    concatenated in the order of `modalities` and pooled over β's steps with `readout`,
    v_β = pool(Concat_m X_βm), [B, M·fusion_dim]. The output is Σ_β w_β v_β with per-clip
    weights w = softmax(W2 relu(W1 [v_t, v_a, v_v] + b1) + b2) (a key with no valid step
    gets weight 0). The paper fixes one key for the whole dataset, so a clip whose key is
    unreliable (an ironic sentence, a muted voice) still has every part of X_f built on
    it; here such a clip can move its weight to another key. W2 and b2 start at zero:
    an untrained fusion averages the keys.

    Masking: every attention gets a [B, Tq, Tk] mask built from the query's and the
    key's padding masks, and outputs are zeroed at padded query steps. A query whose
    keys are all padding (the other modality has length 0) gets a zero output for that
    cross-attention: the softmax never sees an empty row, so no NaN can appear, and the
    result is the same however much padding there is.

    gate (strategy="key" only; the paper has none, "none" is its method): how a clip can
    discount a modality that does not fit the key. In eqs 18–22 every key step must
    spread its whole attention over the other modality's steps, so a modality that
    contradicts the key in this clip still enters X_f at full weight.
      "null_step": every cross-attention also sees one learned null step (its key and value
        are trainable vectors, always valid). A key step that finds nothing in the other
        modality that agrees with it can put its attention there; the output is then
        the null step's value, the same for every clip. A modality with no valid step
        attends to the null step only (instead of being zeroed).
      "sigmoid": X_βα is multiplied by g = sigmoid(w·[x̄_β, x̄_βα, x̄_β ⊙ x̄_βα] + b), one
        gate per clip and modality, from the masked means over the key's steps of the
        projected key and of the cross-attention output.
      "softmax": every part of X_f, the key's own X_ββ included, is multiplied by
        M · softmax(s)_m, s = W2 relu(W1 [x̄_βα, x̄_βγ, x̄_ββ] + b1) + b2, from the masked
        means of all parts over the key's steps. The other gates cannot turn the key
        down, and the key is what a clip's prediction follows most; here a clip whose
        key disagrees with the rest can shift weight away from it. W2 and b2 start at
        zero, so an untrained gate weighs every part 1: the paper's fusion.

    Args:
        modalities: the modalities, in the order of the concatenation.
        key_modality: β (used by strategy="key"; "multi_key" uses every modality).
        fusion_dim: common projection width, also each attention's output width.
        num_heads: heads h; each head has width max(1, fusion_dim // h).
        dropout: dropout on the attention probabilities.
        strategy: "key", "equal" or "multi_key".
        readout: pooling for strategies "equal" and "multi_key".
        gate: "none", "null_step", "sigmoid" or "softmax" (see above).
        seed: seed of the attention dropout.

    Call arguments:
        sequences: dict modality -> float [B, T_m, d_m].
        masks: dict modality -> bool [B, T_m].

    Returns:
        "key": float [B, T_β, M·fusion_dim] (zero past the key's length);
        "equal", "multi_key": float [B, M·fusion_dim].

    Example:
        >>> fusion = KeyModalityFusion(("text", "audio"), "text", fusion_dim=8, num_heads=2)
        >>> xs = {"text": keras.random.normal((2, 5, 6), seed=0),
        ...       "audio": keras.random.normal((2, 7, 3), seed=1)}
        >>> ms = {"text": keras.ops.ones((2, 5), dtype="bool"),
        ...       "audio": keras.ops.ones((2, 7), dtype="bool")}
        >>> tuple(fusion(xs, ms).shape)
        (2, 5, 16)
    """

    def __init__(self, modalities, key_modality, fusion_dim=128, num_heads=4, dropout=0.0,
                 strategy="key", readout="last", gate="none", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.modalities = tuple(modalities)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy={strategy!r} is not one of {list(STRATEGIES)}")
        if strategy == "key" and key_modality not in self.modalities:
            raise ValueError(
                f"key_modality={key_modality!r} is not among the modalities {list(self.modalities)}"
            )
        if gate not in FUSION_GATES:
            raise ValueError(f"gate={gate!r} is not one of {list(FUSION_GATES)}")
        if gate != "none" and strategy != "key":
            raise ValueError(f"gate={gate!r} needs strategy='key', got {strategy!r}")
        self.gate = gate
        self.key_modality = key_modality
        self.fusion_dim = int(fusion_dim)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.strategy = strategy
        self.readout_mode = readout
        self.seed = seed
        head_width = max(1, self.fusion_dim // self.num_heads)
        policy = self.dtype_policy  # shared by the inner layers (mixed precision)

        def attention(name, offset):
            return keras.layers.MultiHeadAttention(
                num_heads=self.num_heads, key_dim=head_width, dropout=self.dropout,
                output_shape=self.fusion_dim,
                seed=None if seed is None else seed + offset, dtype=policy, name=name,
            )

        self.projections = {m: keras.layers.Dense(self.fusion_dim, dtype=policy,
                                                  name=f"project_{m}")
                            for m in self.modalities}
        self.attentions = {}
        self.readouts = {}
        self.gates = {}
        if gate == "sigmoid":
            self.gates = {m: keras.layers.Dense(1, activation="sigmoid", dtype=policy,
                                                name=f"gate_{m}")
                          for m in self.others}
        self.part_scores = None
        self.key_scores = None

        def scorer(name):
            # One score per modality; the last layer starts at zero, so the softmax
            # starts uniform (the paper's fusion for the gate, the keys' average for
            # multi_key).
            return keras.Sequential(
                [keras.layers.Dense(self.fusion_dim, activation="relu", dtype=policy,
                                    name="hidden"),
                 keras.layers.Dense(len(self.modalities), kernel_initializer="zeros",
                                    dtype=policy, name="scores")],
                name=name)

        if gate == "softmax":
            self.part_scores = scorer("part_scores")
        if strategy == "key":
            self.attentions[key_modality] = attention("self_attention", 0)
            for i, m in enumerate(self.others):
                self.attentions[m] = attention(f"cross_attention_{m}", i + 1)
        elif strategy == "multi_key":
            for k_i, k in enumerate(self.modalities):
                for i, m in enumerate(self.modalities):
                    name = (f"key_{k}_self_attention" if m == k
                            else f"key_{k}_cross_attention_{m}")
                    self.attentions[f"{k}_{m}"] = attention(name, 10 * (k_i + 1) + i)
                self.readouts[k] = SequenceReadout(readout, dtype=policy,
                                                   name=f"readout_key_{k}")
            self.key_scores = scorer("key_scores")
        else:
            for i, m in enumerate(self.modalities):
                self.attentions[m] = attention(f"self_attention_{m}", i)
                self.readouts[m] = SequenceReadout(readout, dtype=policy,
                                                   name=f"readout_{m}")

    @property
    def others(self):
        return tuple(m for m in self.modalities if m != self.key_modality)

    @property
    def output_width(self):
        return len(self.modalities) * self.fusion_dim

    def build(self, sequences_shape, masks_shape=None):
        for m in self.modalities:
            self.projections[m].build((None, None, sequences_shape[m][-1]))
        projected = (None, None, self.fusion_dim)
        for attention in self.attentions.values():
            attention.build(projected, projected)
        for readout in self.readouts.values():
            readout.build((None, None, self.output_width) if self.strategy == "multi_key"
                          else projected)
        if self.key_scores is not None:
            self.key_scores.build((None, len(self.modalities) * self.output_width))
        for gate in self.gates.values():
            gate.build((None, 3 * self.fusion_dim))
        if self.part_scores is not None:
            self.part_scores.build((None, self.output_width))
        if self.gate == "null_step":
            # Drawn like the projected steps they sit beside (about unit scale).
            self.null_keys = {
                m: self.add_weight(shape=(self.fusion_dim,), name=f"null_key_{m}",
                                   initializer=keras.initializers.RandomNormal(
                                       stddev=1.0, seed=None if self.seed is None
                                       else self.seed + 50 + i))
                for i, m in enumerate(self.others)}
            self.null_values = {
                m: self.add_weight(shape=(self.fusion_dim,), name=f"null_value_{m}",
                                   initializer="zeros")
                for m in self.others}

    def _project(self, sequences, masks):
        masks = {m: ops.cast(masks[m], "bool") for m in self.modalities}
        projected = {m: apply_mask(self.projections[m](sequences[m]), masks[m])
                     for m in self.modalities}
        return projected, masks

    def call(self, sequences, masks, training=False):
        projected, masks = self._project(sequences, masks)
        if self.strategy == "equal":
            pooled = []
            for m in self.modalities:
                attended = self.attentions[m](
                    projected[m], projected[m],
                    attention_mask=_attention_mask(masks[m], masks[m]), training=training,
                )
                pooled.append(self.readouts[m](apply_mask(attended, masks[m]), masks[m]))
            return ops.concatenate(pooled, axis=-1)
        if self.strategy == "multi_key":
            views = [self._key_view(k, projected, masks, training) for k in self.modalities]
            weights = self.key_weights(views, masks)
            return sum(view * weights[:, i, None] for i, view in enumerate(views))

        key_mask = masks[self.key_modality]
        parts = self._key_parts(projected, masks, training)
        if self.part_scores is not None:
            parts = self._weigh_parts(parts, key_mask)
        return apply_mask(ops.concatenate(parts, axis=-1), key_mask)

    def _key_parts(self, projected, masks, training):
        """[X_βα for every other α (gated as `gate` says), X_ββ], each [B, T_β, d]."""
        key = self.key_modality
        key_mask = masks[key]
        parts = []
        for m in self.others:
            if self.gate == "null_step":
                crossed = self._attend_with_null(m, projected[key], projected[m],
                                                 key_mask, masks[m], training)
            else:
                crossed = self.attentions[m](
                    projected[key], projected[m],
                    attention_mask=_attention_mask(key_mask, masks[m]), training=training,
                )
                # No valid key/value step at all: this cross-attention contributes nothing.
                has_keys = ops.cast(ops.any(masks[m], axis=1), crossed.dtype)[:, None, None]
                crossed = crossed * has_keys
            if self.gate == "sigmoid":
                pooled_key = masked_mean(projected[key], key_mask)
                pooled_cross = masked_mean(crossed, key_mask)
                weight = self.gates[m](ops.concatenate(
                    [pooled_key, pooled_cross, pooled_key * pooled_cross], axis=-1))
                crossed = crossed * weight[:, None, :]
            parts.append(crossed)
        parts.append(self.attentions[key](
            projected[key], projected[key],
            attention_mask=_attention_mask(key_mask, key_mask), training=training,
        ))
        return parts

    def clip_weights(self, sequences, masks):
        """The learned per-clip weights, {modality: float [B]}: for gate="softmax" the
        weight of the modality's part of X_f (X_ββ for the key; they sum to M), for
        strategy="multi_key" the weight of the modality as the key (they sum to 1).
        Inference mode. For reading what a trained fusion does clip by clip
        (`benchmarks/fusion_weights.py`); other settings have no such weights.
        """
        if self.part_scores is None and self.key_scores is None:
            raise ValueError(f"clip_weights needs gate='softmax' or strategy='multi_key'; "
                             f"this fusion has gate={self.gate!r}, "
                             f"strategy={self.strategy!r}")
        projected, masks = self._project(sequences, masks)
        if self.strategy == "multi_key":
            views = [self._key_view(k, projected, masks, False) for k in self.modalities]
            weights = self.key_weights(views, masks)
            return {m: weights[:, i] for i, m in enumerate(self.modalities)}
        key = self.key_modality
        weights = self.part_weights(self._key_parts(projected, masks, False), masks[key])
        return {m: weights[:, i] for i, m in enumerate(self.others + (key,))}

    def _key_view(self, key, projected, masks, training):
        """v_β: key fusion around `key`, parts in modality order, pooled over its steps."""
        key_mask = masks[key]
        parts = []
        for m in self.modalities:
            attended = self.attentions[f"{key}_{m}"](
                projected[key], projected[m],
                attention_mask=_attention_mask(key_mask, masks[m]), training=training)
            if m != key:
                has_keys = ops.cast(ops.any(masks[m], axis=1), attended.dtype)
                attended = attended * has_keys[:, None, None]
            parts.append(attended)
        fused = apply_mask(ops.concatenate(parts, axis=-1), key_mask)
        return self.readouts[key](fused, key_mask)

    def key_weights(self, views, masks):
        """[B, M]: the "multi_key" weight of each modality as the key (sum 1 per clip)."""
        scores = self.key_scores(ops.concatenate(views, axis=-1))
        present = ops.stack([ops.any(masks[m], axis=1) for m in self.modalities], axis=1)
        # A clip with no step at all in every modality keeps the plain average.
        present = ops.logical_or(present, ops.logical_not(
            ops.any(present, axis=1, keepdims=True)))
        scores = ops.where(present, scores, large_negative(scores.dtype))
        return ops.softmax(scores, axis=-1)

    def part_weights(self, parts, key_mask):
        """[B, M]: the "softmax" gate's weight of each part (they sum to M per clip)."""
        pooled = ops.concatenate([masked_mean(part, key_mask) for part in parts], axis=-1)
        scores = self.part_scores(pooled)
        return ops.softmax(scores, axis=-1) * ops.cast(len(parts), scores.dtype)

    def _weigh_parts(self, parts, key_mask):
        weights = self.part_weights(parts, key_mask)
        return [part * weights[:, i, None, None] for i, part in enumerate(parts)]

    def _attend_with_null(self, m, query, value, query_mask, value_mask, training):
        """Cross-attention of the key onto [null step; modality m's steps]."""
        batch = ops.shape(value)[0]

        def leading(vector):
            step = ops.cast(ops.reshape(vector, (1, 1, self.fusion_dim)), value.dtype)
            return ops.tile(step, (batch, 1, 1))

        # Separate key and value tensors: the null step's key decides when it is chosen,
        # its value what is returned then.
        keys = ops.concatenate([leading(self.null_keys[m]), value], axis=1)
        values = ops.concatenate([leading(self.null_values[m]), value], axis=1)
        mask = ops.concatenate([ops.ones((batch, 1), dtype="bool"), value_mask], axis=1)
        return self.attentions[m](query, values, key=keys,
                                  attention_mask=_attention_mask(query_mask, mask),
                                  training=training)

    def compute_output_shape(self, sequences_shape, masks_shape=None):
        if self.strategy in ("equal", "multi_key"):
            batch = sequences_shape[self.modalities[0]][0]
            return (batch, self.output_width)
        key_shape = sequences_shape[self.key_modality]
        return (key_shape[0], key_shape[1], self.output_width)

    def get_config(self):
        config = super().get_config()
        config.update(
            modalities=list(self.modalities), key_modality=self.key_modality,
            fusion_dim=self.fusion_dim, num_heads=self.num_heads, dropout=self.dropout,
            strategy=self.strategy, readout=self.readout_mode, gate=self.gate, seed=self.seed,
        )
        return config
