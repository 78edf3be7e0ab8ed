"""StatisticsGen: per-split, per-feature statistics of the examples, as JSON.

Artifact (`ROOT/statistics/<id>/statistics.json`):

    {"dataset": ..., "splits": {"train": {"examples": N,
        "features": {
          "audio": {"values": ..., "valid_steps": ..., "min": ..., "max": ..., "mean": ...,
                    "std": ..., "nan": ..., "inf": ..., "nonzero_padding": ...},
          "audio_length": {"min": ..., "max": ..., "mean": ..., "zero": ...,
                           "quantiles": {"0.0": ..., "0.25": ..., ...},
                           "histogram": {"edges": [...], "counts": [...]}},
          "text_token_ids": {...}, ...},
        "labels": {"fused": {...}, ...}}, ...},
     "anomalies": ["test/audio: 3 NaN value(s)", ...]}

Sequence features are summarised over their valid steps (t < length, or the padding
mask for token ids): min, max, mean and std of the finite values, while `nan` and `inf`
count every stored value (padding included) and `nonzero_padding` counts padding steps
that are not all zero. Lengths get their range, mean, number of zero-length examples,
quantiles and a 10-bin histogram. `anomalies` lists what a model would trip over:
non-finite values, non-zero padding, empty splits, lengths beyond the padded length.

Parameters: `batch_size` (how many examples are read at a time; the result does not
depend on it).
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Mapping

import numpy as np

from msa_core.io import write_json_atomic
from pipelines.stages import example_gen
from pipelines.stages.execution import Execution

NAME = "statistics"
STATISTICS_FILE = "statistics.json"
SEQUENCE_FEATURES = ("text", "audio", "vision")
TOKEN_FEATURES = ("text_token_ids", "text_segment_ids")
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def parameters(batch_size: int = 256) -> dict:
    return {"batch_size": int(batch_size)}


class ValueSummary:
    """Running count / NaN / inf / min / max / mean / std of a stream of numbers."""

    def __init__(self):
        self.values = 0
        self.finite = 0
        self.nan = 0
        self.inf = 0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.total = 0.0
        self.total_sq = 0.0

    def update_counts(self, array: np.ndarray) -> None:
        """Counts NaN and inf among all of `array` (padding included)."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            self.nan += int(np.isnan(array).sum())
            self.inf += int(np.isinf(array).sum())

    def update_values(self, array: np.ndarray) -> None:
        """Adds the valid values of `array` to the range, mean and std."""
        array = np.asarray(array, dtype=np.float64).ravel()
        self.values += array.size
        finite = array[np.isfinite(array)]
        if finite.size:
            self.finite += finite.size
            self.minimum = min(self.minimum, float(finite.min()))
            self.maximum = max(self.maximum, float(finite.max()))
            self.total += float(finite.sum())
            self.total_sq += float(np.square(finite).sum())

    def result(self) -> Dict[str, Any]:
        mean = self.total / self.finite if self.finite else None
        std = (math.sqrt(max(self.total_sq / self.finite - mean * mean, 0.0))
               if self.finite else None)
        return {
            "values": self.values,
            "min": self.minimum if self.finite else None,
            "max": self.maximum if self.finite else None,
            "mean": mean,
            "std": std,
            "nan": self.nan,
            "inf": self.inf,
        }


