"""One tiny synthetic dataset per test session for the tuning tests."""

import pytest

from tests.tuning.helpers import DATASET, SCALE


@pytest.fixture(scope="session")
def tuning_data_dir(tmp_path_factory):
    import tfrecords

    data_dir = str(tmp_path_factory.mktemp("tuning_data"))
    tfrecords.build_dataset(DATASET, data_dir, scale=SCALE, seed=0)
    return data_dir
