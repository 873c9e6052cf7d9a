#!/bin/sh
# Runs serving_test.py with the TF venv's Python.
# Args: PYTHON_WRAPPER SERVING_TEST_PY ESTUARY [unittest args]
set -eu
python="$1" script="$2" tool="$3"
shift 3
exec "$python" "$script" --tool "$tool" "$@"
