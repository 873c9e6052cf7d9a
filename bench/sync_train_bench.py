#!/usr/bin/env python3
"""Synchronous training throughput (issue 10, training bench).

The Fashion-MNIST DNN (examples/fashion_mnist_dnn.json: DNNClassifier
784-256-128-10, Adam 0.001, per-replica batch 128; Debian's
dataset-fashion-mnist idx files, repeated, shuffled, shard "auto"), run by:
  tf_mwms2           TF 2.15 tf.estimator.DNNClassifier with
                     RunConfig(train_distribute=tf.distribute.experimental.
                     MultiWorkerMirroredStrategy()), chief + worker as two
                     processes on loopback with TF_CONFIG, train_and_evaluate
                     (bench/sync_train_bench_tf.py); global batch 256
  tf_one             (reference) the TF script without TF_CONFIG: one process,
                     no strategy, batch 128
  estuary_mwms1      `estuary local --workers 0`, distribution
                     multi_worker_mirrored: the chief alone (1 worker)
  estuary_mwms2      `estuary local --workers 1`: chief + 1 worker over the
                     TCP ring; global batch 256
  estuary_mwms2_overlap  estuary_mwms2 with distribution.overlap_backward
                     (each 256 KiB gradient bucket all-reduced as soon as
                     Backward finished it, bucket_bytes 262144)
  estuary_mirrored2  `estuary train`, distribution mirrored with 2 replicas
                     (num_replicas_per_worker 2) in one process; global batch 256
  estuary_one        `estuary train` without distribution (reference), batch 128
alternating systems within each of --runs rounds. Figure: steady-state
global_step/sec x global batch = examples/s. Estuary: from the chief's
`loss = ..., step = N (S sec)` lines (every --log_every steps), dropping the
first --skip_logs intervals (warm-up) and the last; steps / seconds over
the rest. TF: a hook reads global_step after each step and times from the
--tf_warmup-th step to the last (max_steps: chief and worker stop at the
same step).
Threads, the same on every side: 1 compute thread per replica (Estuary
run_config.intra_op_parallelism_threads 1; TF intra_op = inter_op = 1,
tf.data private pool 1, OMP_NUM_THREADS=1).
Also CPU time per global step over the same window (user + system time of
every process of the system from /proc/PID/stat; Estuary's launcher not
counted): less sensitive to other load on the machine than steps/sec.

Prints one figure per line (medians over runs), then ratios.
  bazel build -c opt //cli:estuary //server:chief //worker //ps && \\
    /usr/bin/python3 bench/sync_train_bench.py --runs 3
"""
import argparse
import atexit
import copy
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from benchlib import Marks, cpu_secs, free_port, stream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_PY = os.path.join(ROOT, ".venv-tf/bin/python")
SYSTEMS = {  # name -> (replicas in sync, how it runs)
    "tf_mwms2": 2, "tf_one": 1, "estuary_mwms1": 1, "estuary_mwms2": 2,
    "estuary_mirrored2": 2, "estuary_one": 1, "estuary_mwms2_overlap": 2,
}
# Not in the default --systems (name it to run it).
OPTIONAL_SYSTEMS = {"estuary_mwms2_overlap"}


def make_job(args, model_dir, distribution):
    job = copy.deepcopy(json.load(open(os.path.join(ROOT, args.job))))
    job["model_dir"] = model_dir
    job["train_input"]["num_epochs"] = -1
    job["train_input"]["shard"] = "auto"
    rc = job.setdefault("run_config", {})
    rc.update({"save_checkpoints_steps": 10**8, "save_summary_steps": 10**8,
               "log_step_count_steps": args.log_every, "keep_checkpoint_max": 1,
               "intra_op_parallelism_threads": 1})
    job["train_spec"]["max_steps"] = args.steps
    job.pop("eval_spec", None)
    job.pop("distribution", None)
    if distribution:
        job["distribution"] = distribution
    path = model_dir + ".json"
    with open(path, "w") as f:
        json.dump(job, f, indent=1)
    return path, job["train_input"]["batch_size"]


def fail(what, out):
    sys.exit(f"sync_train_bench: {what} failed:\n{out[-6000:]}")


LOG = re.compile(r"loss = (\S+), step = (\d+) \(([\d.]+) sec\)")
LOSSES = {}  # system -> [(step, loss)] of its first run: a strategy that was ignored shows here


