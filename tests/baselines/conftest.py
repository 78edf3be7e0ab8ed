"""Tiny baselines and batches for the zoo's contract tests."""

import numpy as np
import keras

from m3sa_tf import M3SAConfig
from m3sa_tf.models import build_model, get_spec, model_names
from tests.model.helpers import FEATURE_DIMS, pad_more, tiny_batch  # noqa: F401

BASELINES = [name for name in model_names() if name != "m3sa"]


def build_tiny(name, dataset=None, seed=1111, **overrides):
    """(model, config, has_unimodal_labels): `name` at its spec's `tiny` widths.

    Models that need unimodal labels are built for SIMS, the others for MOSI."""
    spec = get_spec(name)
    unimodal = spec.needs_unimodal_labels
    dataset = dataset or ("sims" if unimodal else "mosi")
    hparams = dict(getattr(spec.model_class, "TINY_HPARAMS", {}))
    hparams.update(overrides.pop("model_hparams", {}))
    config = M3SAConfig.for_dataset(dataset, model=name, model_hparams=hparams, seed=seed,
                                    **overrides)
    keras.utils.set_random_seed(seed)
    model = build_model(config, FEATURE_DIMS, unimodal)
    return model, config, unimodal


def learnable_batches(unimodal, n=48, seed=0):
    """A training and a validation batch whose label is a fixed function of the
    features' means, so that any working model can fit it in a few dozen steps."""
    rng = np.random.default_rng(seed)

    def make(count, offset):
        features = tiny_batch(batch_size=count, seed=seed + offset)
        signal = sum(features[m].sum(axis=(1, 2)) / np.maximum(features[f"{m}_length"], 1)
                     for m in ("text", "audio", "vision"))
        fused = np.tanh(signal / 2.0).astype("float32")
        labels = {"fused": fused}
        if unimodal:
            for m in ("text", "audio", "vision"):
                labels[m] = fused
        return features, labels

    del rng
    return make(n, 1), make(n, 2)
