#!/usr/bin/env python3
"""Async parameter-server training throughput (issue 9, bench items b and c).

The click-log wide-and-deep job (examples/clicks_wide_deep.json: DNN
256-128 over 13 normalized numeric columns + 26 8-dim embeddings of 10^5
hashed buckets, linear part over 13 bucketized + 26 hashed columns + two
2^20-bucket crosses, FTRL / Adagrad, batch 256) on the same CSV files
(`estuary gen-data clicks`, written once under --data), run by:
  tf_ps         TF 2.15 tf.estimator.DNNLinearCombinedClassifier, chief + 1 ps
                as two processes on loopback with TF_CONFIG
                (bench/ps_train_bench_tf.py); its ps never exits: killed here
  estuary_ps1   `estuary local --workers 0 --ps 1`: chief (trains) + 1 ps
  estuary_ps2   `estuary local --workers 1 --ps 1`: chief + 1 worker + 1 ps
  estuary_one   `estuary train`: one process (same job, no cluster)
  estuary_ps1grpc, estuary_ps2grpc (and with pp / np: estuary_ps1ppgrpc ...)
                as estuary_ps1 / estuary_ps2 with `distribution.ps_data_plane`
                false: Push and Pull over gRPC instead of the PS's TCP data
                plane (what a job with `security` does)
  estuary_ps1pp, estuary_ps2pp, estuary_ps1np, estuary_ps2np
                as estuary_ps1 / estuary_ps2 with `distribution.pull_with_push`
                set on (pp: one PushPull round trip per step) or off (np: a
                push, then a pull); unset (the plain names) it is on with one
                trainer (estuary_ps1), off with two (estuary_ps2)
  tf_one        (optional) the TF script without TF_CONFIG: one process
alternating systems within each of --runs rounds. Figure: steady-state
global_step/sec after warm-up x batch = examples/s. Estuary: from the
chief's `loss = ..., step = N (S sec)` lines (every --log_every steps),
dropping the first --skip_logs intervals (warm-up) and the last; steps /
seconds over the rest. TF: a hook reads global_step after each step and
times --tf_seconds after --tf_warmup steps.
Threads, the same on every side (--threads, default 1): 1 compute thread
per process (Estuary run_config.intra_op_parallelism_threads = 1; TF
intra_op = inter_op = 1, also for the ps's server; OMP_NUM_THREADS=1 for
TF). --threads 0 runs each system with its own defaults instead (what a
user who sets nothing gets: Estuary's intra_op_parallelism_threads 1, TF's
session pools sized to the machine's cores, no OMP_NUM_THREADS).
Input, the same on every side: 2-file interleave with 2 parse threads
(Estuary num_parallel_readers 2, prefetch 2 -> 1 reader + 2 parser
threads; TF tf.data private pool of 2, map(decode_csv) with 2 parallel
calls, prefetch 2); gRPC threads as each system's gRPC sets them.
Also CPU time per global step over the same window (user + system time
of every process of the system from /proc/PID/stat, sampled when the
chief logs / the TF hook marks the window; Estuary's launcher itself not
counted): less sensitive to other load on the machine than steps/sec.
For Estuary's clusters the ps logs at exit its handlers' CPU time per
phase (receive / apply / send, common/ps/ps_service.h) and its process
CPU time; printed per step.

Prints one figure per line (medians over runs), then ratios.
  bazel build //cli:estuary //server:chief //worker //ps && python3 bench/ps_train_bench.py --runs 3
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
BATCH = 256
TF_PS_KILLED = []  # per tf_ps run: was TF's ps still running when its chief had exited?


def make_data(estuary, out, rows, files):
    if os.path.exists(os.path.join(out, "DONE")):
        return
    os.makedirs(out, exist_ok=True)
    subprocess.run([estuary, "gen-data", "clicks", "--rows", str(rows), "--files", str(files),
                    "--seed", "1", "--out", out], check=True, cwd=ROOT)
    open(os.path.join(out, "DONE"), "w").close()


def make_job(args, model_dir, one_process=False, pull_with_push=None, data_plane=None):
    job = json.load(open(os.path.join(ROOT, "examples/clicks_wide_deep.json")))
    job = copy.deepcopy(job)
    job["model_dir"] = model_dir
    job["train_input"]["files"] = [os.path.join(args.data, "*.csv")]
    rc = job.setdefault("run_config", {})
    rc.update({"save_checkpoints_steps": 10**8, "save_summary_steps": 10**8,
               "log_step_count_steps": args.log_every, "keep_checkpoint_max": 1})
    if args.threads > 0:
        rc["intra_op_parallelism_threads"] = args.threads
    job["train_spec"]["max_steps"] = args.steps
    if one_process:
        job.pop("distribution", None)
    else:
        if pull_with_push is not None:
            job.setdefault("distribution", {})["pull_with_push"] = pull_with_push
        if data_plane is not None:
            job.setdefault("distribution", {})["ps_data_plane"] = data_plane
    path = os.path.join(model_dir + ".json")
    with open(path, "w") as f:
        json.dump(job, f, indent=1)
    return path


def fail(what, p_out):
    sys.exit(f"ps_train_bench: {what} failed:\n{p_out[-6000:]}")


LOG = re.compile(r"loss = \S+, step = (\d+) \(([\d.]+) sec\)")


PHASES = re.compile(r"ps handler cpu: pull (\d+) calls: receive ([\d.]+) ms, apply ([\d.]+) ms, "
                    r"send ([\d.]+) ms; push (\d+) calls: receive ([\d.]+) ms, apply ([\d.]+) ms, "
                    r"send ([\d.]+) ms")
PROC = re.compile(r"ps process: wall ([\d.]+) ms, cpu user ([\d.]+) ms, sys ([\d.]+) ms")


def ps_split(out):
    """Per global step: the ps handlers' CPU microseconds per phase, process CPU."""
    m, p = PHASES.search(out), PROC.search(out)
    if not m or not p:
        return None
    g = float(m.group(5)) or 1.0  # pushes = global steps (one per trainer step)
    v = [float(x) for x in m.groups()]
    d = {"pull_receive": v[1], "pull_apply": v[2], "pull_send": v[3],
         "push_receive": v[5], "push_apply": v[6], "push_send": v[7]}
    d = {k: x * 1e3 / g for k, x in d.items()}  # ms total -> us per step
    d["handlers_total"] = sum(d.values())
    d["process_cpu"] = (float(p.group(2)) + float(p.group(3))) * 1e3 / g
    d["pushes"] = g
    d["pulls_per_step"] = v[0] / g
    return d


