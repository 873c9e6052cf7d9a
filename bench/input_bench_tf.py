#!/usr/bin/env python3
"""The tf.data + feature-columns side of input_bench (TensorFlow 2.15).

Same job file, same input section, same feature columns (numeric with
default, hash bucket, embedding), one epoch, examples/s. Prints one figure.
  input_bench_tf.py --job bench/click_input_job.json --input train_input --threads 1
--threads 1: TF limited to one thread (inter/intra op, tf.data private pool);
--threads N: N-way interleave, N parallel calls, prefetch;
--threads 0: TF's own best effort (AUTOTUNE everywhere, default thread pools).
"""
import argparse
import glob
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--job", default="bench/click_input_job.json")
    ap.add_argument("--input", default="train_input")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import tensorflow as tf
    if args.threads > 0:
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    job = json.load(open(args.job))
    section = job[args.input]
    files = sorted(f for p in section["files"] for f in glob.glob(p))
    fc = tf.feature_column
    columns, categorical = [], {}
    for c in job["feature_columns"]:
        if c["type"] == "numeric":
            columns.append(fc.numeric_column(c["key"], default_value=c.get("default_value")))
        elif c["type"] == "categorical_with_hash_bucket":
            categorical[c["key"]] = fc.categorical_column_with_hash_bucket(c["key"], c["hash_bucket_size"])
        elif c["type"] == "embedding":
            columns.append(fc.embedding_column(categorical[c["categorical_column"]], c["dimension"],
                                               combiner=c.get("combiner", "mean")))
        else:
            sys.exit(f"unsupported column type {c['type']}")
    layer = tf.keras.layers.DenseFeatures(columns)
    batch = section["batch_size"]
    par = args.threads if args.threads > 1 else (tf.data.AUTOTUNE if args.threads == 0 else None)
    label = section.get("label_key")

    if section["format"] == "csv":
        names = open(files[0]).readline().strip().split(",")
        defaults = [tf.constant([d], tf.int64 if isinstance(d, int) else
                                tf.float32 if isinstance(d, float) else tf.string)
                    for d in section["column_defaults"]]

        def open_file(f):
            return tf.data.experimental.CsvDataset(f, defaults, header=True)

        def to_dict(*cols):
            d = dict(zip(names, cols))
            return d, d.pop(label)
        post = to_dict
    else:
        spec = {}
        for k, f in section["features"].items():
            dtype = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}[f["dtype"]]
            spec[k] = tf.io.FixedLenFeature(f.get("shape", []), dtype, default_value=f.get("default"))

        def open_file(f):
            return tf.data.TFRecordDataset(f)

        def parse(records):
            d = tf.io.parse_example(records, spec)
            return d, d.pop(label)
        post = parse

    files_ds = tf.data.Dataset.from_tensor_slices(files)
    if par:
        ds = files_ds.interleave(open_file, cycle_length=2 if args.threads == 0 else par,
                                 num_parallel_calls=par)
    else:
        ds = files_ds.interleave(open_file, cycle_length=1)
    ds = ds.batch(batch)
    ds = ds.map(post, num_parallel_calls=par) if par else ds.map(post)
    if par:
        ds = ds.prefetch(tf.data.AUTOTUNE if args.threads == 0 else 2 * par)
    if args.threads > 0:
        opts = tf.data.Options()
        opts.threading.private_threadpool_size = args.threads
        opts.threading.max_intra_op_parallelism = 1
        opts.autotune.enabled = bool(par)
        ds = ds.with_options(opts)

    @tf.function
    def run():
        n = tf.constant(0, tf.int64)
        s = tf.constant(0.0)
        for features, _ in ds:
            out = layer(features)
            n += tf.shape(out, out_type=tf.int64)[0]
            s += out[0, 0]
        return n, s
    run.get_concrete_function()  # trace (and create the embedding variables) untimed
    start = time.monotonic()
    n, _ = run()
    secs = time.monotonic() - start
    print(f"examples {int(n)}")
    print(f"examples_per_sec {int(n) / secs:.0f}")


if __name__ == "__main__":
    main()