def run_estuary_local(args, workers, tmp, extra=None):
    model_dir = tempfile.mkdtemp(prefix=f"est_mwms{workers + 1}_", dir=tmp)
    job, _ = make_job(args, model_dir, {"strategy": "multi_worker_mirrored",
                                        "heartbeat_interval_secs": 0.5,
                                        "heartbeat_timeout_secs": 10,
                                        "startup_timeout_secs": 60,
                                        "shutdown_timeout_secs": 30, **(extra or {})})
    cmd = [args.estuary, "local", job, "--workers", str(workers), "--ps", "0",
           "--timeout", str(args.timeout)]
    marks = Marks()

    def on_line(_, line):
        # estuary local prefixes each task's lines ("chief:0     | ...") and logs
        # "started chief:0 (pid N)".
        m = re.search(r"started (\w+:\d+) \(pid (\d+)\)", line)
        if m:
            marks.pids[m.group(1)] = int(m.group(2))
        m = LOG.search(line)
        if m and line.startswith("chief:0"):
            marks.add(int(m.group(2)), float(m.group(3)))
    rc, out = stream(cmd, on_line, args.timeout + 30)
    if rc != 0:
        fail(" ".join(cmd), out)
    rate, cpu = marks.window(args.skip_logs)
    if rate is None:
        fail("too few logged intervals (raise --steps) in " + " ".join(cmd), out)
    return rate, cpu


def run_estuary_train(args, tmp, distribution, system):
    model_dir = tempfile.mkdtemp(prefix=system + "_", dir=tmp)
    job, _ = make_job(args, model_dir, distribution)
    cmd = [args.estuary, "train", job]
    marks = Marks()
    losses = LOSSES.setdefault(system, [])
    record = not losses

    def on_line(p, line):
        marks.pids["train"] = p.pid
        m = LOG.search(line)
        if m:
            marks.add(int(m.group(2)), float(m.group(3)))
            if record:
                losses.append((int(m.group(2)), m.group(1)))
    rc, out = stream(cmd, on_line, args.timeout)
    if rc != 0:
        fail(" ".join(cmd), out)
    rate, cpu = marks.window(args.skip_logs)
    if rate is None:
        fail("too few logged intervals (raise --steps) in " + " ".join(cmd), out)
    return rate, cpu


