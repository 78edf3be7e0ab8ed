"""The M³SA model (paper §III, Fig. 1) as a Keras model, and its registry spec."""

import keras
import tensorflow as tf
from keras import ops

from m3sa_tf.config import ConfigError, M3SAConfig
from m3sa_tf.layers.contrastive_projection import ContrastiveProjection
from m3sa_tf.layers.early_fusion import EarlyFusion
from m3sa_tf.layers.key_modality_fusion import KeyModalityFusion
from m3sa_tf.layers.late_fusion import LateFusion
from m3sa_tf.layers.multi_scale_block import MultiScaleBlock
from m3sa_tf.layers.sentiment_head import SentimentHead
from m3sa_tf.losses.m3sa_loss import M3SALoss
from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.registry import ModelSpec



def scale_gradient(x, fraction):
    """`x` in the forward pass, `fraction` × the incoming gradient in the backward pass
    (exactly `x` and exactly stopped or passed when `fraction` is 0 or 1)."""
    stopped = ops.stop_gradient(x)
    return stopped + ops.cast(fraction, x.dtype) * (x - stopped)


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
class M3SAModel(MultimodalModel):
    """M³SA: multi-scale blocks, unimodal heads, key-modality fusion, fused head.

    Per modality m (config.modalities): `multi_scale_{m}` (eqs 1–7) gives X_m and F^n_m;
    `head_{m}` reads F^n_m through the readout (eqs 8–10); outside the multitask task,
    config.unimodal_head_training says how the heads learn (by default as probes: the
    gradient stops at F^n). `fusion` combines the X_m
    (config.fusion: "key" eqs 11–23, the Fig. 8 ablations "equal", "late", "early", or
    "multi_key", key fusion around every modality mixed per clip)
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
        >>> model = M3SAModel(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> sorted(model(example_features({"text": 6, "audio": 3, "vision": 2})))
        ['audio', 'embedding_audio', 'embedding_text', 'embedding_vision', 'fused', 'text', 'vision']
    """

    def __init__(self, config, feature_dims, has_unimodal_labels, key_modality=None,
                 text_encoder=None, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels,
                         text_encoder=text_encoder, **kwargs)
        config = self.config
        self.key_modality = provisional_key(config, key_modality)
        self.task = config.resolve_task(self.has_unimodal_labels)
        seed = config.seed

        def block(name, width):
            return MultiScaleBlock(
                hidden_size=width, n_scales=config.n_scales,
                channel_ratio=config.channel_ratio, extractor=config.extractor,
                multi_scale=config.multi_scale, excitation_gate=config.excitation_gate,
                conv_kernel_sizes=config.conv_kernel_sizes, **self.sublayer_kwargs(name),
            )

        def head(name, offset):
            return SentimentHead(hidden_size=config.head_hidden_size, dropout=config.dropout,
                                 readout=config.readout, seed=seed + 10 * offset,
                                 **self.sublayer_kwargs(name))

        self.blocks = {}
        self.heads = {}
        self.projections = {}
        if config.fusion == "early":
            self.fusion = EarlyFusion(self.modalities, **self.sublayer_kwargs("fusion"))
            self.early_block = block("multi_scale_early", config.fusion_dim)
        else:
            for i, m in enumerate(self.modalities):
                self.blocks[m] = block(f"multi_scale_{m}", config.hidden_sizes[m])
                self.heads[m] = head(f"head_{m}", i + 1)
                if self.task == "contrastive":
                    self.projections[m] = ContrastiveProjection(
                        config.contrastive_dim, readout=config.readout,
                        **self.sublayer_kwargs(f"contrastive_projection_{m}"),
                    )
            if config.fusion == "late":
                self.fusion = LateFusion(self.modalities, readout=config.readout,
                                         **self.sublayer_kwargs("fusion"))
            else:
                self.fusion = KeyModalityFusion(
                    self.modalities, self.key_modality, fusion_dim=config.fusion_dim,
                    num_heads=config.num_heads, dropout=config.dropout,
                    strategy=config.fusion, readout=config.readout,
                    gate=config.fusion_gate, seed=seed + 100,
                    **self.sublayer_kwargs("fusion"),
                )
        self.fused_head = head("head_fused", 0)
        # The loss computes in float32 whatever the model's dtype policy.
        self.m3sa_loss = M3SALoss(config, self.has_unimodal_labels, dtype="float32")

    def forward(self, sequences, masks, training=False):
        config = self.config
        outputs = {}
        if config.fusion == "early":
            joined, joined_mask = self.fusion(sequences, masks)
            fused_sequence, _ = self.early_block(joined, joined_mask, training=training)
            outputs["fused"] = self.fused_head(fused_sequence, joined_mask, training=training)
            return outputs

        high_level = {}
        probe_heads = (training and self.task != "multitask"
                       and config.unimodal_head_training == "probe")
        for m in self.modalities:
            x_m, last_scale = self.blocks[m](sequences[m], masks[m], training=training)
            high_level[m] = x_m
            if probe_heads:
                # Probe heads learn from F^n without changing what eq. 27 trains; the
                # key-modality warm-up lets their gradient through (M3SALoss).
                last_scale = scale_gradient(last_scale, self.m3sa_loss.head_gradient)
            outputs[m] = self.heads[m](last_scale, masks[m], training=training)
        if config.fusion == "late":
            fused = self.fusion(high_level, masks)
            outputs["fused"] = self.fused_head(fused, training=training)
        elif config.fusion in ("equal", "multi_key"):
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

    def fusion_weights(self, features):
        """The fusion's learned per-clip weights for a batch of `features` (interfaces
        §2), {modality: float [B]}; see `KeyModalityFusion.clip_weights` (needs
        fusion_gate="softmax" or fusion="multi_key")."""
        if not isinstance(self.fusion, KeyModalityFusion):
            raise ValueError(f"fusion={self.config.fusion!r} has no per-clip weights")
        sequences, masks = self.encode_inputs(features, False)
        high_level = {m: self.blocks[m](sequences[m], masks[m], training=False)[0]
                      for m in self.modalities}
        return self.fusion.clip_weights(high_level, masks)

    # ------------------------------------------------------------------ loss
    def task_loss(self, y, y_pred, sample_weight=None):
        """Eq. 25 or eqs 26–27 (`self.m3sa_loss`), already divided by the number of
        replicas under a distribution strategy (Keras' convention)."""
        return self.m3sa_loss(y, y_pred, sample_weight)

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        config = super().get_config()
        config["key_modality"] = self.key_modality
        return config


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


SPEC = ModelSpec(
    name="m3sa",
    title="M³SA",
    model_class=M3SAModel,
    reference="Lin et al., M³SA, IEEE/ACM TASLP 2024 (§III); docs/model.md",
)
