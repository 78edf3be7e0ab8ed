"""The `>>>` examples of the docstrings are run, so that they stay true.

Only modules whose examples are cheap (no dataset build, no training) are listed; an
example that needs one is marked `# doctest: +SKIP` in its module, and a module whose
examples are all like that is listed in NOT_RUN with the reason. A new module with
examples in msa_core/ or tfrecords/ must be added to one of the two lists.
"""

import doctest
import importlib
import io
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODULES = (
    "msa_core.constants",
    "msa_core.io",
    "msa_core.metrics",
    "m3sa_tf.config",
    "m3sa_tf.metrics.binary_sentiment_accuracy",
    "m3sa_tf.metrics.rounded_class_accuracy",
    "tfrecords.safe_pickle",
    "tfrecords.synthetic",
)
NOT_RUN = {
    "tfrecords.pipeline": "its example builds a dataset on disk",
}
# Packages every module of which must be in MODULES or NOT_RUN when it has examples.
COVERED_PACKAGES = ("msa_core", "tfrecords")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    attempted = 0
    for test in doctest.DocTestFinder().find(module, name):
        result = runner.run(test, out=report.write)
        attempted += result.attempted
    assert attempted, f"{name} has no docstring examples; take it off the list"
    assert runner.failures == 0, f"{runner.failures} failing example(s):\n{report.getvalue()}"


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


@pytest.mark.parametrize("package", COVERED_PACKAGES)
def test_every_module_with_examples_is_run_or_says_why_not(package):
    missing = sorted(set(modules_with_examples(package)) - set(MODULES) - set(NOT_RUN))
    assert not missing, f"add to MODULES or NOT_RUN in {__file__}: {missing}"
