#!/usr/bin/env python3
"""Input pipeline + feature columns on the click log: Estuary vs tf.data.

Generates the click log once (200k rows, 4 files, CSV and TFRecord) with
`estuary gen-data`, then runs, alternating, Estuary's input_bench and
TF 2.15's input_bench_tf.py for each format (CSV, TFRecord of Examples)
and thread setting (1; 2; and TF's own AUTOTUNE default), N times each, and
prints medians (examples/s) and ratios, one figure per line.
Build first: bazel build //bench:input_bench //cli:estuary
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/tmp/estuary/clicks_bench"


def figure(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    m = re.search(r"examples_per_sec (\d+)", p.stdout)
    if p.returncode != 0 or not m:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--baseline", default="",
                    help="another build's bazel-bin/bench/input_bench, run alternately "
                         "(before/after comparisons)")
    args = ap.parse_args()
    estuary = os.path.join(ROOT, "bazel-bin/cli/estuary")
    for fmt in ["csv", "tfrecord"]:
        out = f"{DATA}/{fmt}"
        if not os.path.isdir(out) or len(os.listdir(out)) != 4:
            subprocess.run([estuary, "gen-data", "clicks", "--rows", str(args.rows), "--files", "4",
                            "--format", fmt, "--out", out], check=True, capture_output=True)
    ours_bin = os.path.join(ROOT, "bazel-bin/bench/input_bench")
    tf_py = os.path.join(ROOT, ".venv-tf/bin/python")
    job = os.path.join(ROOT, "bench/click_input_job.json")
    print(f"rows {args.rows}")
    for fmt, section in [("csv", "train_input"), ("tfrecord", "eval_input")]:
        for threads in [1, 2]:
            ours, theirs, tf_auto, base = [], [], [], []
            for _ in range(args.runs):
                ours.append(figure([ours_bin, "--job", job, "--input", section,
                                    "--threads", str(threads)]))
                if args.baseline:
                    base.append(figure([args.baseline, "--job", job, "--input", section,
                                        "--threads", str(threads)]))
                theirs.append(figure([tf_py, "bench/input_bench_tf.py", "--job", job,
                                      "--input", section, "--threads", str(threads)]))
                if threads == 2:
                    tf_auto.append(figure([tf_py, "bench/input_bench_tf.py", "--job", job,
                                           "--input", section, "--threads", "0"]))
            o, t = statistics.median(ours), statistics.median(theirs)
            print(f"{fmt}_threads{threads}_estuary_examples_per_sec {o:.0f}")
            print(f"{fmt}_threads{threads}_tfdata_examples_per_sec {t:.0f}")
            print(f"{fmt}_threads{threads}_ratio {o / t:.2f}")
            if base:
                b = statistics.median(base)
                print(f"{fmt}_threads{threads}_baseline_examples_per_sec {b:.0f}")
                print(f"{fmt}_threads{threads}_vs_baseline {o / b:.2f}")
            if tf_auto:
                a = statistics.median(tf_auto)
                print(f"{fmt}_tfdata_autotune_examples_per_sec {a:.0f}")
                print(f"{fmt}_threads2_ratio_vs_tf_autotune {o / a:.2f}")


if __name__ == "__main__":
    main()
