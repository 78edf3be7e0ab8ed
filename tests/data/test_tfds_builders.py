"""Runs the tensorflow-datasets test case of every builder (defined next to the builder,
as `tfds new` lays them out) under pytest."""

import pytest

# tfds.testing imports dill, which tensorflow-datasets does not install (test extra).
pytest.importorskip("dill", reason="tensorflow_datasets.testing needs `dill` (pip install dill)")

from tfrecords.builders.mmsa_mosei.mmsa_mosei_dataset_builder_test import (
    MmsaDatasetBuilderTest as TestMmsaMoseiBuilder)
from tfrecords.builders.mmsa_mosi.mmsa_mosi_dataset_builder_test import (
    MmsaDatasetBuilderTest as TestMmsaMosiBuilder)
from tfrecords.builders.mmsa_sims.mmsa_sims_dataset_builder_test import (
    MmsaDatasetBuilderTest as TestMmsaSimsBuilder)
from tfrecords.builders.synthetic_mosi.synthetic_mosi_dataset_builder_test import (
    SyntheticDatasetBuilderTest as TestSyntheticMosiBuilder)
from tfrecords.builders.synthetic_sims.synthetic_sims_dataset_builder_test import (
    SyntheticDatasetBuilderTest as TestSyntheticSimsBuilder)

__all__ = ["TestMmsaMoseiBuilder", "TestMmsaMosiBuilder", "TestMmsaSimsBuilder",
           "TestSyntheticMosiBuilder", "TestSyntheticSimsBuilder"]
