#!/usr/bin/env python3
"""Start-up of a 6-task local cluster (chief, 2 workers, 2 ps, evaluator).

Runs `estuary local` N times (default 10) and prints, one figure per line:
  startup_to_barrier_ms  median / p90 / min over the runs: from the launch of
                         the first process to the chief logging that every
                         task passed the start barrier (as `estuary local`
                         reports it);
  whole_run_ms           median wall time of the whole command: start-up,
                         rendezvous, clean shutdown of all 6 processes.
Build first: bazel build //cli:estuary.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UP = re.compile(r"cluster up: (\d+) tasks passed the start barrier ([\d.]+) ms after launch")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--estuary", default=os.path.join(ROOT, "bazel-bin/cli/estuary"))
    ap.add_argument("--job", default=os.path.join(ROOT, "examples/cluster_smoke.json"))
    args = ap.parse_args()
    startup, whole = [], []
    for i in range(args.runs):
        t0 = time.monotonic()
        p = subprocess.run([args.estuary, "local", args.job, "--workers=2", "--ps=2", "--evaluator",
                            "--timeout=60"], capture_output=True, text=True)
        whole.append((time.monotonic() - t0) * 1000)
        m = UP.search(p.stdout)
        if p.returncode != 0 or not m or m.group(1) != "6":
            sys.stderr.write(p.stdout + p.stderr)
            sys.exit(f"run {i}: exit code {p.returncode}, no start-up line for 6 tasks")
        startup.append(float(m.group(2)))
    startup.sort()
    print(f"runs {args.runs}")
    print(f"startup_to_barrier_ms_median {statistics.median(startup):.1f}")
    print(f"startup_to_barrier_ms_p90 {startup[int(0.9 * (len(startup) - 1))]:.1f}")
    print(f"startup_to_barrier_ms_min {startup[0]:.1f}")
    print(f"whole_run_ms_median {statistics.median(whole):.1f}")


if __name__ == "__main__":
    main()
