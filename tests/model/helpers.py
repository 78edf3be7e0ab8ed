"""Tiny configurations and batches shared by the model tests."""

import numpy as np

from m3sa_tf import M3SAConfig

FEATURE_DIMS = {"text": 6, "audio": 3, "vision": 4}
PADDED_LENGTHS = {"text": 7, "audio": 9, "vision": 5}


def tiny_config(dataset="mosi", **overrides):
    values = dict(
        hidden_sizes={"text": 8, "audio": 4, "vision": 6},
        fusion_dim=8, num_heads=2, n_scales=3, channel_ratio=2,
        head_hidden_size=4, contrastive_dim=4, dropout=0.0,
    )
    values.update(overrides)
    return M3SAConfig.for_dataset(dataset, **values)


def tiny_batch(batch_size=4, lengths=None, seed=0, modalities=("text", "audio", "vision"),
               zero_length_rows=()):
    """Random right-padded features; rows in `zero_length_rows` have length 0 everywhere."""
    rng = np.random.default_rng(seed)
    padded = dict(PADDED_LENGTHS, **(lengths or {}))
    features = {}
    for m in modalities:
        steps = padded[m]
        valid = rng.integers(1, steps + 1, size=batch_size).astype("int32")
        for row in zero_length_rows:
            valid[row] = 0
        values = rng.normal(size=(batch_size, steps, FEATURE_DIMS[m])).astype("float32")
        values *= np.arange(steps)[None, :, None] < valid[:, None, None]
        features[m] = values
        features[f"{m}_length"] = valid
    return features


def pad_more(features, extra, modalities=("text", "audio", "vision")):
    """The same batch with `extra` more zero steps appended to every sequence."""
    out = dict(features)
    for m in modalities:
        if m in features:
            out[m] = np.pad(features[m], ((0, 0), (0, extra), (0, 0)))
    return out
