#!/usr/bin/env python3
"""Serving benchmark (issue 11): p50/p99 latency and requests/s of a DNN's Predict served
by `estuary serve` over gRPC and REST under 1, 8 and 64 concurrent clients, with and without
batching, side by side in the same run with ONNX Runtime running the same model in process
and TensorFlow 2.15 running the TF-trained equivalent SavedModel's `predict` signature in
process (the floor TF Serving cannot beat).

  bazel build //cli:estuary //bench:serving_load
  python3 bench/serving_bench.py [--repeats 3] [--seconds 5] [--clients 1,8,64] [--steps 200]

The model: examples/fashion_mnist_dnn.json's DNNClassifier (784 -> 256 -> 128 -> 10, Adam),
trained for --steps steps by `estuary train`, exported with the parsing receiver (`estuary
export`) and as ONNX (`estuary export --format onnx`). Every request is one serialized
tf.train.Example of a Fashion-MNIST test image (input "examples", signature "predict").
The server: `estuary serve --port 0 --rest_api_port 0 [--enable_batching]` (TF Serving's
default batching parameters: max_batch_size 32, batch_timeout 1 ms, 2 batch threads),
restarted for each batching setting. The load: bench/serving_load.cc, one connection per
client, closed loop, --seconds measured after 1 s of warm-up. The peers:
bench/serving_bench_peers.py in the TF venv (.venv-tf): the same client threads calling
in process. Everything shares this machine's cores (the load generator included), so the
figures are for a 2-core box with the client on it.

Prints one figure per line (the median over --repeats runs of each configuration):
  serving grpc batching=off clients=64 rps=... p50_us=... p99_us=...
  serving peer=tf clients=64 rps=... p50_us=... p99_us=...
  ratio grpc_rps_vs_tf_inprocess clients=64 = ...
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
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT  # noqa: E402

ESTUARY = os.path.join(ROOT, "bazel-bin/cli/estuary")
LOAD = os.path.join(ROOT, "bazel-bin/bench/serving_load")
TF_PYTHON = os.path.join(ROOT, ".venv-tf/bin/python")
PEERS = os.path.join(ROOT, "bench/serving_bench_peers.py")
LINE = re.compile(r"requests=(\d+).*rps=([\d.]+) p50_us=([\d.]+) p99_us=([\d.]+)")


def run(cmd, timeout=900):
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"serving_bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}")
    return p.stdout


def train_and_export(work, steps):
    with open(os.path.join(ROOT, "examples/fashion_mnist_dnn.json")) as f:
        job = json.load(f)
    job["model_dir"] = os.path.join(work, "model")
    job["train_spec"] = {"max_steps": steps}
    job_path = os.path.join(work, "job.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    run([ESTUARY, "train", job_path])
    base = os.path.join(work, "export")
    run([ESTUARY, "export", job_path, "--export_dir_base", base, "--receiver", "parsing"])
    onnx_base = os.path.join(work, "onnx")
    run([ESTUARY, "export", job_path, "--export_dir_base", onnx_base, "--format", "onnx"])
    onnx = os.path.join(onnx_base, os.listdir(onnx_base)[0], "model.onnx")
    return base, onnx


class Server:
    """`estuary serve` as a real process; ports read from its log."""

    def __init__(self, base, batching):
        cmd = [ESTUARY, "serve", "--model_base_path", base, "--model_name", "fashion",
               "--port", "0", "--rest_api_port", "0"]
        if batching:
            cmd.append("--enable_batching")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.grpc = self.rest = None
        self.loaded = False
        ready = threading.Event()
        self.log = []

        def read():
            for line in self.proc.stdout:
                self.log.append(line)
                m = re.search(r"Running gRPC ModelServer at [^:]*:(\d+)", line)
                if m:
                    self.grpc = int(m.group(1))
                m = re.search(r"HTTP/REST API at:[^:]*:(\d+)", line)
                if m:
                    self.rest = int(m.group(1))
                if "Successfully loaded servable version" in line:
                    self.loaded = True
                if self.grpc and self.rest and self.loaded:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120) or self.proc.poll() is not None or not (self.grpc and self.rest):
            self.stop()
            sys.exit("serving_bench: estuary serve did not start:\n" + "".join(self.log[-30:]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def parse(line):
    m = LINE.search(line)
    if not m:
        return None
    return {"requests": int(m.group(1)), "rps": float(m.group(2)), "p50_us": float(m.group(3)),
            "p99_us": float(m.group(4))}


def median_of(runs):
    return {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50_us", "p99_us")}


def show(label, fig):
    print(f"serving {label} rps={fig['rps']:.0f} p50_us={fig['p50_us']:.0f} "
          f"p99_us={fig['p99_us']:.0f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--no_peers", action="store_true", help="only estuary serve")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    work = tempfile.mkdtemp(prefix="serving_bench_")
    results = {}
    try:
        base, onnx = train_and_export(work, args.steps)
        for batching in (False, True):
            server = Server(base, batching)
            try:
                for protocol in ("grpc", "rest"):
                    port = server.grpc if protocol == "grpc" else server.rest
                    for c in clients:
                        runs = []
                        for _ in range(args.repeats):
                            out = run([LOAD, "--protocol", protocol, "--target", f"127.0.0.1:{port}",
                                       "--model_name", "fashion", "--clients", str(c),
                                       "--seconds", str(args.seconds)])
                            runs.append(parse(out))
                        key = (protocol, "on" if batching else "off", c)
                        results[key] = median_of(runs)
                        show(f"{protocol} batching={key[1]} clients={c}", results[key])
            finally:
                server.stop()
        if not args.no_peers:
            for peer in ("onnx", "tf"):
                cmd = [TF_PYTHON, PEERS, "--peer", peer, "--clients", args.clients,
                       "--seconds", str(args.seconds), "--repeats", str(args.repeats)]
                cmd += ["--model", onnx] if peer == "onnx" else [
                    "--work_dir", os.path.join(work, "tf"), "--steps", str(args.steps)]
                runs = {c: [] for c in clients}
                for line in run(cmd).splitlines():
                    m = re.search(r"clients=(\d+)", line)
                    if line.startswith("serving_peer") and m:
                        runs[int(m.group(1))].append(parse(line))
                for c in clients:
                    results[(peer, c)] = median_of(runs[c])
                    show(f"peer={peer} clients={c}", results[(peer, c)])
            for c in clients:
                for mode in ("off", "on"):
                    g = results[("grpc", mode, c)]["rps"]
                    print(f"ratio grpc_batching_{mode}_rps_vs_tf_inprocess clients={c} = "
                          f"{g / results[('tf', c)]['rps']:.2f}")
                    print(f"ratio grpc_batching_{mode}_rps_vs_onnxruntime_inprocess clients={c} = "
                          f"{g / results[('onnx', c)]['rps']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