def run_tf(args, tmp, cluster):
    model_dir = tempfile.mkdtemp(prefix="tf_", dir=tmp)
    job, _ = make_job(args, model_dir, None)
    steps = args.tf_steps if cluster else args.tf_one_steps
    cmd = [TF_PY, "bench/sync_train_bench_tf.py", "--job", job, "--model_dir", model_dir,
           "--warmup", str(args.tf_warmup), "--steps", str(steps)]
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    pids, window = {}, {}

    def on_line(p, line):
        pids["chief"] = p.pid
        m = re.match(r"timing_window (start|end) global_step (\d+)", line)
        if m:
            window[m.group(1)] = (int(m.group(2)), {r: cpu_secs(pid) for r, pid in pids.items()})

    worker, worker_log = None, None
    chief_env = env
    if cluster:
        spec = {"chief": [f"localhost:{free_port()}"], "worker": [f"localhost:{free_port()}"]}
        worker_env = dict(env, TF_CONFIG=json.dumps({"cluster": spec,
                                                     "task": {"type": "worker", "index": 0}}))
        chief_env = dict(env, TF_CONFIG=json.dumps({"cluster": spec,
                                                    "task": {"type": "chief", "index": 0}}))
        worker_log = open(os.path.join(tmp, "tf_worker.log"), "w")
        worker = subprocess.Popen(cmd, stdout=worker_log, stderr=subprocess.STDOUT, cwd=ROOT,
                                  env=worker_env, start_new_session=True)
        pids["worker"] = worker.pid
    try:
        rc, out = stream(cmd, on_line, args.timeout, env=chief_env)
    finally:
        if worker is not None:
            try:
                worker.wait(30)  # it stops at max_steps too
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            worker_log.close()
    m = re.search(r"global_steps_per_sec ([\d.]+)", out)
    if rc != 0 or not m or len(window) != 2:
        fail(" ".join(cmd) + (" (chief)" if cluster else ""),
             out + (open(worker_log.name).read() if worker_log else ""))
    (g0, c0), (g1, c1) = window["start"], window["end"]
    cpu = {r: (c1[r] - c0[r]) * 1e3 / (g1 - g0) for r in c1}
    return float(m.group(1)), cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default=",".join(s for s in SYSTEMS if s not in OPTIONAL_SYSTEMS))
    ap.add_argument("--job", default="examples/fashion_mnist_dnn.json")
    ap.add_argument("--estuary", default=os.path.join(ROOT, "bazel-bin/cli/estuary"))
    ap.add_argument("--steps", type=int, default=4000, help="Estuary max_steps")
    ap.add_argument("--log_every", type=int, default=200)
    ap.add_argument("--skip_logs", type=int, default=2, help="warm-up intervals dropped")
    ap.add_argument("--tf_warmup", type=int, default=100)
    ap.add_argument("--tf_steps", type=int, default=1000, help="TF max_steps, 2 processes")
    ap.add_argument("--tf_one_steps", type=int, default=3000, help="TF max_steps, one process")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()
    systems = args.systems.split(",")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        sys.exit(f"sync_train_bench: unknown systems {unknown} (known: {', '.join(SYSTEMS)})")
    if any(s.startswith("tf") for s in systems) and not os.path.exists(TF_PY):
        sys.exit("sync_train_bench: no TF venv (.venv-tf): run scripts/setup.sh --bench")
    batch = json.load(open(os.path.join(ROOT, args.job)))["train_input"]["batch_size"]
    tmp = tempfile.mkdtemp(prefix="sync_train_bench_")
    atexit.register(shutil.rmtree, tmp, True)  # model dirs, logs: GBs per run
    rates = {s: [] for s in systems}
    cpus = {s: [] for s in systems}
    load = [os.getloadavg()[0]]
    for r in range(args.runs):
        for s in systems:
            if s == "tf_mwms2":
                rate, cpu = run_tf(args, tmp, cluster=True)
            elif s == "tf_one":
                rate, cpu = run_tf(args, tmp, cluster=False)
            elif s in ("estuary_mwms1", "estuary_mwms2"):
                rate, cpu = run_estuary_local(args, 0 if s == "estuary_mwms1" else 1, tmp)
            elif s == "estuary_mwms2_overlap":
                rate, cpu = run_estuary_local(args, 1, tmp, {"overlap_backward": True,
                                                             "bucket_bytes": 262144})
            elif s == "estuary_mirrored2":
                rate, cpu = run_estuary_train(
                    args, tmp, {"strategy": "mirrored", "num_replicas_per_worker": 2}, s)
            else:
                rate, cpu = run_estuary_train(args, tmp, None, s)
            if LOSSES.get("estuary_one") and LOSSES.get("estuary_one") == LOSSES.get("estuary_mirrored2"):
                sys.exit("sync_train_bench: estuary_mirrored2 logged the same losses as estuary_one "
                         "(global batch 256 vs 128): `estuary train` ignored distribution mirrored")
            rates[s].append(rate)
            cpus[s].append(cpu)
            load.append(os.getloadavg()[0])
            print(f"# run {r + 1} {s} global_step/sec {rate:.1f}, examples/s "
                  f"{rate * batch * SYSTEMS[s]:.0f}, CPU ms per step "
                  f"{json.dumps({k: round(v, 2) for k, v in cpu.items()})}", file=sys.stderr,
                  flush=True)
    print(f"# Fashion-MNIST DNN, per-replica batch {batch}; median of {args.runs} runs; "
          f"1-min load average {min(load):.2f}..{max(load):.2f}")
    med = {s: statistics.median(v) for s, v in rates.items()}
    ex = {s: med[s] * batch * SYSTEMS[s] for s in systems}
    for s in systems:
        print(f"{s}_global_steps_per_sec {med[s]:.1f}")
        print(f"{s}_examples_per_sec {ex[s]:.0f}")
    cpu_ex = {}
    for s in systems:
        for role in sorted(cpus[s][0]):
            v = statistics.median(c.get(role, 0.0) for c in cpus[s])
            print(f"{s}_cpu_ms_per_step_{role.replace(':', '')} {v:.3f}")
        total = statistics.median(sum(c.values()) for c in cpus[s])
        print(f"{s}_cpu_ms_per_step_total {total:.3f}")
        if total > 0:
            cpu_ex[s] = batch * SYSTEMS[s] * 1e3 / total
            print(f"{s}_examples_per_cpu_sec {cpu_ex[s]:.0f}")
    pairs = [("estuary_mwms2_overlap", "estuary_mwms2"),
             ("estuary_mwms2", "tf_mwms2"), ("estuary_mirrored2", "tf_mwms2"),
             ("estuary_mwms2", "estuary_mwms1"), ("estuary_mirrored2", "estuary_one"),
             ("estuary_mwms1", "estuary_one"), ("estuary_one", "tf_one"), ("tf_mwms2", "tf_one")]
    for a, b in pairs:
        if a in ex and b in ex:
            print(f"{a}_vs_{b} {ex[a] / ex[b]:.2f}")
    for a, b in pairs:
        if a in cpu_ex and b in cpu_ex:
            print(f"{a}_vs_{b}_per_cpu_sec {cpu_ex[a] / cpu_ex[b]:.2f}")
    print(f"# raw {json.dumps(rates)}", file=sys.stderr)
    print(f"# raw cpu {json.dumps(cpus)}", file=sys.stderr)


if __name__ == "__main__":
    main()
