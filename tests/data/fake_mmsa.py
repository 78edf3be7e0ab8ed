"""Small fake MMSA pickles with the real layout and quirks, for the data-layer tests."""

from __future__ import annotations

import pickle
from typing import Dict, Mapping, Optional

import numpy as np

from tfrecords import specs

SPLIT_SIZES = {"train": 5, "valid": 3, "test": 4}


def fake_mmsa_dataset(name: str = "mosi", *, seed: int = 0,
                      split_sizes: Mapping[str, int] = SPLIT_SIZES,
                      max_lengths: Optional[Mapping[str, int]] = None,
                      dtype=np.float64) -> Dict[str, Dict[str, np.ndarray]]:
    """An MMSA-layout dict: float64, -inf in audio, zero padding, some zero lengths.

    The first sample of every split has zero-length audio and vision; text lengths come
    only from the `text_bert` mask.
    """
    spec = specs.spec_for(name)
    max_lengths = dict(max_lengths or spec.max_lengths)
    rng = np.random.default_rng(seed)
    lo, hi = spec.label_range
    data = {}
    for split, n in split_sizes.items():
        out = {}
        lengths = {}
        for m in specs.MODALITIES:
            t, d = max_lengths[m], spec.feature_dims[m]
            low = 2 if m == "text" else 0
            length = rng.integers(low, t + 1, size=n)
            if m != "text":
                length[0] = 0
            length[-1] = t  # one sample fills the whole padded length
            lengths[m] = length
            x = rng.standard_normal((n, t, d)).astype(dtype)
            x *= (np.arange(t)[None, :] < length[:, None])[..., None]
            if m == "audio":
                for i in range(n):
                    if length[i]:
                        x[i, rng.integers(length[i]), rng.integers(d)] = -np.inf
            out[m] = x
        t_text = max_lengths["text"]
        mask = (np.arange(t_text)[None, :] < lengths["text"][:, None]).astype(np.float64)
        ids = rng.integers(1000, 5000, size=(n, t_text)) * mask
        segments = rng.integers(0, 2, size=(n, t_text)) * mask
        out["text_bert"] = np.stack([ids, mask, segments], axis=1)
        out["audio_lengths"] = lengths["audio"]
        out["vision_lengths"] = lengths["vision"]
        steps = np.round((hi - lo) / 0.2)
        out["regression_labels"] = lo + rng.integers(0, steps + 1, size=n) * 0.2
        if spec.has_unimodal_labels:
            for key in ("T", "A", "V"):
                out[f"regression_labels_{key}"] = lo + rng.integers(0, steps + 1, n) * 0.2
        out["classification_labels"] = np.sign(out["regression_labels"])
        out["annotations"] = np.array(["Positive"] * n, dtype=object)
        out["id"] = np.array([f"vid{split}{i}$_${i}" for i in range(n)], dtype=object)
        out["raw_text"] = np.array([f"words of sample {i} in {split}" for i in range(n)],
                                   dtype=object)
        data[split] = out
    return data


def write_pickle(data, path: str, protocol: int = 4) -> str:
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    return path


def expected_example(raw_split: Mapping[str, np.ndarray], i: int) -> Dict[str, np.ndarray]:
    """Sample `i` as the data layer must return it: trimmed, -inf as 0, float32."""
    text_length = int(raw_split["text_bert"][i, 1].sum())
    out = {"text": raw_split["text"][i, :text_length].astype(np.float32),
           "text_token_ids": raw_split["text_bert"][i, 0, :text_length].astype(np.int32),
           "text_segment_ids": raw_split["text_bert"][i, 2, :text_length].astype(np.int32)}
    for m in ("audio", "vision"):
        values = raw_split[m][i, :int(raw_split[f"{m}_lengths"][i])].astype(np.float32)
        out[m] = np.where(np.isinf(values), np.float32(0), values)
    return out
