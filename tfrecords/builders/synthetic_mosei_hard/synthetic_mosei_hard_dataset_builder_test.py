"""tfds test of the synthetic-mosei-hard builder on its small predefined config."""

import os

import tensorflow_datasets as tfds

from tfrecords.builders.synthetic_mosei_hard import synthetic_mosei_hard_dataset_builder


class SyntheticHardDatasetBuilderTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = synthetic_mosei_hard_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["scale0.02_seed0"]
    SPLITS = {"train": 327, "valid": 37, "test": 93}
    SKIP_CHECKSUMS = True
    # Nothing is downloaded; tfds still wants an existing example folder.
    EXAMPLE_DIR = os.path.dirname(os.path.abspath(__file__))


if __name__ == "__main__":
    tfds.testing.test_main()
