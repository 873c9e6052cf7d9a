#!/usr/bin/env python3
"""Issue 9 benchmark (a): push + pull of 1M floats, 1 PS, 2 clients.
Estuary's PS service over gRPC (bench/ps_bench.cc) against
torch.distributed.rpc over TCP (bench/ps_bench_torch.py), alternating
rounds in one run; prints the median of each figure, side by side.

  bazel build -c opt //bench:ps_bench
  /usr/bin/python3 bench/ps_bench.py [--rounds 5] [--seconds 5] [--clients 2]
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def figures(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines()
                                     if len(line.split()) == 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--clients", type=int, default=2)
    a = p.parse_args()
    common = ["--clients", str(a.clients), "--seconds", str(a.seconds)]
    runs = {
        "estuary": [os.path.join(ROOT, "bazel-bin/bench/ps_bench")] + common,
        "torch_rpc": [sys.executable, os.path.join(HERE, "ps_bench_torch.py")] + common,
    }
    got = {name: [] for name in runs}
    for _ in range(a.rounds):
        for name, cmd in runs.items():
            got[name].append(figures(cmd))
    print(f"# 1M-float push+pull, 1 PS, {a.clients} clients; median of {a.rounds} rounds "
          f"of {a.seconds:g} s")
    print(f"{'figure':<16} {'estuary':>10} {'torch_rpc':>10} {'ratio':>7}")
    for key in ("pairs_per_sec", "pair_ms_median", "mb_per_sec"):
        e = statistics.median(r[key] for r in got["estuary"])
        t = statistics.median(r[key] for r in got["torch_rpc"])
        ratio = e / t if key != "pair_ms_median" else t / e
        print(f"{key:<16} {e:>10.1f} {t:>10.1f} {ratio:>6.2f}x")


if __name__ == "__main__":
    main()
