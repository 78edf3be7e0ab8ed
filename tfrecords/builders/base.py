"""Shared tensorflow-datasets builder code for the real and synthetic datasets.

Every dataset stores the same example structure: each modality's sequence trimmed to its
true length (`tfds.features.Tensor(shape=(None, D), dtype=float32)`), the BERT token and
segment ids trimmed to the text length, the fused label and (SIMS) the unimodal labels,
the sample id and its raw text. `MSABuilderBase` declares those features and records the
`DatasetInfo` of the build in the tfds metadata (`metadata.json`, key `m3sa`).
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any, ClassVar, Dict, Iterator, Mapping, Tuple

import numpy as np
import tensorflow_datasets as tfds

from tfrecords import specs
from tfrecords.info import DatasetInfo

METADATA_KEY = "m3sa"
VERSION = tfds.core.Version("1.0.0")
RELEASE_NOTES = {"1.0.0": "First release: trimmed sequences, fused and unimodal labels."}


def example_features(name: str) -> tfds.features.FeaturesDict:
    """The feature structure of one stored example of dataset `name`."""
    spec = specs.spec_for(name)
    label_keys = ("fused",) + (specs.MODALITIES if spec.has_unimodal_labels else ())
    return tfds.features.FeaturesDict({
        **{m: tfds.features.Tensor(shape=(None, spec.feature_dims[m]), dtype=np.float32)
           for m in specs.MODALITIES},
        "text_token_ids": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        "text_segment_ids": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        "labels": tfds.features.FeaturesDict(
            {k: tfds.features.Scalar(dtype=np.float32) for k in label_keys}),
        "id": tfds.features.Text(),
        "raw_text": tfds.features.Text(),
    })


class MSABuilderBase(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of every M³SA-TF builder; subclasses set `DATASET` and `_split_generators`.

    `self.dataset_info()` is the `DatasetInfo` of the build (complete once
    `download_and_prepare` has run); it is also saved in the tfds metadata.
    """

    DATASET: ClassVar[str] = ""
    VERSION = VERSION
    RELEASE_NOTES = RELEASE_NOTES
    DESCRIPTION: ClassVar[str] = ""

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=textwrap.dedent(self.DESCRIPTION),
            features=example_features(self.DATASET),
            homepage="https://github.com/thuiar/MMSA",
            metadata=tfds.core.MetadataDict(),
        )

    # -- DatasetInfo in the tfds metadata ----------------------------------------------
    def _record(self, **values: Any) -> None:
        current = dict(self.info.metadata.get(METADATA_KEY) or self._initial_record())
        current.update(values)
        self.info.metadata[METADATA_KEY] = current

    def _initial_record(self) -> Dict[str, Any]:
        spec = specs.spec_for(self.DATASET)
        return DatasetInfo(
            name=self.DATASET, family=spec.family,
            feature_dims=dict(spec.feature_dims), max_lengths=dict(spec.max_lengths),
            split_sizes={}, has_unimodal_labels=spec.has_unimodal_labels,
            label_range=spec.label_range, bayes_reference=None,
            scale=1.0, seed=0).to_dict()

    def dataset_info(self) -> DatasetInfo:
        return DatasetInfo.from_dict(self.info.metadata.get(METADATA_KEY)
                                     or self._initial_record())

    @staticmethod
    def _keyed(examples: Iterator[Dict[str, Any]]) -> Iterator[Tuple[str, Dict]]:
        # Keys are positions: ids of real files are not guaranteed unique.
        for i, example in enumerate(examples):
            yield f"{i:06d}", example