def run_estuary_local(args, workers, tmp, pull_with_push=None, data_plane=None):
    model_dir = tempfile.mkdtemp(prefix=f"est_ps{workers + 1}_", dir=tmp)
    job = make_job(args, model_dir, pull_with_push=pull_with_push, data_plane=data_plane)
    cmd = [args.estuary, "local", job, "--workers", str(workers), "--ps", "1",
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
            marks.add(int(m.group(1)), float(m.group(2)))
    rc, out = stream(cmd, on_line, args.timeout + 30)
    if rc != 0:
        fail(" ".join(cmd), out)
    rate, cpu = marks.window(args.skip_logs)
    if rate is None:
        fail("too few logged intervals in " + " ".join(cmd), out)
    ps = "\n".join(l.split("| ", 1)[1] for l in out.splitlines() if l.startswith("ps:0") and "| " in l)
    return rate, cpu, ps_split(ps)


def run_estuary_one(args, tmp):
    model_dir = tempfile.mkdtemp(prefix="est_one_", dir=tmp)
    job = make_job(args, model_dir, one_process=True)
    cmd = [args.estuary, "train", job]
    marks = Marks()

    def on_line(p, line):
        marks.pids["train"] = p.pid
        m = LOG.search(line)
        if m:
            marks.add(int(m.group(1)), float(m.group(2)))
    rc, out = stream(cmd, on_line, args.timeout)
    rate, cpu = marks.window(args.skip_logs) if rc == 0 else (None, {})
    if rate is None:
        fail(" ".join(cmd), out)
    return rate, cpu


def run_tf(args, tmp, cluster):
    model_dir = tempfile.mkdtemp(prefix="tf_", dir=tmp)
    job = make_job(args, model_dir)
    cmd = [TF_PY, "bench/ps_train_bench_tf.py", "--job", job, "--model_dir", model_dir,
           "--warmup", str(args.tf_warmup), "--seconds", str(args.tf_seconds),
           "--threads", str(args.threads)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if args.threads > 0:
        env["OMP_NUM_THREADS"] = str(args.threads)
    env.pop("TF_CONFIG", None)
    pids, window = {}, {}

    def on_line(p, line):
        pids["chief"] = p.pid
        m = re.match(r"timing_window (start|end) global_step (\d+)", line)
        if m:
            window[m.group(1)] = (int(m.group(2)), {r: cpu_secs(pid) for r, pid in pids.items()})

    ps, ps_log, still_running = None, None, None
    chief_env = env
    if cluster:
        spec = {"chief": [f"localhost:{free_port()}"], "ps": [f"localhost:{free_port()}"]}
        ps_env = dict(env, TF_CONFIG=json.dumps({"cluster": spec, "task": {"type": "ps", "index": 0}}))
        chief_env = dict(env, TF_CONFIG=json.dumps({"cluster": spec, "task": {"type": "chief", "index": 0}}))
        ps_log = open(os.path.join(tmp, "tf_ps.log"), "w")
        ps = subprocess.Popen(cmd, stdout=ps_log, stderr=subprocess.STDOUT, cwd=ROOT, env=ps_env,
                              start_new_session=True)
        pids["ps"] = ps.pid
    try:
        rc, out = stream(cmd, on_line, args.timeout, env=chief_env)
    finally:
        if ps is not None:
            still_running = ps.poll() is None
            os.killpg(ps.pid, signal.SIGTERM)  # TF's ps joins its server forever
            try:
                ps.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(ps.pid, signal.SIGKILL)
                ps.wait()
            ps_log.close()
    m = re.search(r"global_steps_per_sec ([\d.]+)", out)
    if rc != 0 or not m or len(window) != 2:
        fail(" ".join(cmd) + (" (chief)" if cluster else ""),
             out + (open(ps_log.name).read() if ps_log else ""))
    if cluster:
        TF_PS_KILLED.append(still_running)
    (g0, c0), (g1, c1) = window["start"], window["end"]
    cpu = {r: (c1[r] - c0[r]) * 1e3 / (g1 - g0) for r in c1}
    return float(m.group(1)), cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default="tf_ps,estuary_ps1,estuary_ps2,estuary_one")
    ap.add_argument("--estuary", default=os.path.join(ROOT, "bazel-bin/cli/estuary"))
    ap.add_argument("--data", default="/tmp/estuary/ps_train_bench/clicks")
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3000, help="Estuary max_steps")
    ap.add_argument("--log_every", type=int, default=200)
    ap.add_argument("--skip_logs", type=int, default=2, help="warm-up intervals dropped")
    ap.add_argument("--tf_warmup", type=int, default=50)
    ap.add_argument("--tf_seconds", type=float, default=10.0)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1,
                    help="compute threads per process on every side; 0 = each system's default")
    args = ap.parse_args()
    systems = args.systems.split(",")
    if any(s.startswith("tf") for s in systems) and not os.path.exists(TF_PY):
        sys.exit("ps_train_bench: no TF venv (.venv-tf): run scripts/setup.sh --bench")
    make_data(args.estuary, args.data, args.rows, args.files)
    tmp = tempfile.mkdtemp(prefix="ps_train_bench_")
    atexit.register(shutil.rmtree, tmp, True)  # model dirs, logs: GBs per run
    rates = {s: [] for s in systems}
    cpus = {s: [] for s in systems}
    splits = {s: [] for s in systems}
    for r in range(args.runs):
        for s in systems:
            split = None
            if s == "tf_ps":
                rate, cpu = run_tf(args, tmp, cluster=True)
            elif s == "tf_one":
                rate, cpu = run_tf(args, tmp, cluster=False)
            elif re.fullmatch(r"estuary_ps[12](pp|np)?(grpc)?", s):
                grpc = s.endswith("grpc")
                pp = {"pp": True, "np": False}.get(s[len("estuary_ps1"):].replace("grpc", ""))
                rate, cpu, split = run_estuary_local(args, 0 if s.startswith("estuary_ps1") else 1,
                                                     tmp, pull_with_push=pp,
                                                     data_plane=False if grpc else None)
            elif s == "estuary_one":
                rate, cpu = run_estuary_one(args, tmp)
            else:
                sys.exit(f"unknown system {s}")
            rates[s].append(rate)
            cpus[s].append(cpu)
            if split:
                splits[s].append(split)
            print(f"# run {r + 1} {s} global_step/sec {rate:.1f}, CPU ms per step "
                  f"{json.dumps({k: round(v, 2) for k, v in cpu.items()})}", file=sys.stderr, flush=True)
    med = {s: statistics.median(v) for s, v in rates.items()}
    for s in systems:
        print(f"{s}_global_steps_per_sec {med[s]:.1f}")
        print(f"{s}_examples_per_sec {med[s] * BATCH:.0f}")
    # CPU time per global step over the same window, every process of the
    # system (less sensitive to other load than steps/sec).
    cpu_med = {}
    for s in systems:
        for role in sorted(cpus[s][0]):
            v = statistics.median(c.get(role, 0.0) for c in cpus[s])
            print(f"{s}_cpu_ms_per_step_{role.replace(':', '')} {v:.2f}")
        cpu_med[s] = statistics.median(sum(c.values()) for c in cpus[s])
        print(f"{s}_cpu_ms_per_step_total {cpu_med[s]:.2f}")
        print(f"{s}_examples_per_cpu_sec {BATCH * 1e3 / cpu_med[s]:.0f}")
    pairs = [("estuary_ps1", "tf_ps"), ("estuary_ps1", "estuary_one"), ("estuary_ps2", "estuary_ps1"),
             ("estuary_ps2", "estuary_one"), ("estuary_one", "tf_one"), ("tf_ps", "tf_one"),
             ("estuary_ps1np", "tf_ps"), ("estuary_ps1np", "estuary_one"),
             ("estuary_ps1", "estuary_ps1np"), ("estuary_ps1pp", "estuary_ps1np"),
             ("estuary_ps2pp", "estuary_ps2"), ("estuary_ps2pp", "estuary_one"),
             ("estuary_ps1", "estuary_ps1grpc"), ("estuary_ps1grpc", "estuary_one"),
             ("estuary_ps1grpc", "tf_ps"), ("estuary_ps2", "estuary_ps2grpc")]
    for a, b in pairs:
        if a in med and b in med:
            print(f"{a}_vs_{b} {med[a] / med[b]:.2f}")
    for a, b in pairs:
        if a in cpu_med and b in cpu_med:
            print(f"{a}_vs_{b}_per_cpu_sec {cpu_med[b] / cpu_med[a]:.2f}")
    for s in systems:
        if splits[s]:
            keys = [k for k in splits[s][0] if k != "pushes"]
            for k in keys:
                v = statistics.median(d[k] for d in splits[s])
                unit = "" if k == "pulls_per_step" else "_us_per_step"
                print(f"{s}_ps_{k}{unit} {v:.2f}")
    if TF_PS_KILLED:
        print(f"tf_ps_ps_still_running_after_chief_exit {sum(TF_PS_KILLED)}/{len(TF_PS_KILLED)}")
    print(f"# raw {json.dumps(rates)}", file=sys.stderr)
    print(f"# raw cpu {json.dumps(cpus)}", file=sys.stderr)


if __name__ == "__main__":
    main()
