"""Names every layer of the project agrees on: modalities, modality pairs, datasets and
the family (metric set and defaults) each dataset belongs to.

>>> dataset_family("synthetic-sims")
'sims'
>>> DATASET_NAMES[:3]
('mosi', 'sims', 'mosei')
>>> dataset_family("iemocap")
Traceback (most recent call last):
...
msa_core.constants.UnknownDatasetError: unknown dataset 'iemocap': expected one of mosi, sims, mosei, synthetic-mosi, synthetic-sims, synthetic-mosei, synthetic-mosi-hard, synthetic-sims-hard, synthetic-mosei-hard
>>> dataset_family("synthetic-mosei-hard")
'mosi'
"""

from __future__ import annotations

import types
from typing import Mapping, Tuple

MODALITIES: Tuple[str, ...] = ("text", "audio", "vision")
# Contrastive pairs (eq. 27), named "<first>_<second>" in MODALITIES order.
PAIRS: Tuple[str, ...] = ("text_audio", "text_vision", "audio_vision")

FAMILIES: Tuple[str, ...] = ("mosi", "sims")
REAL_DATASETS: Tuple[str, ...] = ("mosi", "sims", "mosei")
SYNTHETIC_PREFIX = "synthetic-"
# The easy synthetic family (signal in each modality's mean; `tfrecords.synthetic`).
SYNTHETIC_DATASETS: Tuple[str, ...] = tuple(SYNTHETIC_PREFIX + n for n in REAL_DATASETS)
# The hard synthetic family (windowed signal, per-clip reliability, real-like lengths;
# `tfrecords.synthetic_hard`): "synthetic-mosi-hard", ...
HARD_SUFFIX = "-hard"
SYNTHETIC_HARD_DATASETS: Tuple[str, ...] = tuple(
    SYNTHETIC_PREFIX + n + HARD_SUFFIX for n in REAL_DATASETS)
DATASET_NAMES: Tuple[str, ...] = REAL_DATASETS + SYNTHETIC_DATASETS + SYNTHETIC_HARD_DATASETS

# MOSEI is labelled and scored like MOSI ([-3, 3], MMSA's MOSI metrics); a synthetic
# dataset imitates its real namesake, so it shares that family too.
_REAL_FAMILY = {"mosi": "mosi", "sims": "sims", "mosei": "mosi"}


def _real_name(name: str) -> str:
    """"synthetic-sims-hard" -> "sims" (for names in DATASET_NAMES only)."""
    if name.startswith(SYNTHETIC_PREFIX):
        name = name[len(SYNTHETIC_PREFIX):]
        if name.endswith(HARD_SUFFIX):
            name = name[:-len(HARD_SUFFIX)]
    return name


DATASET_FAMILIES: Mapping[str, str] = types.MappingProxyType({
    name: _REAL_FAMILY[_real_name(name)] for name in DATASET_NAMES
})


class UnknownDatasetError(ValueError):
    """A dataset name that is not one of `DATASET_NAMES`."""


def dataset_family(name: str) -> str:
    """The family ("mosi" or "sims") of dataset `name`; an unknown name raises
    `UnknownDatasetError` listing the accepted ones."""
    try:
        return DATASET_FAMILIES[name]
    except (KeyError, TypeError):
        raise UnknownDatasetError(
            f"unknown dataset {name!r}: expected one of {', '.join(DATASET_NAMES)}"
        ) from None
