"""Reading and validating MMSA's processed feature pickles (SPEC.md §2).

MMSA (thuiar/MMSA) ships CMU-MOSI, CMU-MOSEI and CH-SIMS as one pickle per dataset:
`{"train", "valid", "test"}` → per split a dict of arrays (`text` (N, T, 768) BERT
features, `text_bert` (N, 3, T) = token ids / attention mask / segment ids, `audio`,
`vision` (N, T, D), `audio_lengths`, `vision_lengths` (N,), `regression_labels` (N,),
for SIMS `regression_labels_T/_A/_V`, `id`, `raw_text`, ...).

What this module does with the quirks of real files:
- float64 arrays become float32;
- `-inf`/`+inf` in `audio` become 0, as MMSA's own loader does
  (`audio[audio == -np.inf] = 0`); infinities anywhere else, and NaN anywhere, are errors;
- the text length is the sum of the `text_bert` attention-mask row (index 1), which must
  be a prefix of ones; audio and vision lengths come from `*_lengths`;
- a length may be 0; a length larger than the padded array, negative or fractional is an
  error; values past a length (zero padding) are dropped;
- a truncated or unreadable file, a missing split or key, a wrong shape: `DatasetError`
  naming the file, split, key and what was expected.

The file is read with `safe_pickle.SafeUnpickler`, never with `pickle.load`.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np

from tfrecords import specs
from tfrecords.errors import DatasetError
from tfrecords.safe_pickle import UnsafePickleError, safe_load

# Rows of `text_bert`.
TOKEN_IDS_ROW, MASK_ROW, SEGMENT_ROW = 0, 1, 2
UNIMODAL_LABEL_KEYS = {"text": "regression_labels_T", "audio": "regression_labels_A",
                       "vision": "regression_labels_V"}
# Samples scanned at once for NaN/inf: bounds the temporary memory on MOSEI-size files.
_SCAN_CHUNK = 512


def resolve_pickle_path(source: str, name: str) -> str:
    """The pickle file for dataset `name` given a file or a folder holding it.

    A folder may hold the pickle directly or in `Processed/`; the standard MMSA name
    (`unaligned_50.pkl` for MOSI/MOSEI, `unaligned_39.pkl` for SIMS) is preferred, else
    the folder's only `.pkl` file.
    """
    spec = specs.spec_for(name)
    path = os.path.abspath(os.path.expanduser(source))
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise DatasetError(f"{path}: no such file or folder (expected MMSA's "
                           f"{spec.pickle_name} for {name}, or a folder holding it)")
    for folder in (path, os.path.join(path, "Processed")):
        candidate = os.path.join(folder, spec.pickle_name)
        if os.path.isfile(candidate):
            return candidate
    pickles = sorted(f for f in os.listdir(path) if f.endswith(".pkl"))
    if len(pickles) == 1:
        return os.path.join(path, pickles[0])
    found = ", ".join(pickles) if pickles else "no .pkl file"
    raise DatasetError(
        f"{path}: expected {spec.pickle_name} (MMSA's processed {name} features) or a "
        f"single .pkl file in this folder, found {found}"
    )


def read_pickle(path: str) -> Any:
    """Loads a pickle with the restricted unpickler; any failure is a `DatasetError`."""
    try:
        with open(path, "rb") as f:
            return safe_load(f)
    except UnsafePickleError as e:
        raise DatasetError(f"{path}: {e}; not loading it") from None
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError,
            MemoryError, AttributeError, KeyError) as e:
        raise DatasetError(
            f"{path}: not a readable pickle (truncated or corrupt file? "
            f"{type(e).__name__}: {e})"
        ) from None


class ValidatedSplit:
    """One split of an MMSA-layout dict, checked; yields cleaned, trimmed examples.

    Arguments:
        raw: the split's dict of arrays as MMSA stores it.
        file: the file it came from (for messages).
        split: the split name (for messages).
        name: the dataset name (selects the expected feature widths and labels).

    Raises:
        DatasetError: on a missing key, a wrong shape or dtype, a bad length, NaN, an
            infinity outside `audio`, or a label out of range.
    """

    def __init__(self, raw: Any, *, file: str, split: str, name: str):
        self.file, self.split, self.name = file, split, name
        self.spec = specs.spec_for(name)
        if not isinstance(raw, Mapping):
            self._fail(None, f"expected a dict of arrays, got {type(raw).__name__}")
        self.raw = raw
        labels = self._array("regression_labels")
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            self._fail("regression_labels", f"expected shape (N,), got {labels.shape}")
        self.n = int(labels.shape[0])
        self.labels = {"fused": self._labels(labels, "regression_labels")}
        if self.spec.has_unimodal_labels:
            for modality, key in UNIMODAL_LABEL_KEYS.items():
                values = self._array(key)
                if values.ndim == 2 and values.shape[1] == 1:
                    values = values[:, 0]
                self._check_shape(key, values, (self.n,), "(N,)")
                self.labels[modality] = self._labels(values, key)

        self.sequences: Dict[str, np.ndarray] = {}
        for modality in specs.MODALITIES:
            array = self._array(modality)
            dim = self.spec.feature_dims[modality]
            if array.ndim != 3 or array.shape[0] != self.n or array.shape[2] != dim:
                self._fail(modality, f"expected shape (N, T, D) with N={self.n} matching "
                           f"'regression_labels' and D={dim}, got {array.shape}")
            self.sequences[modality] = array
        self.max_lengths = {m: int(a.shape[1]) for m, a in self.sequences.items()}

        text_bert = self._array("text_bert")
        t_text = self.max_lengths["text"]
        self._check_shape("text_bert", text_bert, (self.n, 3, t_text),
                          "(N, 3, T) = (token ids, attention mask, segment ids) with "
                          f"N={self.n} and T={t_text} matching 'text'")
        self.text_bert = text_bert
        self.lengths = {"text": self._text_lengths(text_bert[:, MASK_ROW, :])}
        for modality in ("audio", "vision"):
            key = f"{modality}_lengths"
            self.lengths[modality] = self._lengths(key, self._array(key),
                                                   self.max_lengths[modality])
        for row, key in ((TOKEN_IDS_ROW, "token ids"), (SEGMENT_ROW, "segment ids")):
            values = text_bert[:, row, :]
            if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(
                    values != np.round(values)):
                self._fail("text_bert", f"expected non-negative integer {key} in row {row}")
        for modality in specs.MODALITIES:
            self._scan_values(modality)
        self.ids = self._strings("id")
        self.raw_text = self._strings("raw_text")

    # -- checks -----------------------------------------------------------------------
    def _fail(self, key: Optional[str], message: str):
        where = f"split '{self.split}'" + (f", key '{key}'" if key else "")
        raise DatasetError(f"{self.file}: {where}: {message}")

    def _array(self, key: str) -> np.ndarray:
        if key not in self.raw:
            present = ", ".join(sorted(map(str, self.raw.keys())))
            self._fail(key, f"missing (keys present: {present})")
        value = self.raw[key]
        if not isinstance(value, np.ndarray):
            try:
                value = np.asarray(value)
            except Exception:  # noqa: BLE001 - any conversion failure is a data error
                self._fail(key, f"expected a numeric array, got {type(value).__name__}")
        if value.dtype.kind not in "fiub":
            self._fail(key, f"expected a numeric array, got dtype {value.dtype}")
        return value

    def _check_shape(self, key, array, expected, description):
        if tuple(array.shape) != tuple(expected):
            self._fail(key, f"expected shape {description}, got {tuple(array.shape)}")

    def _labels(self, values: np.ndarray, key: str) -> np.ndarray:
        lo, hi = self.spec.label_range
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            self._fail(key, f"expected finite labels, sample {bad} is {values[bad]}")
        if np.any(values < lo - 1e-6) or np.any(values > hi + 1e-6):
            self._fail(key, f"expected labels in [{lo:g}, {hi:g}], got range "
                       f"[{values.min():g}, {values.max():g}]")
        return values.astype(np.float32)

    def _lengths(self, key: str, values: np.ndarray, max_length: int) -> np.ndarray:
        self._check_shape(key, values, (self.n,), f"(N,) with N={self.n}")
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            self._fail(key, "expected integer lengths")
        if np.any(values < 0) or np.any(values > max_length):
            bad = int(np.flatnonzero((values < 0) | (values > max_length))[0])
            self._fail(key, f"expected lengths in [0, {max_length}] (the padded length "
                       f"of the array), sample {bad} has {values[bad]:g}")
        return values.astype(np.int32)

    def _text_lengths(self, mask: np.ndarray) -> np.ndarray:
        if not np.all((mask == 0) | (mask == 1)):
            self._fail("text_bert", "expected an attention mask of 0/1 in row 1")
        lengths = mask.sum(axis=1).astype(np.int32)
        prefix = np.arange(mask.shape[1])[None, :] < lengths[:, None]
        if not np.array_equal(prefix, mask.astype(bool)):
            bad = int(np.flatnonzero(np.any(prefix != mask.astype(bool), axis=1))[0])
            self._fail("text_bert", "expected the attention mask (row 1) to be ones "
                       f"followed by zeros, sample {bad} is not")
        return lengths

    def _scan_values(self, modality: str):
        array = self.sequences[modality]
        if array.dtype.kind != "f":
            return
        for start in range(0, self.n, _SCAN_CHUNK):
            chunk = array[start:start + _SCAN_CHUNK]
            nan = np.isnan(chunk)
            if nan.any():
                sample = start + int(np.flatnonzero(nan.any(axis=(1, 2)))[0])
                self._fail(modality, f"expected no NaN, found {int(nan.sum())} NaN "
                           f"values (first in sample {sample})")
            if modality != "audio":
                inf = np.isinf(chunk)
                if inf.any():
                    sample = start + int(np.flatnonzero(inf.any(axis=(1, 2)))[0])
                    self._fail(modality, "expected finite values (only 'audio' may hold "
                               f"±inf), found {int(inf.sum())} (first in sample {sample})")

    def _strings(self, key: str) -> List[str]:
        if key not in self.raw:
            present = ", ".join(sorted(map(str, self.raw.keys())))
            self._fail(key, f"missing (keys present: {present})")
        values = np.asarray(self.raw[key]).reshape(-1)
        if values.shape[0] != self.n:
            self._fail(key, f"expected {self.n} entries matching 'regression_labels', "
                       f"got {values.shape[0]}")
        out = []
        for v in values.tolist():
            if isinstance(v, bytes):
                v = v.decode("utf-8", errors="replace")
            if not isinstance(v, str):
                v = str(v)
            out.append(v)
        return out

    # -- output -----------------------------------------------------------------------
    def example(self, i: int) -> Dict[str, Any]:
        """Sample `i`, cleaned and trimmed to its lengths (the builders' example dict)."""
        out: Dict[str, Any] = {}
        for modality in specs.MODALITIES:
            length = int(self.lengths[modality][i])
            values = np.asarray(self.sequences[modality][i, :length], dtype=np.float32)
            if modality == "audio":
                values = np.where(np.isinf(values), np.float32(0), values)
            out[modality] = values
        t = int(self.lengths["text"][i])
        out["text_token_ids"] = self.text_bert[i, TOKEN_IDS_ROW, :t].astype(np.int32)
        out["text_segment_ids"] = self.text_bert[i, SEGMENT_ROW, :t].astype(np.int32)
        out["labels"] = {k: np.float32(v[i]) for k, v in self.labels.items()}
        out["id"] = self.ids[i]
        out["raw_text"] = self.raw_text[i]
        return out

    def examples(self) -> Iterator[Dict[str, Any]]:
        for i in range(self.n):
            yield self.example(i)


def validate_splits(data: Any, *, file: str, name: str,
                    splits=specs.SPLITS) -> Dict[str, ValidatedSplit]:
    """Checks a whole MMSA-layout dict; returns the validated splits by name."""
    if not isinstance(data, Mapping):
        raise DatasetError(f"{file}: expected a dict with splits {', '.join(splits)}, "
                           f"got {type(data).__name__}")
    out = {}
    for split in splits:
        if split not in data:
            present = ", ".join(sorted(map(str, data.keys())))
            raise DatasetError(f"{file}: split '{split}' is absent (expected "
                               f"{', '.join(splits)}; present: {present})")
        out[split] = ValidatedSplit(data[split], file=file, split=split, name=name)
    dims = {s: v.max_lengths for s, v in out.items()}
    first = next(iter(dims.values()))
    for split, lengths in dims.items():
        if lengths != first:
            raise DatasetError(f"{file}: split '{split}': expected the same padded "
                               f"lengths in every split ({first}), got {lengths}")
    return out


def load_mmsa_pickle(source: str, name: str) -> Dict[str, ValidatedSplit]:
    """Finds, safely loads and validates the MMSA pickle for dataset `name`."""
    path = resolve_pickle_path(source, name)
    return validate_splits(read_pickle(path), file=path, name=name)
