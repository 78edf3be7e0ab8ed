"""The `>>>` examples of the docstrings are run, so that they stay true.

Every module of the project's packages that has examples is run; an example that needs a
dataset build or a training run is marked `# doctest: +SKIP` in its module, and a module
that cannot run its examples here is listed in NOT_RUN with the reason.
"""

import doctest
import importlib
import io
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Modules whose examples are not run, and why; every other module with examples is.
NOT_RUN = {
    "tfrecords.pipeline": "its example builds a dataset on disk",
    "tuning.heatmap": "its example writes a PNG into the working directory",
}
PACKAGES = ("msa_core", "tfrecords", "m3sa_tf", "pipelines", "tuning")


def modules_with_examples(package):
    for directory, subdirs, names in os.walk(os.path.join(REPO, package)):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            with open(path, "r", encoding="utf-8") as handle:
                if ">>>" not in handle.read():
                    continue
            relative = os.path.relpath(path, REPO)[: -len(".py")]
            yield relative.replace(os.sep, ".").removesuffix(".__init__")


MODULES = sorted(
    name for package in PACKAGES for name in modules_with_examples(package)
    if name not in NOT_RUN
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.write)
    assert runner.failures == 0, f"{runner.failures} failing example(s):\n{report.getvalue()}"


def test_not_run_names_real_modules():
    every = {n for p in PACKAGES for n in modules_with_examples(p)}
    assert set(NOT_RUN) <= every, sorted(set(NOT_RUN) - every)
