#!/usr/bin/env python3
"""Training benchmark that checks itself: Estuary vs PyTorch vs TF 2.15 Estimator.

Every side trains the same model from the SAME initial weights on the same
batches in the same order and prints its loss after each of the first
--check_steps steps and after the last; the driver fails (exit 1, naming
the side, the step and both losses) when a side's losses leave the others'
by more than the tolerance, and only then reports the timings: medians of
--runs runs per side, sides alternating.

Data (numpy, seed 42), written once to --data:
  dnn:    x ~ N(0, 1) [N, 64]; y = 1[x.w + 0.5 * noise > 0] for a fixed
          random linear teacher w (N = 65536 = 256 batches of 256);
          dnn.csv holds the same rows as text (x00..x63,label; %.9g, so
          every float32 reads back exactly)
  sparse: 26 ids per example: field f's id = hash(f, Zipf(1.2) rank) mod
          2^20; y ~ Bernoulli(sigmoid(sum of a random teacher's weights of
          the ids)); sparse.csv holds the same rows as text (f00..f25,label)
  init_dnn/, init_sparse/: the initial weights (seed 7), one raw float32
          file per variable under TF's name ('/' -> '.'; kernels [in, out]):
          glorot-uniform kernels and N(0, 0.01) biases; N(0, 0.01) weights
          for the 2^20-row linear table. Each side loads them (Estuary and
          TF warm-start from a checkpoint of them).

Rows:
  memory  every side gets pre-cut batches before its first step (nothing
          is parsed, batched or converted in a step; TF slices local
          variables holding every batch, see train_bench_tf.py)
  csv     own input pipeline: every side parses MODEL.csv itself inside the
          timed loop (Estuary: the Estimator's CSV Pipeline; TF: batched
          tf.io.decode_csv on tf.data; PyTorch: numpy.loadtxt per batch).
          The sparse model then has one identity column (2^20 buckets) per
          CSV field, f00..f25: 26 tables, the sum of one weight from each,
          every side starting from zeros (TF's and Estuary's default).

Sides (--systems): estuary (bazel-bin/bench/train_bench), torch (Debian's
1.13 with OpenBLAS preloaded, /usr/bin/python3), torch2 (PyTorch 2.x from
PyPI with MKL and oneDNN, .venv-torch: scripts/setup.sh --bench), tf (TF
2.15, .venv-tf), baseline (--baseline: another train_bench binary, e.g. the
commit before a change). Threads (--threads N) bound every pool of every
side: Estuary's GEMM pool and CSV parser threads; TF's intra-op and
inter-op pools and tf.data's private pool; torch's intra-op and inter-op
pools, OpenBLAS / MKL / OpenMP threads (Debian's torch runs 1 intra-op
thread and N OpenBLAS threads: its GEMMs run on OpenBLAS's pool, and two
pools of N on N cores fight), OpenMP threads that sleep when they wait
(OMP_WAIT_POLICY=PASSIVE: torch's best on a shared machine).

Tolerance: the sides compute the same float32 math in different summation
orders (GEMM blocking and threads, reduction trees, the order in which
repeated sparse ids are summed), so their losses agree to ~1e-7 relative
after one step and stay within 4e-7 for the first 500 steps (measured:
Estuary 1 vs 2 GEMM threads, Estuary vs PyTorch 1.13 and 2.x; all four
sides within 1.7e-7 over 100 steps). --rtol (default 1e-5, 25x that)
bounds |loss - median of the sides' losses| / median at each of the first
--check_steps (100) steps; a 1% change of one side's learning rate gives
1.75e-4 at step 2 (train_bench_selftest.sh breaks one side by 10%). Later the DNN overfits
(loss ~0.02 after 2000 steps, 8 epochs) and the trajectories separate as
ReLUs flip on rounding differences: up to 3.4e-2 relative at step 2020
between 1 and 2 GEMM threads of Estuary itself. So the last step (after the
timed steps) is only checked against --final_rtol (default 0.2): it catches
a side that stopped training or blew up, not a subtle error.

Prints one "# key: value" line per fact of the run (date, CPU model, build
flags, peer versions, load average), then per row
  <model>_<input>_threads<N>_<side>_examples_per_sec <median>
  <model>_<input>_threads<N>_<side>_examples_per_cpu_sec <median>  (process
      CPU time of the timed steps, every thread: steadier on a shared machine)
  <model>_<input>_threads<N>_<ours>_vs_<side> <ratio> (per CPU-second <ratio>)
Build first: bazel build //bench:train_bench.
"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/tmp/estuary/train_bench"
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread"  # Debian's libopenblas0-pthread
DATA_VERSION = "3"  # bump when make_data changes what it writes
STEPS = {("dnn", "memory"): 2000, ("sparse", "memory"): 2000, ("dnn", "csv"): 1000,
         ("sparse", "csv"): 1000}


def make_data(out, rows=65536, seed=42):
    os.makedirs(out, exist_ok=True)
    stamp = os.path.join(out, "VERSION")
    if os.path.exists(stamp) and open(stamp).read() == DATA_VERSION:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 64), dtype=np.float32)
    w = rng.standard_normal(64).astype(np.float32)
    y = (x @ w + 0.5 * rng.standard_normal(rows).astype(np.float32) > 0).astype(np.float32)
    x.tofile(f"{out}/dnn_x.f32")
    y.tofile(f"{out}/dnn_y.f32")
    np.savetxt(f"{out}/dnn.csv", np.concatenate([x, y[:, None]], axis=1), fmt="%.9g",
               delimiter=",")
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
    np.savetxt(f"{out}/sparse.csv", np.concatenate([ids, y.astype(np.int64)[:, None]], axis=1),
               fmt="%d", delimiter=",")

    init = np.random.default_rng(7)

    def glorot(n_in, n_out):
        limit = np.sqrt(6.0 / (n_in + n_out))
        return init.uniform(-limit, limit, (n_in, n_out)).astype(np.float32)

    def small(*shape):
        return (0.01 * init.standard_normal(shape)).astype(np.float32)

    os.makedirs(f"{out}/init_dnn", exist_ok=True)
    os.makedirs(f"{out}/init_sparse", exist_ok=True)
    for name, value in [("dnn.hiddenlayer_0.kernel", glorot(64, 256)),
                        ("dnn.hiddenlayer_0.bias", small(256)),
                        ("dnn.hiddenlayer_1.kernel", glorot(256, 128)),
                        ("dnn.hiddenlayer_1.bias", small(128)),
                        ("dnn.logits.kernel", glorot(128, 1)),
                        ("dnn.logits.bias", small(1))]:
        value.tofile(f"{out}/init_dnn/{name}.f32")
    small(buckets, 1).tofile(f"{out}/init_sparse/linear.linear_model.ids.weights.f32")
    small(1).tofile(f"{out}/init_sparse/linear.linear_model.bias_weights.f32")
    with open(stamp, "w") as f:
        f.write(DATA_VERSION)


class SideFailed(Exception):
    pass


def run_side(side, cmd, env):
    """Runs one side; returns (losses {step: loss}, examples/s, examples per CPU-second,
    version or None)."""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    m = re.search(r"^examples_per_sec (\d+)", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise SideFailed(f"{side} failed (exit {p.returncode}): {' '.join(cmd)}\n"
                         f"{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    losses = {int(s): float(v) for s, v in re.findall(r"^loss_at_step (\d+) (\S+)", p.stdout, re.M)}
    version = re.search(r"^version (.*)$", p.stdout, re.M)
    steps = int(re.search(r"^steps (\d+)", p.stdout, re.M).group(1))
    cpu = float(re.search(r"^cpu_seconds (\S+)", p.stdout, re.M).group(1))
    return (losses, int(m.group(1)), steps * 256 / max(cpu, 1e-9),
            version.group(1) if version else None)


def check_losses(row, got, rtol, check_steps, final_rtol):
    """Fails when a side's loss leaves the median of all sides' by more than
    rtol (steps 1..check_steps) or final_rtol (later steps).

    got: {side: {step: loss}} of one round. Returns the largest relative
    difference seen. With two sides the median is their mean, so both are
    named; with three or more the one that left the others is.
    """
    sides = list(got)
    steps = sorted(set.intersection(*(set(got[s]) for s in sides)))
    if not steps:
        sys.exit(f"train_bench.py: {row}: the sides report no common step to compare")
    worst = 0.0
    for step in steps:
        values = {s: got[s][step] for s in sides}
        if any(not np.isfinite(v) for v in values.values()):
            sys.exit(f"train_bench.py: FAIL {row}: non-finite loss at step {step}: {values}")
        median = statistics.median(values.values())
        off = {s: abs(v - median) / max(abs(median), 1e-12) for s, v in values.items()}
        tol = rtol if step <= check_steps else final_rtol
        bad = [s for s in sides if off[s] > tol]
        if bad:
            others = ", ".join(f"{s} {values[s]:.7g}" for s in sides)
            sys.exit(f"train_bench.py: FAIL {row}: {' and '.join(bad)} diverged at step {step}: "
                     f"relative difference {max(off[s] for s in bad):.2e} from the median "
                     f"{median:.7g} > tolerance {tol:g} (losses: {others})")
        if step <= check_steps:
            worst = max(worst, max(off.values()))
    return worst


def lscpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown (no lscpu)"
    m = re.search(r"^Model name:\s*(.*)$", out, re.M)
    flags = re.search(r"^Flags:\s*(.*)$", out, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    isa = [f for f in ["avx2", "avx512f", "amx_tile"] if f in flags]
    cpus = re.search(r"^CPU\(s\):\s*(\d+)", out, re.M)
    return (f"{m.group(1) if m else 'unknown'}, {cpus.group(1) if cpus else '?'} CPUs, "
            f"{' '.join(isa) or 'no avx2'}")


def build_flags():
    path = os.path.join(ROOT, "user.bazelrc")
    user = open(path).read().strip().replace("\n", "; ") if os.path.exists(path) else "none"
    return f"user.bazelrc: {user} (.bazelrc default: --copt=-march=x86-64-v3), -c opt"


def estuary_commit():
    try:
        p = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %cs"], capture_output=True,
                           text=True)
        return p.stdout.strip() or "unknown (not a git checkout)"
    except OSError:
        return "unknown (no git)"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--models", default="dnn,sparse")
    ap.add_argument("--inputs", default="memory,csv")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--systems", default="estuary,torch,torch2,tf")
    ap.add_argument("--check_steps", type=int, default=100,
                    help="untimed steps whose losses are compared with --rtol")
    ap.add_argument("--steps", type=int, default=0,
                    help="timed steps per run; 0: 2000 in memory, 1000 through CSV")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--final_rtol", type=float, default=0.2)
    ap.add_argument("--baseline", default="",
                    help="also run this train_bench binary (e.g. built from another commit) "
                         "as side 'baseline'")
    ap.add_argument("--estuary_bin", default=os.path.join(ROOT, "bazel-bin/bench/train_bench"))
    ap.add_argument("--tf_python", default=os.path.join(ROOT, ".venv-tf/bin/python"))
    ap.add_argument("--torch2_python", default=os.path.join(ROOT, ".venv-torch/bin/python"))
    ap.add_argument("--break_side", default="",
                    help="self-test: scale this side's learning rate by --break_lr_scale")
    ap.add_argument("--break_lr_scale", type=float, default=1.1)
    args = ap.parse_args()
    systems = args.systems.split(",")
    if args.baseline:
        systems.insert(1, "baseline")
    for side, path in [("tf", args.tf_python), ("torch2", args.torch2_python),
                       ("estuary", args.estuary_bin)]:
        if side in systems and not os.path.exists(path):
            sys.exit(f"train_bench.py: side {side}: {path} not found (build it, run "
                     f"scripts/setup.sh --bench, or drop {side} from --systems)")
    make_data(args.data)
    load_before = os.getloadavg()
    print(f"# date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# cpu: {lscpu_model()}")
    print(f"# estuary: commit {estuary_commit()}; build {build_flags()}")
    print(f"# tolerance: {args.rtol:g} relative at steps 1..{args.check_steps}, "
          f"{args.final_rtol:g} at the last")
    sys.stdout.flush()
    versions = {}
    for model in args.models.split(","):
        for inp in args.inputs.split(","):
            steps = args.steps or STEPS[(model, inp)]
            for threads in [int(t) for t in args.threads.split(",")]:
                row = f"{model}_{inp}_threads{threads}"
                flags = ["--model", model, "--data", args.data, "--input", inp,
                         "--threads", str(threads), "--check_steps", str(args.check_steps),
                         "--steps", str(steps)]
                if not (model == "sparse" and inp == "csv"):  # 26 tables: from zeros
                    flags += ["--init", os.path.join(args.data, f"init_{model}")]
                pools = {k: str(threads) for k in
                         ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"]}
                # libgomp's spinning barrier made 2-thread PyTorch 10-20x slower on a
                # loaded 2-core machine (3k vs 32-53k examples/s); sleeping is its best.
                pools["OMP_WAIT_POLICY"] = "PASSIVE"
                debian_torch_env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS, **pools)
                cmds = {
                    "estuary": ([args.estuary_bin] + flags, None),
                    "baseline": ([args.baseline] + flags, None),
                    "torch": (["/usr/bin/python3", "bench/train_bench_torch.py",
                               "--intra_op_threads", "1"] + flags, debian_torch_env),
                    "torch2": ([args.torch2_python, "bench/train_bench_torch.py"] + flags,
                               dict(os.environ, CUDA_VISIBLE_DEVICES="", **pools)),
                    "tf": ([args.tf_python, "bench/train_bench_tf.py"] + flags,
                           dict(os.environ, **pools)),
                }
                speed = {s: [] for s in systems}
                per_cpu = {s: [] for s in systems}
                worst = 0.0
                for _ in range(args.runs):
                    got = {}
                    for s in systems:
                        cmd, env = cmds[s]
                        if s == args.break_side:
                            cmd = cmd + ["--lr_scale", str(args.break_lr_scale)]
                        try:
                            losses, eps, epc, version = run_side(s, cmd, env)
                        except SideFailed as e:
                            sys.exit(f"train_bench.py: FAIL {row}: {e}")
                        got[s] = losses
                        speed[s].append(eps)
                        per_cpu[s].append(epc)
                        if version:
                            versions[s] = version
                    if len(got) > 1:
                        worst = max(worst, check_losses(row, got, args.rtol, args.check_steps,
                                                        args.final_rtol))
                first = next(iter(got.values()))
                print(f"# {row}: losses agree (largest relative difference in steps 1..{args.check_steps}: "
                      f"{worst:.1e}); "
                      f"loss at step 1 {first[min(first)]:.6f}, at step {max(first)} "
                      f"{first[max(first)]:.6f}; load average {os.getloadavg()[0]:.1f}")
                med = {s: statistics.median(v) for s, v in speed.items()}
                med_cpu = {s: statistics.median(v) for s, v in per_cpu.items()}
                for s in systems:
                    print(f"{row}_{s}_examples_per_sec {med[s]:.0f}")
                for s in systems:
                    print(f"{row}_{s}_examples_per_cpu_sec {med_cpu[s]:.0f}")
                for ours in [s for s in systems if s in ("estuary", "baseline")]:
                    for s in systems:
                        if s != ours:
                            print(f"{row}_{ours}_vs_{s} {med[ours] / med[s]:.2f} "
                                  f"(per CPU-second {med_cpu[ours] / med_cpu[s]:.2f})")
                sys.stdout.flush()
    for s, v in versions.items():
        print(f"# {s}: {v}")
    load_after = os.getloadavg()
    print(f"# load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print("train_bench.py: PASS")


if __name__ == "__main__":
    main()
