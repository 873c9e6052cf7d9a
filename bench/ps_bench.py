#!/usr/bin/env python3
"""Issue 9 benchmark (a): push + pull of 1M floats, 1 PS, 2 clients.
Estuary's PS service (bench/ps_bench.cc; Push/Pull over its TCP data
plane, and over gRPC as estuary_grpc) against
torch.distributed.rpc over TCP (bench/ps_bench_torch.py), alternating
rounds in one run; prints the median of each figure (one per line), then ratios.

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
    p.add_argument("--no_torch", action="store_true", help="without the torch side")
    a = p.parse_args()
    common = ["--clients", str(a.clients), "--seconds", str(a.seconds)]
    runs = {
        "estuary": [os.path.join(ROOT, "bazel-bin/bench/ps_bench")] + common,
        "estuary_grpc": [os.path.join(ROOT, "bazel-bin/bench/ps_bench"), "--nodata_plane"] + common,
        "torch_rpc": [sys.executable, os.path.join(HERE, "ps_bench_torch.py")] + common,
    }
    if a.no_torch:
        del runs["torch_rpc"]
    got = {name: [] for name in runs}
    for _ in range(a.rounds):
        for name, cmd in runs.items():
            got[name].append(figures(cmd))
    print(f"# 1M-float push+pull, 1 PS, {a.clients} clients; median of {a.rounds} rounds "
          f"of {a.seconds:g} s")
    # estuary = Push/Pull over the PS's TCP data plane (the default in a job
    # without security), estuary_grpc = the same over gRPC (secured jobs).
    peer = "torch_rpc" if "torch_rpc" in got else "estuary_grpc"
    for key in ("pairs_per_sec", "pair_ms_median", "mb_per_sec"):
        med = {name: statistics.median(r[key] for r in rs) for name, rs in got.items()}
        for name, v in med.items():
            print(f"{name}_{key} {v:.1f}")
        for name in ("estuary", "estuary_grpc"):
            if name == peer:
                continue
            ratio = med[name] / med[peer] if key != "pair_ms_median" else med[peer] / med[name]
            print(f"{name}_vs_{peer}_{key} {ratio:.2f}")


if __name__ == "__main__":
    main()
