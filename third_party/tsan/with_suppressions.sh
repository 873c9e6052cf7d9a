#!/usr/bin/env bash
# --run_under wrapper of --config=tsan (.bazelrc): runs a test, and every
# process it starts (they inherit the environment), with TSAN_OPTIONS naming
# suppressions.txt, which covers what stays uninstrumented (Debian's gRPC
# core and Protobuf). TSAN_OPTIONS already set (--test_env) come last, so
# they win.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
supp="$here/suppressions.txt"
if [ ! -f "$supp" ]; then
  # `bazel run`: the wrapper's own runfiles.
  supp="${BASH_SOURCE[0]}.runfiles/estuary/third_party/tsan/suppressions.txt"
fi
if [ ! -f "$supp" ]; then
  echo "with_suppressions: cannot find suppressions.txt beside $0" >&2
  exit 1
fi
export TSAN_OPTIONS="suppressions=$supp second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}"
exec "$@"
