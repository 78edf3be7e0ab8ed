"""Built datasets shared by the data-layer tests (small scales; built once per session)."""

import pytest

SCALE = 0.02


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("m3sa_data"))


@pytest.fixture(scope="session")
def synthetic_mosi(data_dir):
    from tfrecords import build_dataset

    return build_dataset("synthetic-mosi", data_dir, scale=SCALE, seed=0)


@pytest.fixture(scope="session")
def synthetic_sims(data_dir):
    from tfrecords import build_dataset

    return build_dataset("synthetic-sims", data_dir, scale=SCALE, seed=0)
