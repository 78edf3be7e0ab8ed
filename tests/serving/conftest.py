"""Fixtures shared by the serving and pipeline tests: one tiny synthetic dataset per
session."""

import pytest

from tests.serving.helpers import DATASET, SCALE


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    import tfrecords

    data_dir = str(tmp_path_factory.mktemp("serving_data"))
    tfrecords.build_dataset(DATASET, data_dir, scale=SCALE, seed=0)
    return data_dir
