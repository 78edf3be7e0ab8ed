"""The BERT text path: a keras-hub BERT backbone inside the model (config.text_path="bert")."""

import importlib.util
import os

import keras
from keras import ops


def load_bert_backbone(preset):
    """A `keras_hub.models.BertBackbone` from a keras-hub preset name or a local directory.

    A local directory may be a keras-hub preset (`save_to_preset`) or a Hugging Face
    BERT checkpoint (config.json, model.safetensors, vocab.txt), which keras-hub converts
    without network or torch. A preset *name* is downloaded by keras-hub, which fails on a
    machine without network; a missing local path is reported as such.
    """
    import keras_hub

    looks_like_path = (os.sep in str(preset) or str(preset).startswith(".")
                       or os.path.isdir(str(preset)))
    if looks_like_path and not os.path.isdir(preset):
        raise FileNotFoundError(
            f"BERT checkpoint directory {preset!r} does not exist; expected a keras-hub "
            "preset directory or a Hugging Face BERT checkpoint directory "
            "(config.json, model.safetensors, vocab.txt)"
        )
    if (looks_like_path and os.path.isfile(os.path.join(preset, "model.safetensors"))
            and importlib.util.find_spec("safetensors") is None):
        # keras-hub imports it only deep inside its converter, as a bare ModuleNotFoundError.
        raise ImportError(
            f"{preset!r} is a Hugging Face checkpoint (model.safetensors); reading it needs "
            "the 'safetensors' package: pip install safetensors"
        )
    return keras_hub.models.BertBackbone.from_preset(preset)


@keras.saving.register_keras_serializable(package="m3sa_tf")
class BertTextEncoder(keras.layers.Layer):
    """Runs a BERT backbone on token ids; its sequence output replaces the text features.

    The paper extracts 768-d BERT features for the text (§IV-A) and fine-tunes BERT
    (§IV-F). The backbone is a layer of the model, fine-tuned when `trainable` (config.
    bert_trainable) and frozen otherwise. A frozen backbone is a fixed feature extractor:
    it runs in inference mode (no dropout) during training too, so the text features it
    gives are the same ones the precomputed-feature path would see. Only the sequence
    output is used, so BERT's pooler (`pooled_dense`, the [CLS] projection) stays frozen
    whatever `trainable` says: it could get no gradient, and Keras would warn about it on
    every traced training step. Its configuration and weights are saved with the model,
    so a saved `.keras` model loads without the original checkpoint directory.

    Args:
        backbone: a `keras_hub.models.BertBackbone` (see `load_bert_backbone`).

    Call arguments:
        token_ids, segment_ids: int [B, T]; padding_mask: bool/int [B, T] (True = token).

    Returns:
        float [B, T, hidden_dim], zero at padded tokens.

    Example:
        >>> import keras_hub
        >>> backbone = keras_hub.models.BertBackbone(vocabulary_size=30, num_layers=1,
        ...     num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
        >>> encoder = BertTextEncoder(backbone)
        >>> ids = keras.ops.ones((2, 5), dtype="int32")
        >>> mask = keras.ops.ones((2, 5), dtype="bool")
        >>> tuple(encoder(ids, keras.ops.zeros_like(ids), mask).shape)
        (2, 5, 8)
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.backbone = backbone
        self._freeze_unused_pooler()

    # Keras' setter propagates `trainable` to every sublayer; the pooler must stay frozen.
    @keras.layers.Layer.trainable.setter
    def trainable(self, value):
        keras.layers.Layer.trainable.fset(self, value)
        self._freeze_unused_pooler()

    def _freeze_unused_pooler(self):
        # Layer.__init__ sets `trainable` before the backbone is attached.
        pooler = getattr(getattr(self, "backbone", None), "pooled_dense", None)
        if pooler is not None:
            pooler.trainable = False

    @property
    def hidden_dim(self):
        return self.backbone.hidden_dim

    def build(self, *shapes):
        self.built = True

    def call(self, token_ids, segment_ids, padding_mask, training=False):
        if not self.trainable:
            training = False
        mask = ops.cast(padding_mask, "bool")
        outputs = self.backbone(
            {
                "token_ids": ops.cast(token_ids, "int32"),
                "segment_ids": ops.cast(segment_ids, "int32"),
                "padding_mask": ops.cast(mask, "int32"),
            },
            training=training,
        )
        sequence = outputs["sequence_output"]
        return sequence * ops.cast(ops.expand_dims(mask, -1), sequence.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(backbone=keras.saving.serialize_keras_object(self.backbone))
        return config
