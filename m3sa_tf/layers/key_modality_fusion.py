"""Key-modality fusion (paper §III-C, eqs 11–23) and the `equal` ablation of Fig. 8."""

import keras
from keras import ops

from m3sa_tf.config import FUSION_GATES
from m3sa_tf.layers.masking import apply_mask, masked_mean
from m3sa_tf.layers.sequence_readout import SequenceReadout

STRATEGIES = ("key", "equal")


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

    Args:
        modalities: the modalities, in the order of the concatenation.
        key_modality: β (used by strategy="key").
        fusion_dim: common projection width, also each attention's output width.
        num_heads: heads h; each head has width max(1, fusion_dim // h).
        dropout: dropout on the attention probabilities.
        strategy: "key" or "equal".
        readout: pooling for strategy="equal".
        gate: "none", "null_step" or "sigmoid" (see above).
        seed: seed of the attention dropout.

    Call arguments:
        sequences: dict modality -> float [B, T_m, d_m].
        masks: dict modality -> bool [B, T_m].

    Returns:
        "key": float [B, T_β, M·fusion_dim] (zero past the key's length);
        "equal": float [B, M·fusion_dim].

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
        if strategy == "key":
            self.attentions[key_modality] = attention("self_attention", 0)
            for i, m in enumerate(self.others):
                self.attentions[m] = attention(f"cross_attention_{m}", i + 1)
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
            readout.build(projected)
        for gate in self.gates.values():
            gate.build((None, 3 * self.fusion_dim))
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

    def call(self, sequences, masks, training=False):
        masks = {m: ops.cast(masks[m], "bool") for m in self.modalities}
        projected = {m: apply_mask(self.projections[m](sequences[m]), masks[m])
                     for m in self.modalities}
        if self.strategy == "equal":
            pooled = []
            for m in self.modalities:
                attended = self.attentions[m](
                    projected[m], projected[m],
                    attention_mask=_attention_mask(masks[m], masks[m]), training=training,
                )
                pooled.append(self.readouts[m](apply_mask(attended, masks[m]), masks[m]))
            return ops.concatenate(pooled, axis=-1)

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
        return apply_mask(ops.concatenate(parts, axis=-1), key_mask)

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
        if self.strategy == "equal":
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
