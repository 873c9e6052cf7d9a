#!/bin/sh
# Runs compat_test.py with TensorFlow 2.15 from the oracle venv.
# Args: PYTHON_WRAPPER COMPAT_TEST_PY TOOL
set -eu
exec "$1" "$2" --tool "$3"
