#!/usr/bin/env python3
"""Start-up of a 6-task cluster (chief, 2 workers, 2 ps, evaluator).

Two modes (--mode, default both), each run N times (default 10); prints one
figure per line:

  local          `estuary local` starts the chief first, then the others:
    local_startup_to_barrier_ms  median / p90 / min: from the launch of the
                                 first process to the chief logging that every
                                 task passed the start barrier (as `estuary
                                 local` reports it);
    local_whole_run_ms_median    wall time of the whole command: start-up,
                                 rendezvous, clean shutdown of all 6.
  workers_first  the role binaries started by hand, as an operator or a
                 scheduler would: workers, ps and evaluator first, the chief
                 --chief_delay_ms after they all serve gRPC (so they are
                 already retrying to reach it):
    workers_first_barrier_ms     median / p90 / min: the chief's own figure,
                                 "every task passed the start barrier X ms
                                 after the chief started".

--bin_dir picks the build (default: this checkout's bazel-bin; pass another
checkout's bazel-bin to compare). Build first: bazel build //cli:estuary
//server:chief //server:evaluator //worker //ps.
"""
import argparse
import json
import os
import queue
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UP = re.compile(r"cluster up: (\d+) tasks passed the start barrier ([\d.]+) ms after launch")
READY = re.compile(r"cluster ready: (\d+) tasks passed the start barrier (\d+) ms after the chief started")
BINARIES = {"chief": "server/chief", "worker": "worker/worker", "ps": "ps/ps",
            "evaluator": "server/evaluator"}
TASKS = [("worker", 0), ("worker", 1), ("ps", 0), ("ps", 1), ("evaluator", 0), ("chief", 0)]


def summary(prefix, values):
    values = sorted(values)
    print(f"{prefix}_median {statistics.median(values):.1f}")
    print(f"{prefix}_p90 {values[int(0.9 * (len(values) - 1))]:.1f}")
    print(f"{prefix}_min {values[0]:.1f}")


def run_local(args):
    startup, whole = [], []
    for i in range(args.runs):
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(args.bin_dir, "cli/estuary"), "local", args.job,
                            "--workers=2", "--ps=2", "--evaluator", "--timeout=60"],
                           capture_output=True, text=True)
        whole.append((time.monotonic() - t0) * 1000)
        m = UP.search(p.stdout)
        if p.returncode != 0 or not m or m.group(1) != "6":
            sys.stderr.write(p.stdout + p.stderr)
            sys.exit(f"local run {i}: exit code {p.returncode}, no start-up line for 6 tasks")
        startup.append(float(m.group(2)))
    summary("local_startup_to_barrier_ms", startup)
    print(f"local_whole_run_ms_median {statistics.median(whole):.1f}")


def reserve_ports(n):
    """Bound (not listening) SO_REUSEPORT sockets, held while the tasks run,
    as `estuary local` does: nobody else takes the ports, and a connect to a
    port whose task is not up yet is refused."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    return socks


class Task:
    """A role binary whose stderr lines are read by a thread into a queue."""

    def __init__(self, binary, job, tf_config):
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        self.proc = subprocess.Popen([binary, f"--job={job}"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                return None
            self.log.append(line)
            m = re.search(pattern, line)
            if m:
                return m


def run_workers_first(args):
    figures = []
    for i in range(args.runs):
        socks = reserve_ports(len(TASKS))
        addr = {t: f"127.0.0.1:{s.getsockname()[1]}" for t, s in zip(TASKS, socks)}
        cluster = {}
        for (kind, index), a in addr.items():
            cluster.setdefault(kind, []).append(a)
        tasks = {}
        try:
            for kind, index in TASKS:
                if kind == "chief":
                    continue
                tasks[(kind, index)] = Task(os.path.join(args.bin_dir, BINARIES[kind]), args.job,
                                            {"cluster": cluster, "task": {"type": kind, "index": index}})
            for t in tasks.values():
                if not t.wait_for("serving gRPC", 30):
                    sys.exit(f"run {i}: a task did not start:\n{''.join(t.log)}")
            time.sleep(args.chief_delay_ms / 1000)  # the operator starts the chief later
            chief = Task(os.path.join(args.bin_dir, BINARIES["chief"]), args.job,
                         {"cluster": cluster, "task": {"type": "chief", "index": 0}})
            tasks[("chief", 0)] = chief
            m = chief.wait_for(READY.pattern, 60)
            if not m or m.group(1) != "6":
                sys.exit(f"run {i}: no start-up line for 6 tasks:\n{''.join(chief.log)}")
            figures.append(float(m.group(2)))
            for (kind, index), t in tasks.items():
                code = t.proc.wait(timeout=60)
                if code != 0:
                    sys.exit(f"run {i}: {kind}:{index} exited {code}:\n{''.join(t.log)}")
        finally:
            for t in tasks.values():
                if t.proc.poll() is None:
                    t.proc.kill()
            for s in socks:
                s.close()
    summary("workers_first_barrier_ms", figures)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--mode", choices=["local", "workers_first", "both"], default="both")
    ap.add_argument("--bin_dir", default=os.path.join(ROOT, "bazel-bin"))
    ap.add_argument("--job", default=os.path.join(ROOT, "examples/cluster_smoke.json"))
    ap.add_argument("--chief_delay_ms", type=float, default=500,
                    help="workers_first: how long after the others serve gRPC the chief starts")
    args = ap.parse_args()
    print(f"runs {args.runs}")
    if args.mode in ("local", "both"):
        run_local(args)
    if args.mode in ("workers_first", "both"):
        run_workers_first(args)


if __name__ == "__main__":
    main()
