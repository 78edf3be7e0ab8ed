"""`DatasetInfo`: what a built dataset holds, as the rest of M³SA-TF reads it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Mapping, Optional, Tuple


@dataclasses.dataclass
class DatasetInfo:
    """Description of one built dataset (docs/interfaces.md §1).

    Attributes:
        name: dataset name ("mosi", "synthetic-sims", ...).
        family: "mosi" or "sims": which metric set applies.
        feature_dims: feature width per modality, read from the data.
        max_lengths: padded length per modality (the T of the source arrays).
        split_sizes: number of samples per split.
        has_unimodal_labels: whether labels `text`/`audio`/`vision` exist (SIMS).
        label_range: (lo, hi) of the regression labels.
        bayes_reference: for synthetic datasets, the metrics of the Bayes-optimal
            predictor per split ({split: {metric: value}}; SIMS also has
            `text`/`audio`/`vision` entries for the unimodal labels); None for real data.
        scale: fraction of the full split sizes (1.0 for real data).
        seed: generator seed (synthetic) or 0.
    """

    name: str
    family: str
    feature_dims: Dict[str, int]
    max_lengths: Dict[str, int]
    split_sizes: Dict[str, int]
    has_unimodal_labels: bool
    label_range: Tuple[float, float]
    bayes_reference: Optional[Dict[str, Any]] = None
    scale: float = 1.0
    seed: int = 0

    def to_dict(self) -> Dict[str, Any]:
        values = dataclasses.asdict(self)
        values["label_range"] = list(self.label_range)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DatasetInfo":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"DatasetInfo: unknown keys {sorted(unknown)}")
        values = dict(values)
        values["label_range"] = tuple(float(v) for v in values["label_range"])
        for key in ("feature_dims", "max_lengths", "split_sizes"):
            values[key] = {k: int(v) for k, v in values[key].items()}
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DatasetInfo":
        return cls.from_dict(json.loads(text))