def length_summary(lengths: np.ndarray, max_length: int) -> Dict[str, Any]:
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return {"count": 0}
    top = max(int(max_length), int(lengths.max()), 1)
    counts, edges = np.histogram(lengths, bins=10, range=(0, top))
    return {
        "count": int(lengths.size),
        "min": int(lengths.min()),
        "max": int(lengths.max()),
        "mean": float(lengths.mean()),
        "zero": int((lengths == 0).sum()),
        "beyond_padded_length": int((lengths > max_length).sum()),
        "quantiles": {str(q): float(np.quantile(lengths, q)) for q in QUANTILES},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def split_statistics(dataset, max_lengths: Mapping[str, int]) -> Dict[str, Any]:
    """Statistics of one split's batched `(features, labels)` dataset."""
    summaries: Dict[str, ValueSummary] = {}
    nonzero_padding: Dict[str, int] = {}
    valid_steps: Dict[str, int] = {}
    lengths: Dict[str, List[np.ndarray]] = {}
    labels: Dict[str, ValueSummary] = {}
    examples = 0
    for features, batch_labels in dataset.as_numpy_iterator():
        examples += len(next(iter(batch_labels.values())))
        for name in SEQUENCE_FEATURES:
            if name not in features:
                continue
            values = features[name]
            length = features[f"{name}_length"]
            valid = np.arange(values.shape[1])[None, :] < length[:, None]
            summary = summaries.setdefault(name, ValueSummary())
            summary.update_counts(values)
            summary.update_values(values[valid])
            padding = values[~valid]
            nonzero_padding[name] = nonzero_padding.get(name, 0) + int(
                np.any(padding != 0, axis=-1).sum()
            )
            valid_steps[name] = valid_steps.get(name, 0) + int(valid.sum())
            lengths.setdefault(f"{name}_length", []).append(length)
        if "text_padding_mask" in features:
            mask = features["text_padding_mask"].astype(bool)
            lengths.setdefault("text_padding_mask", []).append(mask.sum(axis=1))
            for name in TOKEN_FEATURES:
                if name in features:
                    summary = summaries.setdefault(name, ValueSummary())
                    summary.update_values(features[name][mask])
        for name, value in batch_labels.items():
            summary = labels.setdefault(name, ValueSummary())
            summary.update_counts(value)
            summary.update_values(value)

    result: Dict[str, Any] = {}
    for name, summary in summaries.items():
        entry = summary.result()
        if name in valid_steps:
            entry["valid_steps"] = valid_steps[name]
            entry["nonzero_padding"] = nonzero_padding[name]
        result[name] = entry
    for name, chunks in lengths.items():
        modality = "text" if name == "text_padding_mask" else name[: -len("_length")]
        key = "text_token_length" if name == "text_padding_mask" else name
        result[key] = length_summary(np.concatenate(chunks), max_lengths.get(modality, 0))
    return {
        "examples": examples,
        "features": result,
        "labels": {name: summary.result() for name, summary in labels.items()},
    }


def find_anomalies(splits: Mapping[str, Mapping[str, Any]]) -> List[str]:
    found = []
    for split, stats in splits.items():
        if stats["examples"] == 0:
            found.append(f"{split}: no examples")
        for group in ("features", "labels"):
            for name, entry in stats[group].items():
                for key, what in (("nan", "NaN value(s)"), ("inf", "infinite value(s)"),
                                  ("nonzero_padding", "padding step(s) that are not zero"),
                                  ("beyond_padded_length", "length(s) beyond the padded length")):
                    if entry.get(key):
                        found.append(f"{split}/{name}: {entry[key]} {what}")
    return found


def run(artifact_dir: str, inputs: Mapping[str, Execution], params: Mapping[str, Any]) -> dict:
    import tfrecords

    examples = example_gen.read_examples(inputs["examples"])
    datasets, info = tfrecords.load_dataset(
        examples["dataset"], examples["data_dir"], scale=examples["scale"],
        seed=examples["seed"], batch_size=params["batch_size"], shuffle=False,
        build_if_missing=False,
    )
    splits = {split: split_statistics(ds, info.max_lengths) for split, ds in datasets.items()}
    anomalies = find_anomalies(splits)
    write_json_atomic(
        os.path.join(artifact_dir, STATISTICS_FILE),
        {"dataset": examples["dataset"], "splits": splits, "anomalies": anomalies},
    )
    for line in anomalies:
        print(f"[{NAME}] anomaly: {line}", flush=True)
    return {"examples": {split: s["examples"] for split, s in splits.items()},
            "anomalies": len(anomalies)}
