"""Fixtures of the experiment tests: the tiny dataset and the shared runs directories
(session-wide, so that every test file on a worker reuses the runs of the cells they
share)."""

import pytest

from tests.experiments.helpers import DATASET
from tests.pipelines.conftest import SCALE


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    import tfrecords

    path = str(tmp_path_factory.mktemp("data"))
    tfrecords.build_dataset(DATASET, path, scale=SCALE, seed=0)
    return path


@pytest.fixture(scope="session")
def runs_dirs(tmp_path_factory):
    """One shared runs directory per key-modality setting: experiments that hold the
    same cell (the full model is most experiments' reference) train it once."""
    root = tmp_path_factory.mktemp("runs")
    return {"fixed": str(root / "fixed_key"), "auto": str(root / "auto_key")}


@pytest.fixture
def load_benchmark(monkeypatch):
    """load_benchmark("gating_check"): a script of `benchmarks/` imported as a module,
    with `benchmarks/` on sys.path for its own imports (as when it runs as a script)."""
    import importlib.util
    import os

    folder = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                          "benchmarks"))

    def load(name):
        monkeypatch.syspath_prepend(folder)
        spec = importlib.util.spec_from_file_location(name, os.path.join(folder,
                                                                         f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
