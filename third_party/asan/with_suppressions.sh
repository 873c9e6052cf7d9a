#!/usr/bin/env bash
# --run_under wrapper of --config=asan (.bazelrc): runs a test, and every
# process it starts (they inherit the environment), with LSAN_OPTIONS naming
# lsan_suppressions.txt. LSAN_OPTIONS already set come last, so they win.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
supp="$here/lsan_suppressions.txt"
if [ ! -f "$supp" ]; then
  supp="${BASH_SOURCE[0]}.runfiles/estuary/third_party/asan/lsan_suppressions.txt"
fi
if [ ! -f "$supp" ]; then
  echo "with_suppressions: cannot find lsan_suppressions.txt beside $0" >&2
  exit 1
fi
export LSAN_OPTIONS="suppressions=$supp ${LSAN_OPTIONS:-}"
exec "$@"
