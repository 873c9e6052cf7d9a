#!/usr/bin/env python3
"""Training throughput: Estuary vs PyTorch vs TF 2.15 Estimator (issue 4).

Writes the in-memory data once (numpy, seed 42; the same arrays feed all
three systems) to --data:
  dnn:    x ~ N(0, 1) [N, 64]; y = 1[x.w + 0.5 * noise > 0] for a fixed
          random linear teacher w (N = 65536 = 256 batches of 256)
  sparse: 26 ids per example: field f's id = hash(f, Zipf(1.2) rank) mod
          2^20; y ~ Bernoulli(sigmoid(sum of a random teacher's weights of
          the ids))
then runs, alternating, bazel-bin/bench/train_bench (Estuary),
bench/train_bench_torch.py (Debian's torch with OpenBLAS preloaded) and
bench/train_bench_tf.py (the TF venv) for each model (dnn, sparse) and
thread count (1, 2), --runs times each, and prints medians (examples/s) and
ratios, one figure per line.
Build first: bazel build //bench:train_bench (and, for --estuary_v3, the same
target with --config=x86_64_v3 in another output base, copied out).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/tmp/estuary/train_bench"
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
TF_PY_CANDIDATES = [os.path.join(ROOT, ".venv-tf/bin/python"), "/work/main/.venv-tf/bin/python"]


def make_data(out, rows=65536, seed=42):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 64), dtype=np.float32)
    w = rng.standard_normal(64).astype(np.float32)
    y = (x @ w + 0.5 * rng.standard_normal(rows).astype(np.float32) > 0).astype(np.float32)
    x.tofile(f"{out}/dnn_x.f32")
    y.tofile(f"{out}/dnn_y.f32")
    buckets = 1 << 20
    ranks = np.minimum(rng.zipf(1.2, size=(rows, 26)), 10**9).astype(np.uint64)
    fields = np.arange(26, dtype=np.uint64)[None, :]
    ids = ((ranks * np.uint64(0x9E3779B1) + fields * np.uint64(0x85EBCA77)) % np.uint64(buckets))
    ids = ids.astype(np.int64)
    teacher = rng.standard_normal(buckets).astype(np.float32) * 0.5
    logit = teacher[ids].sum(axis=1)
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    ids.tofile(f"{out}/sparse_ids.i64")
    y.tofile(f"{out}/sparse_y.f32")


def figure(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    m = re.search(r"examples_per_sec (\d+)", p.stdout)
    if p.returncode != 0 or not m:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--models", default="dnn,sparse")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--systems", default="estuary,torch,tf")
    ap.add_argument("--estuary_v3", default="",
                    help="also run this train_bench built with --config=x86_64_v3 (AVX2+FMA) "
                         "as system estuary_v3")
    args = ap.parse_args()
    make_data(args.data)
    tf_py = next((p for p in TF_PY_CANDIDATES if os.path.exists(p)), None)
    systems = args.systems.split(",")
    if args.estuary_v3:
        systems.insert(1, "estuary_v3")
    if "tf" in systems and tf_py is None:
        sys.exit("no TF venv (.venv-tf): run scripts/setup.sh or drop tf from --systems")
    common = ["--data", args.data, "--seconds", str(args.seconds)]
    for model in args.models.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            flags = ["--model", model, "--threads", str(threads)] + common
            # torch.set_num_threads does not reach OpenBLAS in Debian's build.
            # torch's best on 2 cores: OpenBLAS threads, torch.set_num_threads(1).
            torch_env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS, OMP_NUM_THREADS="1",
                             OPENBLAS_NUM_THREADS=str(threads))
            cmds = {
                "estuary": ([os.path.join(ROOT, "bazel-bin/bench/train_bench")] + flags, None),
                "estuary_v3": ([args.estuary_v3] + flags, None),
                "torch": (["/usr/bin/python3", "bench/train_bench_torch.py"] + flags, torch_env),
                "tf": ([tf_py or "", "bench/train_bench_tf.py"] + flags, None),
            }
            got = {s: [] for s in systems}
            for _ in range(args.runs):
                for s in systems:
                    got[s].append(figure(*cmds[s]))
            med = {s: statistics.median(v) for s, v in got.items()}
            for s in systems:
                print(f"{model}_threads{threads}_{s}_examples_per_sec {med[s]:.0f}")
            for ours in [s for s in systems if s.startswith("estuary")]:
                for s in systems:
                    if not s.startswith("estuary"):
                        print(f"{model}_threads{threads}_{ours}_vs_{s} {med[ours] / med[s]:.2f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
