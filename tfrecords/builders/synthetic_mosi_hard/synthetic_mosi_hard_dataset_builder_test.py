"""tfds test of the synthetic-mosi-hard builder on its small predefined config."""

import os

import tensorflow_datasets as tfds

from tfrecords.builders.synthetic_mosi_hard import synthetic_mosi_hard_dataset_builder


class SyntheticHardDatasetBuilderTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = synthetic_mosi_hard_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["scale0.02_seed0"]
    SPLITS = {"train": 26, "valid": 5, "test": 14}
    SKIP_CHECKSUMS = True
    # Nothing is downloaded; tfds still wants an existing example folder.
    EXAMPLE_DIR = os.path.dirname(os.path.abspath(__file__))


if __name__ == "__main__":
    tfds.testing.test_main()
