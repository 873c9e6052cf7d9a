#!/usr/bin/env python3
"""PyTorch peer of bench/ps_bench.cc: push + pull of 1M floats through one
parameter server with torch.distributed.rpc over TCP.

  python3 bench/ps_bench_torch.py --clients 2 --seconds 5

Rank 0 is the PS (a 1024x1024 float32 weight, SGD under a lock); ranks 1..N
are clients, each looping: rpc_sync(push, gradient) then rpc_sync(pull) of
the weight. TensorPipe is limited to its TCP transport ("uv") and basic
channel, so tensors travel over loopback TCP as they would between
machines (not shared memory). Prints pairs_per_sec and pair_ms_median like
ps_bench.
"""
import argparse
import os
import threading
import time

import torch
import torch.distributed.rpc as rpc
import torch.multiprocessing as mp

ROWS = COLS = 1024
_weight = None
_lock = threading.Lock()


def push(grad):
    with _lock:
        _weight.add_(grad, alpha=-1e-6)
    return True


def pull():
    with _lock:
        return _weight.clone()


def run(rank, world, port, seconds, out):
    global _weight
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    opts = rpc.TensorPipeRpcBackendOptions(num_worker_threads=8, rpc_timeout=60,
                                           _transports=["uv"], _channels=["basic"])
    name = "ps" if rank == 0 else f"client{rank}"
    if rank == 0:
        _weight = torch.rand(ROWS, COLS)
    rpc.init_rpc(name, rank=rank, world_size=world, rpc_backend_options=opts)
    if rank != 0:
        grad = torch.ones(ROWS, COLS)
        start = time.time() + 1.0
        end = start + seconds
        lat, pairs = [], 0
        while True:
            t0 = time.time()
            if t0 >= end:
                break
            rpc.rpc_sync("ps", push, args=(grad,))
            w = rpc.rpc_sync("ps", pull)
            t1 = time.time()
            if t0 >= start:
                lat.append((t1 - t0) * 1e3)
                if t1 <= end:
                    pairs += 1
        out.put((pairs, lat))
    rpc.shutdown()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--port", type=int, default=29517)
    a = p.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    world = a.clients + 1
    procs = [ctx.Process(target=run, args=(r, world, a.port, a.seconds, out)) for r in range(world)]
    for pr in procs:
        pr.start()
    results = [out.get() for _ in range(a.clients)]
    for pr in procs:
        pr.join()
    pairs = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    print(f"pairs_per_sec {pairs / a.seconds:.1f}")
    print(f"pair_ms_median {lat[len(lat) // 2] if lat else 0:.3f}")
    print(f"mb_per_sec {pairs / a.seconds * 2 * ROWS * COLS * 4 / 1e6:.0f}")


if __name__ == "__main__":
    main()
