"""Runs the tensorflow-datasets test case of each hard synthetic builder under pytest."""

import pytest

pytest.importorskip("dill", reason="tensorflow_datasets.testing needs `dill` (pip install dill)")

from tfrecords.builders.synthetic_mosi_hard.synthetic_mosi_hard_dataset_builder_test import (
    SyntheticHardDatasetBuilderTest as TestSyntheticMosiHardBuilder)
from tfrecords.builders.synthetic_sims_hard.synthetic_sims_hard_dataset_builder_test import (
    SyntheticHardDatasetBuilderTest as TestSyntheticSimsHardBuilder)

# synthetic_mosei_hard has the same test next to its builder (as `tfds new` lays it out);
# it is left out here because a 0.02 build of MOSEI's sizes takes minutes on 2 cores.
__all__ = ["TestSyntheticMosiHardBuilder", "TestSyntheticSimsHardBuilder"]
