#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (--config=fuzz: Debian's clang-14,
# ASan + UBSan) and runs each for a bounded time, from its seed corpus
# fuzz/corpus/<fuzzer>/ with its dictionary fuzz/dict/<name>.dict. New
# inputs go to OUT/<fuzzer>/corpus (the repository's corpus is only read),
# the log to OUT/<fuzzer>.log, a crash to OUT/<fuzzer>/crash-<sha1> (add it
# to fuzz/corpus/<fuzzer>/ as a regression once the parser is fixed).
# Exits 1 if any fuzzer found a crash, leak or timeout.
#
# Usage: scripts/fuzz.sh [--seconds S] [--out DIR] [--parallel] [--nice]
#                        [--no-build] [FUZZER...]
#   --seconds S   run each fuzzer S seconds (default 60; libFuzzer's
#                 -max_total_time)
#   --parallel    all at once (default: one after the other, as CI does)
#   --nice        under nice -n 19
#   FUZZER        e.g. csv_parser_fuzzer (default: every fuzz/*_fuzzer.cc)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
out=""
parallel=0
nice_cmd=()
build=1
fuzzers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift ;;
    --out) out="$2"; shift ;;
    --parallel) parallel=1 ;;
    --nice) nice_cmd=(nice -n 19) ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) fuzzers+=("$1") ;;
  esac
  shift
done
if [ "${#fuzzers[@]}" -eq 0 ]; then
  for f in fuzz/*_fuzzer.cc; do fuzzers+=("$(basename "$f" .cc)"); done
fi
if [ -z "$out" ]; then out="$(mktemp -d /tmp/estuary-fuzz.XXXXXX)"; fi
mkdir -p "$out/bin"

if [ "$build" = 1 ]; then
  targets=()
  for f in "${fuzzers[@]}"; do targets+=("//fuzz:$f"); done
  bazel build --config=fuzz "${targets[@]}"
fi
# bazel-bin follows the last build's configuration; copy the binaries so
# later builds cannot replace them under a running fuzzer.
# (--config=fuzz's output tree: -c opt + --platform_suffix=fuzz.)
bin_dir="bazel-out/k8-optfuzz/bin/fuzz"
for f in "${fuzzers[@]}"; do cp -f "$bin_dir/$f" "$out/bin/$f"; done

run_one() {
  local f="$1" name="${1%_fuzzer}"
  local dict=() 
  if [ -f "fuzz/dict/$name.dict" ]; then dict=("-dict=fuzz/dict/$name.dict"); fi
  mkdir -p "$out/$f/corpus"
  # -timeout: an input slower than 25 s is a finding; -rss_limit_mb: so is
  # one that needs more than 2 GiB; -max_len: the largest seed (a job file)
  # is ~10 KB.
  "${nice_cmd[@]}" "$out/bin/$f" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
    -max_len=16384 -print_final_stats=1 -artifact_prefix="$out/$f/" "${dict[@]}" \
    "$out/$f/corpus" "fuzz/corpus/$f" >"$out/$f.log" 2>&1
}

failed=()
if [ "$parallel" = 1 ]; then
  declare -A pids
  for f in "${fuzzers[@]}"; do run_one "$f" & pids[$f]=$!; done
  for f in "${fuzzers[@]}"; do wait "${pids[$f]}" || failed+=("$f"); done
else
  for f in "${fuzzers[@]}"; do
    echo "fuzz: $f for ${seconds}s"
    run_one "$f" || failed+=("$f")
  done
fi

for f in "${fuzzers[@]}"; do
  if [ ! -f "$out/$f.log" ]; then echo "fuzz: $f: no log" >&2; failed+=("$f"); continue; fi
  stats="$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$out/$f.log" | sed 's/stat:://' | tr '\n' ' ' || true)"
  cov="$(grep -E '#[0-9]+.*(DONE|cov:)' "$out/$f.log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)"
  echo "fuzz: $f: $cov $stats"
done
if [ "${#failed[@]}" -gt 0 ]; then
  for f in "${failed[@]}"; do
    echo "fuzz: $f FAILED: see $out/$f.log and $out/$f/crash-*|leak-*|timeout-*|oom-*" >&2
    grep -E 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|SUMMARY' "$out/$f.log" | head -5 >&2 || true
  done
  exit 1
fi
echo "fuzz: no crash in ${#fuzzers[@]} fuzzers (logs in $out)"
