#!/bin/sh
# Test of the training benchmark's self-check (bench/train_bench.py): with
# every side from the same weights the losses agree and the driver passes;
# with one side's learning rate scaled by 1.1 it fails, naming that side.
# Three sides: Estuary, the same binary again as 'baseline', TF 2.15 (the
# oracle venv); 10 checked + 10 timed steps, one run.
# Args: PYTHON_WRAPPER TRAIN_BENCH_PY TRAIN_BENCH_BIN
set -eu
python="$PWD/$1"
driver="$2"
bin="$PWD/$3"
data="${TEST_TMPDIR:-/tmp}/train_bench_selftest"
out="${TEST_TMPDIR:-/tmp}/train_bench_selftest.out"
common="--runs 1 --check_steps 10 --steps 10 --threads 1 --inputs memory --data $data
  --systems estuary,tf --baseline $bin --estuary_bin $bin --tf_python $python"

fail() {
  echo "train_bench_selftest: FAIL: $*" >&2
  cat "$out" >&2
  exit 1
}

# Unbroken: passes, every row checked.
"$python" "$driver" $common --models dnn,sparse > "$out" 2>&1 || fail "the unbroken run failed"
grep -q "^# dnn_memory_threads1: losses agree" "$out" || fail "dnn row not checked"
grep -q "^# sparse_memory_threads1: losses agree" "$out" || fail "sparse row not checked"
grep -q "^train_bench.py: PASS" "$out" || fail "no PASS line"

# One side broken (learning rate x 1.1): exit 1, that side alone named, no figures.
for side in tf estuary; do
  if "$python" "$driver" $common --models dnn --break_side "$side" > "$out" 2>&1; then
    fail "breaking $side was not detected"
  fi
  grep -q "^train_bench.py: FAIL dnn_memory_threads1: $side diverged at step [0-9]" "$out" ||
    fail "breaking $side: the message does not name $side alone"
  if grep -q "examples_per_sec" "$out"; then fail "breaking $side: figures were printed"; fi
done
echo "train_bench_selftest: PASS (unbroken passes; a broken tf or estuary fails, named)"
