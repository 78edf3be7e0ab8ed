"""Names every layer of the project agrees on: modalities, modality pairs, datasets and
the family (metric set and defaults) each dataset belongs to.

>>> dataset_family("synthetic-sims")
'sims'
>>> DATASET_NAMES[:3]
('mosi', 'sims', 'mosei')
>>> dataset_family("iemocap")
Traceback (most recent call last):
...
msa_core.constants.UnknownDatasetError: unknown dataset 'iemocap': expected one of mosi, sims, mosei, synthetic-mosi, synthetic-sims, synthetic-mosei
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
SYNTHETIC_DATASETS: Tuple[str, ...] = tuple(SYNTHETIC_PREFIX + n for n in REAL_DATASETS)
DATASET_NAMES: Tuple[str, ...] = REAL_DATASETS + SYNTHETIC_DATASETS

# MOSEI is labelled and scored like MOSI ([-3, 3], MMSA's MOSI metrics); a synthetic
# dataset imitates its real namesake, so it shares that family too.
_REAL_FAMILY = {"mosi": "mosi", "sims": "sims", "mosei": "mosi"}
DATASET_FAMILIES: Mapping[str, str] = types.MappingProxyType({
    name: _REAL_FAMILY[name[len(SYNTHETIC_PREFIX):] if name.startswith(SYNTHETIC_PREFIX)
                       else name]
    for name in DATASET_NAMES
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
