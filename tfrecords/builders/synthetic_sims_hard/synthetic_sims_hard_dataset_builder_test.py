"""tfds test of the synthetic-sims-hard builder on its small predefined config."""

import os

import tensorflow_datasets as tfds

from tfrecords.builders.synthetic_sims_hard import synthetic_sims_hard_dataset_builder


class SyntheticHardDatasetBuilderTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = synthetic_sims_hard_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["scale0.02_seed0"]
    SPLITS = {"train": 27, "valid": 9, "test": 9}
    SKIP_CHECKSUMS = True
    # Nothing is downloaded; tfds still wants an existing example folder.
    EXAMPLE_DIR = os.path.dirname(os.path.abspath(__file__))


if __name__ == "__main__":
    tfds.testing.test_main()
