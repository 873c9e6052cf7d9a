#!/usr/bin/env bash
# Runs every test: unit tests beside the code, multi-process tests under
# tests/. Extra arguments go to `bazel test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel test //... "$@"
