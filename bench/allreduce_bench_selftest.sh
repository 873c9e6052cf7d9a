#!/usr/bin/env bash
# The all-reduce benchmark's self-check: bench/allreduce_bench with 2 and 3
# processes on loopback over small and odd sizes (1 float, 1 KiB, 1 MiB + 1
# float), a few calls each. Passes when every rank's result equalled the
# expected sum (the binary checks each size before timing it) and the
# figures were printed.
#   allreduce_bench_selftest.sh BENCH_BINARY
set -euo pipefail
bench="$1"
for world in 2 3; do
  out=$("$bench" --world "$world" --sizes 4,1024,1048580 --iters 3,3,3 --warmup 1)
  if ! grep -q '^checked_sizes 3$' <<<"$out" || ! grep -q '^busbw_gbps_1048580 [0-9.]*$' <<<"$out"; then
    echo "allreduce_bench_selftest: world $world: unexpected output:"
    echo "$out"
    exit 1
  fi
  echo "world $world: ok"
done
