#!/usr/bin/env python3
"""PyTorch peer of bench/train_bench.cc: the same models, weights, batches and step.

  python3 bench/train_bench_torch.py --model dnn|sparse --data DIR --threads N \
      [--input memory|csv] [--init DIR/init_MODEL] [--check_steps K] [--steps N]

Runs with Debian's torch 1.13 (bench/train_bench.py preloads OpenBLAS for it:
its default BLAS is the slow reference one) or PyTorch 2.x from PyPI (MKL,
oneDNN) in .venv-torch. Models, as in train_bench.cc:
  dnn:    nn.Sequential(Linear(64,256), ReLU, Linear(256,128), ReLU,
          Linear(128,1)); BCEWithLogitsLoss (mean); Adagrad(lr 0.05 *
          --lr_scale, initial accumulator 0.1, eps 1e-7: TF's).
  sparse: nn.EmbeddingBag(2^20, 1, mode='sum', sparse=True) over 26 ids per
          example + a bias; BCEWithLogitsLoss; Adagrad (sparse rows for the
          table) with the same hyper-parameters. --input csv: one 2^20-row
          table per field (stacked in one EmbeddingBag), from zeros.
Initial weights from --init (TF's names and layout: a kernel is [in, out],
so nn.Linear's weight is its transpose); without it, glorot-uniform kernels
and zero biases (seed 42). Input: --input memory slices the arrays into
batches before any step; --input csv parses DIR/MODEL.csv 256 lines at a
time with numpy.loadtxt inside the timed loop, repeating the file.
Threads: torch.set_num_threads(--intra_op_threads, default --threads),
torch.set_num_interop_threads(--threads); OpenBLAS's / MKL's threads come
from the environment the driver sets (OPENBLAS_NUM_THREADS, MKL_NUM_THREADS,
OMP_NUM_THREADS). The first --check_steps steps are untimed and their losses
printed; then --steps timed steps (or steps until --seconds passed). Prints
loss_at_step lines, examples_per_sec, cpu_seconds (process CPU time of the timed
steps), steps, version.
"""
import argparse
import itertools
import os
import time

import numpy as np
import torch
from torch import nn

BATCH = 256
BUCKETS = 1 << 20
FIELDS = 26
DENSE = 64


class SparseLR(nn.Module):
    """One table of 2^20 rows, or (per_field) one per field stacked in one
    table: field f's id i is row f * 2^20 + i."""

    def __init__(self, per_field=False):
        super().__init__()
        self.per_field = per_field
        self.table = nn.EmbeddingBag(BUCKETS * (FIELDS if per_field else 1), 1, mode="sum",
                                     sparse=True)
        nn.init.zeros_(self.table.weight)
        self.bias = nn.Parameter(torch.zeros(1))
        self.offsets = torch.arange(FIELDS, dtype=torch.int64) * BUCKETS

    def forward(self, ids):  # ids [batch, FIELDS] int64: a 2-D input is one bag per row
        return self.table(ids + self.offsets if self.per_field else ids) + self.bias


def load_init(init, name, shape):
    """The initial value of TF variable `name` as a tensor of `shape`."""
    path = os.path.join(init, name.replace("/", ".") + ".f32")
    v = np.fromfile(path, np.float32)
    if v.size != int(np.prod(shape)):
        raise SystemExit(f"train_bench_torch.py: {path}: {v.size} floats, expected {shape}")
    return torch.from_numpy(v.reshape(shape))


