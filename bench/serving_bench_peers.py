#!/usr/bin/env python3
"""In-process peers of the serving benchmark (bench/serving_bench.py): the floor a server
cannot beat, measured the way bench/serving_load.cc measures `estuary serve`.

  .venv-tf/bin/python bench/serving_bench_peers.py --peer onnx --model DIR/model.onnx \
      --clients 1,8,64 [--seconds 5] [--warmup_secs 1]
  .venv-tf/bin/python bench/serving_bench_peers.py --peer tf --work_dir DIR --steps 200 \
      --clients 1,8,64

onnx: ONNX Runtime (CPU provider, default threading) runs Estuary's ONNX export of the
      model (`estuary export --format onnx`) on one example's raw features ([1, 784]
      float32 "dense") per call: no Example parsing, no RPC.
tf:   TensorFlow 2.15 trains the equivalent tf.estimator.DNNClassifier (hidden_units
      [256, 128], 10 classes, numeric_column("pixels", [784]), Adam 0.001, batch 128,
      --steps steps on Fashion-MNIST), exports it with a parsing serving input receiver
      (export_saved_model) and calls tf.saved_model.load(...).signatures["predict"](
      examples=<one serialized tf.train.Example>) per call — TF Serving's own work for a
      Predict request without the RPC.

C client threads call back to back (--repeats runs of each C) for --seconds after --warmup_secs; each call's latency
is recorded. One line per client count, in serving_load.cc's format:
  serving_peer peer=tf clients=8 requests=... rps=... p50_us=... p99_us=...
"""
import argparse
import gzip
import os
import shutil
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def test_pixels(n=1000):
    images = read_idx(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"))[:n]
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def run_clients(call, inputs, clients, seconds, warmup):
    """call(x) per request; returns (requests, rps, p50_us, p99_us)."""
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + seconds
    lat = [[] for _ in range(clients)]

    def client(c):
        i = c * 97
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            call(inputs[i % len(inputs)])
            t1 = time.perf_counter()
            if t0 >= measure_from:
                lat[c].append((t1 - t0) * 1e6)
            i += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_lat = np.array([x for part in lat for x in part])
    if all_lat.size == 0:
        return 0, 0.0, 0.0, 0.0
    return (all_lat.size, all_lat.size / seconds, float(np.percentile(all_lat, 50)),
            float(np.percentile(all_lat, 99)))


def onnx_peer(args):
    import onnxruntime as ort
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    pixels = test_pixels()
    inputs = [pixels[i:i + 1] for i in range(len(pixels))]
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x}), inputs


def tf_peer(args):
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    images = read_idx(os.path.join(FASHION, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    col = tf.feature_column.numeric_column("pixels", shape=[784])
    est = tf.estimator.DNNClassifier(
        hidden_units=[256, 128], n_classes=10, feature_columns=[col],
        optimizer=lambda: tf.keras.optimizers.legacy.Adam(0.001),
        model_dir=os.path.join(args.work_dir, "tf_model"),
        config=tf.estimator.RunConfig(tf_random_seed=42, log_step_count_steps=None,
                                      save_summary_steps=None))

    def input_fn():
        ds = tf.data.Dataset.from_tensor_slices(({"pixels": x}, labels))
        return ds.shuffle(60000, seed=42).repeat().batch(128)

    est.train(input_fn, max_steps=args.steps)
    spec = tf.feature_column.make_parse_example_spec([col])
    receiver = tf.estimator.export.build_parsing_serving_input_receiver_fn(spec)
    export = est.export_saved_model(os.path.join(args.work_dir, "tf_export"), receiver)
    predict = tf.saved_model.load(export.decode() if isinstance(export, bytes) else export
                                  ).signatures["predict"]
    examples = []
    for row in test_pixels():
        ex = tf.train.Example(features=tf.train.Features(feature={
            "pixels": tf.train.Feature(float_list=tf.train.FloatList(value=row))}))
        examples.append(tf.constant([ex.SerializeToString()]))
    return lambda e: predict(examples=e), examples


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer", choices=["onnx", "tf"], required=True)
    ap.add_argument("--model", help="onnx: the model.onnx of `estuary export --format onnx`")
    ap.add_argument("--work_dir", help="tf: where to train and export (default: a temp dir)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup_secs", type=float, default=1)
    ap.add_argument("--repeats", type=int, default=1, help="runs of each client count")
    args = ap.parse_args()
    own_dir = None
    if args.peer == "tf" and not args.work_dir:
        own_dir = args.work_dir = tempfile.mkdtemp(prefix="serving_bench_tf_")
    try:
        call, inputs = onnx_peer(args) if args.peer == "onnx" else tf_peer(args)
        for _ in range(20):
            call(inputs[0])
        for clients in [int(c) for c in args.clients.split(",") for _ in range(args.repeats)]:
            n, rps, p50, p99 = run_clients(call, inputs, clients, args.seconds, args.warmup_secs)
            print(f"serving_peer peer={args.peer} clients={clients} requests={n} rps={rps:.1f} "
                  f"p50_us={p50:.1f} p99_us={p99:.1f}", flush=True)
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
