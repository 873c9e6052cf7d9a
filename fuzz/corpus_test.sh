#!/usr/bin/env bash
# Replays a fuzzer's corpus directory through its harness binary (fuzz.bzl):
# every seed and every crash regression must run without a crash.
# Usage: corpus_test.sh BINARY CORPUS_DIR (relative to the runfiles root).
set -euo pipefail
binary="$1"
corpus="$2"
if [ ! -d "$corpus" ]; then
  echo "corpus_test: no corpus directory $corpus" >&2
  exit 1
fi
count="$(find -L "$corpus" -type f | wc -l)"
if [ "$count" -eq 0 ]; then
  echo "corpus_test: $corpus is empty" >&2
  exit 1
fi
# Under --config=fuzz the binary is libFuzzer's: given files, it runs each
# once. Otherwise standalone_main does the same.
find -L "$corpus" -type f -print0 | xargs -0 "$binary"
