#!/usr/bin/env python3
"""torch.distributed (backend gloo) peer of bench/allreduce_bench.cc:
all-reduce of float32 sums between N processes on loopback.

  /usr/bin/python3 bench/allreduce_bench_gloo.py [--world 2] [--sizes 4096,...] [--iters 2000,...]

Ranks are processes (multiprocessing spawn) meeting through TCP init on
127.0.0.1 (gloo's TCP transport on the loopback interface). Same schedule
as the Estuary side: per size one all-reduce of (i % 13) + rank checked
against the expected sum, then warm-up calls and timed calls on zeros, each
timed on its own. Rank 0 prints time_us_<bytes> (median), algbw_gbps_<bytes>,
busbw_gbps_<bytes> (nccl-tests' definitions), cpu_us_<bytes> (user + system
CPU time of all ranks together per timed call) and checked_sizes.
"""
import argparse
import os
import resource
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_secs():
    """User + system CPU time of this process (every thread) so far."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def run(rank, world, port, sizes, iters, warmup, out):
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    figures = []
    for nbytes, n_iter in zip(sizes, iters):
        floats = nbytes // 4
        idx = torch.arange(floats, dtype=torch.int64) % 13
        data = (idx + rank).to(torch.float32)
        dist.all_reduce(data, op=dist.ReduceOp.SUM)
        want = (idx * world + world * (world - 1) // 2).to(torch.float32)
        if not torch.equal(data, want):
            bad = int((data != want).nonzero()[0])
            sys.exit(f"allreduce_bench_gloo: rank {rank}: element {bad} of {nbytes} bytes is "
                     f"{float(data[bad])}, want {float(want[bad])}")
        data = torch.zeros(floats, dtype=torch.float32)
        n_warm = warmup if warmup >= 0 else max(2, n_iter // 10)
        times = []
        cpu0 = 0.0
        for i in range(n_warm + n_iter):
            if i == n_warm:
                cpu0 = cpu_secs()
            t0 = time.perf_counter()
            dist.all_reduce(data, op=dist.ReduceOp.SUM)
            t1 = time.perf_counter()
            if i >= n_warm:
                times.append(t1 - t0)
        cpu = torch.tensor([cpu_secs() - cpu0], dtype=torch.float64)
        dist.all_reduce(cpu, op=dist.ReduceOp.SUM)
        times.sort()
        figures.append((nbytes, times[len(times) // 2], float(cpu[0]) * 1e6 / n_iter))
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        out.put(figures)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--sizes", default="4096,65536,1048576,16777216,67108864")
    p.add_argument("--iters", default="2000,1000,200,30,10")
    p.add_argument("--warmup", type=int, default=-1, help="-1: iters/10, at least 2")
    a = p.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    iters = [int(x) for x in a.iters.split(",")]
    if len(sizes) != len(iters) or any(s % 4 for s in sizes):
        sys.exit("allreduce_bench_gloo: --sizes (multiples of 4) and --iters differ in length")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=run, args=(r, a.world, port, sizes, iters, a.warmup, out))
             for r in range(a.world)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    if any(pr.exitcode != 0 for pr in procs):
        sys.exit(f"allreduce_bench_gloo: ranks exited with {[pr.exitcode for pr in procs]}")
    figures = out.get(timeout=10)
    bus = 2.0 * (a.world - 1) / a.world
    for nbytes, t, cpu_us in figures:
        algbw = nbytes / t / 1e9
        print(f"time_us_{nbytes} {t * 1e6:.2f}")
        print(f"algbw_gbps_{nbytes} {algbw:.3f}")
        print(f"busbw_gbps_{nbytes} {algbw * bus:.3f}")
        print(f"cpu_us_{nbytes} {cpu_us:.2f}")
    print(f"checked_sizes {len(figures)}")


if __name__ == "__main__":
    main()
