"""The packages' layering (docs/architecture.md), checked on the source: every import
statement of every .py file, at any depth (function-level imports included), may name
only the project packages its layer stands on."""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# package -> the other project packages it may import (itself is always allowed).
ALLOWED = {
    "msa_core": set(),
    "tfrecords": {"msa_core"},
    "m3sa_tf": {"msa_core"},
    "pipelines": {"msa_core", "tfrecords", "m3sa_tf"},
    "tuning": {"msa_core", "tfrecords", "m3sa_tf", "pipelines"},
    "benchmarks": {"msa_core", "tfrecords", "m3sa_tf", "pipelines", "tuning"},
}
PROJECT = set(ALLOWED) | {"tests"}


def imported_modules(tree):
    """(line, dotted module name) of every absolute import in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        # Relative imports (level > 0) stay inside their own package.


def violations(package, relpath, source):
    """One message per import in `source` (a file of `package`) that its layer forbids."""
    allowed = ALLOWED[package] | {package}
    found = []
    for line, module in imported_modules(ast.parse(source, filename=relpath)):
        top = module.split(".")[0]
        if top in PROJECT and top not in allowed:
            may = ", ".join(sorted(ALLOWED[package])) or "no other project package"
            found.append(f"{relpath}:{line}: imports {module}; {package} may import {may}")
    return found


def package_files(package):
    root = os.path.join(REPO, package)
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                yield os.path.relpath(path, REPO), path


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package):
    files = list(package_files(package))
    assert files, f"no .py files found under {package}/"
    found = []
    for relpath, path in files:
        with open(path, "r", encoding="utf-8") as handle:
            found += violations(package, relpath, handle.read())
    assert not found, "forbidden imports:\n" + "\n".join(found)


def test_a_forbidden_import_is_reported_with_file_line_and_module():
    source = ("import os\n"
              "from m3sa_tf import metrics\n"
              "def later():\n"
              "    import tuning.results as results\n"
              "    from . import sibling\n")
    assert violations("pipelines", "pipelines/x.py", source) == [
        "pipelines/x.py:4: imports tuning.results; pipelines may import m3sa_tf, "
        "msa_core, tfrecords",
    ]
    assert violations("msa_core", "msa_core/x.py", "import tfrecords.specs\n") == [
        "msa_core/x.py:1: imports tfrecords.specs; msa_core may import no other "
        "project package",
    ]
