"""tfds test of the mosei builder on `dummy_data/` (two samples per split)."""

import tensorflow_datasets as tfds

from tfrecords.builders.mmsa_mosei import mmsa_mosei_dataset_builder


class MmsaDatasetBuilderTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = mmsa_mosei_dataset_builder.Builder
    SPLITS = {"train": 2, "valid": 2, "test": 2}
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
