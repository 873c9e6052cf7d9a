#!/usr/bin/env python3
"""Accuracy of asynchronous PS training with and without pull_with_push (issue 9).

`distribution.pull_with_push` reads a step's variables in the same round trip
that pushes the previous step's gradients (one PushPull per PS and step),
instead of a push and then a separate pull. The read is one round trip
earlier, so with several trainers a step may miss a little more of the other
workers' updates. This driver measures what that does to the model, not to
the speed (bench/ps_train_bench.py does the speed): it trains
examples/fashion_mnist_cluster.json (256-128 DNN, Adam, chief + 2 workers +
1 PS, 9375 steps; the acceptance test tests/ps_fashion_mnist_test's job) with
`estuary local`, evaluates the final checkpoint with `estuary evaluate`, and
alternates the two settings for --runs rounds.

Prints one figure per line: per setting the median, min, max and mean
accuracy and how many runs reached the acceptance bar (0.88); the raw
accuracies go to stderr.
  bazel build //cli:estuary //server:chief //worker //ps && python3 bench/ps_accuracy_bench.py --runs 10
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAR = 0.88


def run_once(args, tmp, pull_with_push, index):
    job = json.load(open(os.path.join(ROOT, "examples/fashion_mnist_cluster.json")))
    model_dir = os.path.join(tmp, f"run{index}_{'pp' if pull_with_push else 'base'}")
    job["model_dir"] = model_dir
    job["distribution"]["pull_with_push"] = pull_with_push
    path = model_dir + ".json"
    with open(path, "w") as f:
        json.dump(job, f, indent=1)
    train = subprocess.run([args.estuary, "local", path, "--workers=2", "--ps=1", "--timeout=800"],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
    if train.returncode != 0:
        sys.exit(f"ps_accuracy_bench: training failed:\n{(train.stdout + train.stderr)[-6000:]}")
    ev = subprocess.run([args.estuary, "evaluate", path], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
    out = ev.stdout + ev.stderr
    m = re.findall(r"^accuracy = ([0-9.]+), ", out, re.M)
    if ev.returncode != 0 or not m:
        sys.exit(f"ps_accuracy_bench: evaluate failed:\n{out[-6000:]}")
    shutil.rmtree(model_dir, ignore_errors=True)
    return float(m[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="rounds; each trains both settings once")
    ap.add_argument("--estuary", default=os.path.join(ROOT, "bazel-bin/cli/estuary"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ps_accuracy_bench_")
    acc = {"push_then_pull": [], "pull_with_push": []}
    try:
        for r in range(args.runs):
            # Alternate which setting goes first, so drift in the machine's load
            # falls on both alike.
            order = [False, True] if r % 2 == 0 else [True, False]
            for pp in order:
                a = run_once(args, tmp, pp, r)
                acc["pull_with_push" if pp else "push_then_pull"].append(a)
                print(f"# run {r + 1} pull_with_push={pp} accuracy {a:.4f}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, v in acc.items():
        print(f"{name}_accuracy_median {statistics.median(v):.4f}")
        print(f"{name}_accuracy_mean {statistics.mean(v):.4f}")
        print(f"{name}_accuracy_min {min(v):.4f}")
        print(f"{name}_accuracy_max {max(v):.4f}")
        print(f"{name}_runs_at_or_above_{BAR} {sum(x >= BAR for x in v)}/{len(v)}")
    print(f"# raw {json.dumps(acc)}", file=sys.stderr)


if __name__ == "__main__":
    main()
