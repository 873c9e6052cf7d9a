#!/usr/bin/env python3
"""PyTorch peer of bench/train_bench.cc: the same models, data and step.

  python3 bench/train_bench_torch.py --model dnn|sparse --data DIR --threads N

Run it with OpenBLAS (Debian's torch links the reference BLAS by default):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread python3 ...
(bench/train_bench.py does). Models, as in train_bench.cc:
  dnn:    nn.Sequential(Linear(64,256), ReLU, Linear(256,128), ReLU,
          Linear(128,1)) with glorot-uniform kernels, zero biases;
          BCEWithLogitsLoss (mean); Adagrad(lr 0.05, initial accumulator 0.1,
          eps 1e-7: TF's).
  sparse: nn.EmbeddingBag(2^20, 1, mode='sum', sparse=True) over 26 ids per
          example + a bias; BCEWithLogitsLoss; Adagrad (sparse rows for the
          table) with the same hyper-parameters.
Batch 256; --warmup untimed steps, then steps until --seconds passed; prints
examples_per_sec and final_loss.
"""
import argparse
import os
import time

import numpy as np
import torch
from torch import nn

BATCH = 256
BUCKETS = 1 << 20
FIELDS = 26


class SparseLR(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.EmbeddingBag(BUCKETS, 1, mode="sum", sparse=True)
        nn.init.zeros_(self.table.weight)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, ids):  # ids [batch, FIELDS] int64: a 2-D input is one bag per row
        return self.table(ids) + self.bias


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=["dnn", "sparse"], default="dnn")
    ap.add_argument("--data", default="/tmp/estuary/train_bench")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads (OpenBLAS's: set OPENBLAS_NUM_THREADS to it, as train_bench.py does)")
    ap.add_argument("--intra_op_threads", type=int, default=1,
                    help="torch.set_num_threads; 1 is torch's best here: with 2 torch threads "
                         "and 2 OpenBLAS threads on 2 cores the two pools fight")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(args.intra_op_threads)
    torch.manual_seed(42)

    y = torch.from_numpy(np.fromfile(os.path.join(args.data, f"{args.model}_y.f32"), np.float32))
    n = (y.shape[0] // BATCH) * BATCH
    if args.model == "dnn":
        x = torch.from_numpy(np.fromfile(os.path.join(args.data, "dnn_x.f32"), np.float32))
        x = x.reshape(-1, 64)[:n]
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 1))
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    else:
        x = torch.from_numpy(np.fromfile(os.path.join(args.data, "sparse_ids.i64"), np.int64))
        x = x.reshape(-1, FIELDS)[:n]
        model = SparseLR()
    batches = [(x[b:b + BATCH].contiguous(), y[b:b + BATCH].reshape(-1, 1).contiguous())
               for b in range(0, n, BATCH)]
    opt = torch.optim.Adagrad(model.parameters(), lr=0.05, initial_accumulator_value=0.1,
                              eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()

    def step(i):
        xb, yb = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    for i in range(args.warmup):
        step(i)
    start = time.perf_counter()
    timed = 0
    while True:
        for _ in range(10):
            loss = step(args.warmup + timed)
            timed += 1
        elapsed = time.perf_counter() - start
        if elapsed >= args.seconds:
            break
    print(f"examples_per_sec {timed * BATCH / elapsed:.0f}")
    print(f"steps {timed}")
    print(f"final_loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
