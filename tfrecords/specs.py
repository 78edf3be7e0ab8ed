"""What each dataset of M³SA-TF looks like (SPEC.md §2): shapes, split sizes, labels.

The real datasets are MMSA's processed pickles of CMU-MOSI, CH-SIMS and CMU-MOSEI; the
synthetic ones copy their shapes, split sizes and label ranges.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Tuple

# DATASET_NAMES and MODALITIES are read through this module all over the data layer.
from msa_core.constants import (  # noqa: F401
    DATASET_NAMES,
    HARD_SUFFIX,
    MODALITIES,
    SYNTHETIC_HARD_DATASETS,
    SYNTHETIC_PREFIX,
    dataset_family,
)

SPLITS: Tuple[str, ...] = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Shapes and labels of one dataset as MMSA's processed pickle stores it.

    Attributes:
        base: "mosi", "sims" or "mosei" (the real dataset this one is, or imitates).
        max_lengths: padded sequence length T of each modality in the pickle.
        feature_dims: feature width D of each modality.
        split_sizes: number of samples per split.
        label_range: (lo, hi) of the regression labels.
        has_unimodal_labels: whether `regression_labels_T/_A/_V` exist (SIMS only).
        pickle_name: file name of the processed pickle inside `<DATASET>/Processed/`.
        vocab_size: size of the BERT vocabulary the token ids index.
    """

    base: str
    max_lengths: Mapping[str, int]
    feature_dims: Mapping[str, int]
    split_sizes: Mapping[str, int]
    label_range: Tuple[float, float]
    has_unimodal_labels: bool
    pickle_name: str
    vocab_size: int

    @property
    def family(self) -> str:
        """Which metric set applies ("mosi" for MOSI and MOSEI, "sims" for SIMS)."""
        return dataset_family(self.base)


_SPECS: Dict[str, DatasetSpec] = {
    "mosi": DatasetSpec(
        base="mosi",
        max_lengths={"text": 50, "audio": 375, "vision": 500},
        feature_dims={"text": 768, "audio": 5, "vision": 20},
        split_sizes={"train": 1284, "valid": 229, "test": 686},
        label_range=(-3.0, 3.0),
        has_unimodal_labels=False,
        pickle_name="unaligned_50.pkl",
        vocab_size=30522,  # bert-base-uncased
    ),
    "sims": DatasetSpec(
        base="sims",
        max_lengths={"text": 39, "audio": 400, "vision": 55},
        feature_dims={"text": 768, "audio": 33, "vision": 709},
        split_sizes={"train": 1368, "valid": 456, "test": 457},
        label_range=(-1.0, 1.0),
        has_unimodal_labels=True,
        pickle_name="unaligned_39.pkl",
        vocab_size=21128,  # bert-base-chinese
    ),
    "mosei": DatasetSpec(
        base="mosei",
        max_lengths={"text": 50, "audio": 500, "vision": 500},
        feature_dims={"text": 768, "audio": 74, "vision": 35},
        split_sizes={"train": 16326, "valid": 1871, "test": 4659},
        label_range=(-3.0, 3.0),
        has_unimodal_labels=False,
        pickle_name="unaligned_50.pkl",
        vocab_size=30522,
    ),
}


def check_name(name: str) -> str:
    """Returns `name` if it is a dataset name, else raises `UnknownDatasetError` (a
    ValueError) listing them."""
    dataset_family(name)
    return name


def is_synthetic(name: str) -> bool:
    return check_name(name).startswith(SYNTHETIC_PREFIX)


def is_hard(name: str) -> bool:
    """Whether `name` is of the hard synthetic family ("synthetic-sims-hard", ...)."""
    return check_name(name) in SYNTHETIC_HARD_DATASETS


def base_name(name: str) -> str:
    """"synthetic-sims" -> "sims"; "synthetic-sims-hard" -> "sims"; "mosi" -> "mosi"."""
    base = check_name(name).removeprefix(SYNTHETIC_PREFIX)
    return base.removesuffix(HARD_SUFFIX) if is_hard(name) else base


def spec_for(name: str) -> DatasetSpec:
    """The spec of a real or synthetic dataset name."""
    return _SPECS[base_name(name)]


def tfds_name(name: str) -> str:
    """The tensorflow-datasets builder name: "mosi" -> "mmsa_mosi", "synthetic-sims" ->
    "synthetic_sims", "synthetic-sims-hard" -> "synthetic_sims_hard"."""
    if is_synthetic(name):
        return name.replace("-", "_")
    return "mmsa_" + name


def synthetic_config_name(scale: float, seed: int) -> str:
    """Builder-config name that keeps every (scale, seed) build in its own directory, so
    that a scaled-down build can never be read as the full-size dataset."""
    return f"scale{float(scale):g}_seed{int(seed)}"


def scaled_split_sizes(name: str, scale: float) -> Dict[str, int]:
    """Split sizes of a synthetic dataset at `scale` (at least 2 samples per split, so
    that two workers each get one)."""
    sizes = spec_for(name).split_sizes
    return {split: max(2, int(round(n * scale))) for split, n in sizes.items()}


def check_scale(scale: float) -> float:
    scale = float(scale)
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"--scale must be in (0, 1], got {scale:g}")
    return scale
