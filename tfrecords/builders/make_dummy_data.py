"""Writes the tiny `dummy_data/` pickles of the real-dataset builders' tests.

They are MMSA-layout pickles (two samples per split, short padded lengths, the real
feature widths, float32 to stay small, -inf in audio, zero lengths) cut from the
synthetic generator. Rerun after changing the layout:

    python -m tfrecords.builders.make_dummy_data
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from msa_core.constants import REAL_DATASETS
from msa_core.io import atomic_path
from tfrecords import specs
from tfrecords.synthetic import SyntheticGenerator

DUMMY_LENGTHS = {"text": 4, "audio": 6, "vision": 5}


def dummy_dataset(name: str):
    generator = SyntheticGenerator(f"synthetic-{name}", scale=1e-4, seed=0)
    data = {}
    for split in specs.SPLITS:
        raw = generator.split_arrays(split)
        out = dict(raw)
        for m in specs.MODALITIES:
            out[m] = raw[m][:, :DUMMY_LENGTHS[m]].astype(np.float32)
        for m in ("audio", "vision"):
            out[f"{m}_lengths"] = np.minimum(raw[f"{m}_lengths"], DUMMY_LENGTHS[m])
            out[m] *= (np.arange(DUMMY_LENGTHS[m])[None, :]
                       < out[f"{m}_lengths"][:, None])[..., None]
        out["audio_lengths"][0] = 0  # a zero-length sequence, as real files have
        out["audio"][0] = 0
        out["audio"][1, 0, 0] = -np.inf
        out["text_bert"] = raw["text_bert"][:, :, :DUMMY_LENGTHS["text"]]
        data[split] = out
    return data


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for name in REAL_DATASETS:
        path = os.path.join(here, f"mmsa_{name}", "dummy_data",
                            specs.spec_for(name).pickle_name)
        with atomic_path(path) as temp, open(temp, "wb") as f:
            pickle.dump(dummy_dataset(name), f, protocol=4)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
