"""Fixtures shared by the serving and pipeline tests: one tiny synthetic dataset and
one pipeline run (whose trained model the export tests reuse) per session."""

import pytest

from tests.serving.helpers import DATASET, SCALE, pipeline_argv, run_pipeline


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    import tfrecords

    data_dir = str(tmp_path_factory.mktemp("serving_data"))
    tfrecords.build_dataset(DATASET, data_dir, scale=SCALE, seed=0)
    return data_dir


@pytest.fixture(scope="session")
def first_pipeline_run(tmp_path_factory, tiny_data_dir):
    """The pipeline run once on a fresh root: {"root", "argv", "executions", "log"}.
    Training is most of the serving tests' time, so the export tests export this
    run's trained model instead of training their own."""
    root = tmp_path_factory.mktemp("pipeline_root")
    argv = pipeline_argv(root, tiny_data_dir)
    executions, log = run_pipeline(argv)
    return {"root": str(root), "argv": argv, "executions": executions, "log": log}
