#!/bin/sh
# Runs a compat test script with TensorFlow 2.15 from the oracle venv.
# Args: PYTHON_WRAPPER COMPAT_TEST_PY TOOL [more args for the script]
set -eu
python="$1" script="$2" tool="$3"
shift 3
exec "$python" "$script" --tool "$tool" "$@"