def csv_batches(path, model):
    """Batches of MODEL.csv (dnn: x00..x63,label; sparse: f00..f25,label),
    parsed as they are pulled, forever."""
    width = DENSE if model == "dnn" else FIELDS
    dtype = np.float32 if model == "dnn" else np.int64
    with open(path) as f:
        while True:
            lines = list(itertools.islice(f, BATCH))
            if len(lines) < BATCH:  # drop the remainder, start the next epoch
                f.seek(0)
                continue
            x = np.loadtxt(lines, delimiter=",", dtype=dtype, usecols=range(width))
            y = np.loadtxt(lines, delimiter=",", dtype=np.float32, usecols=[width])
            yield torch.from_numpy(x), torch.from_numpy(y.reshape(-1, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["dnn", "sparse"], default="dnn")
    ap.add_argument("--data", default="/tmp/estuary/train_bench")
    ap.add_argument("--input", choices=["memory", "csv"], default="memory")
    ap.add_argument("--init", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--intra_op_threads", type=int, default=0,
                    help="torch.set_num_threads; 0: --threads. With Debian's torch the GEMMs "
                         "run on OpenBLAS's own pool, so the driver passes 1 here")
    ap.add_argument("--check_steps", type=int, default=20)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--lr_scale", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(args.intra_op_threads or args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(42)

    if args.model == "dnn":
        model = nn.Sequential(nn.Linear(DENSE, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 1))
        names = ["dnn/hiddenlayer_0", "dnn/hiddenlayer_1", "dnn/logits"]
        with torch.no_grad():
            for name, m in zip(names, [l for l in model if isinstance(l, nn.Linear)]):
                if args.init:
                    m.weight.copy_(load_init(args.init, name + "/kernel",
                                             [m.in_features, m.out_features]).t())
                    m.bias.copy_(load_init(args.init, name + "/bias", [m.out_features]))
                else:
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
    else:
        model = SparseLR(per_field=args.input == "csv")
        if args.init and args.input == "csv":
            raise SystemExit("train_bench_torch.py: sparse --input csv starts from zeros (no --init)")
        if args.init:
            with torch.no_grad():
                model.table.weight.copy_(
                    load_init(args.init, "linear/linear_model/ids/weights", [BUCKETS, 1]))
                model.bias.copy_(load_init(args.init, "linear/linear_model/bias_weights", [1]))

    if args.input == "csv":
        source = csv_batches(os.path.join(args.data, f"{args.model}.csv"), args.model)
        next_batch = lambda i: next(source)  # noqa: E731
    else:
        y = torch.from_numpy(np.fromfile(os.path.join(args.data, f"{args.model}_y.f32"),
                                         np.float32))
        n = (y.shape[0] // BATCH) * BATCH
        if args.model == "dnn":
            x = torch.from_numpy(np.fromfile(os.path.join(args.data, "dnn_x.f32"), np.float32))
            x = x.reshape(-1, DENSE)[:n]
        else:
            x = torch.from_numpy(np.fromfile(os.path.join(args.data, "sparse_ids.i64"), np.int64))
            x = x.reshape(-1, FIELDS)[:n]
        batches = [(x[b:b + BATCH].contiguous(), y[b:b + BATCH].reshape(-1, 1).contiguous())
                   for b in range(0, n, BATCH)]
        next_batch = lambda i: batches[i % len(batches)]  # noqa: E731
    opt = torch.optim.Adagrad(model.parameters(), lr=0.05 * args.lr_scale,
                              initial_accumulator_value=0.1, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()

    def step(i):
        xb, yb = next_batch(i)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    for i in range(args.check_steps):
        print(f"loss_at_step {i + 1} {step(i).item():.9g}")
    cpu_start, start = time.process_time(), time.perf_counter()
    timed = 0
    loss = None
    while True:
        for _ in range(10):
            if args.steps and timed == args.steps:
                break
            loss = step(args.check_steps + timed)
            timed += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if (args.steps and timed == args.steps) or (not args.steps and elapsed >= args.seconds):
            break
    if loss is not None:
        print(f"loss_at_step {args.check_steps + timed} {loss.item():.9g}")
    print(f"examples_per_sec {timed * BATCH / elapsed:.0f}")
    print(f"cpu_seconds {cpu:.4f}")
    print(f"steps {timed}")
    blas = "MKL" if torch.backends.mkl.is_available() else "OpenBLAS (preloaded)"
    print(f"version torch {torch.__version__}, {blas}, oneDNN "
          f"{'on' if torch.backends.mkldnn.is_available() else 'off'}")


if __name__ == "__main__":
    main()
