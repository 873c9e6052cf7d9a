#!/usr/bin/env python3
"""TF 2.15 Estimator peer of bench/train_bench.cc: the same models and data.

  .venv-tf/bin/python bench/train_bench_tf.py --model dnn|sparse --data DIR --threads N

  dnn:    tf.estimator.DNNClassifier(hidden_units=[256, 128], n_classes=2,
          feature_columns=[numeric_column("x", shape=[64])])
  sparse: tf.estimator.LinearClassifier(n_classes=2, feature_columns=[
          categorical_column_with_identity("ids", 2^20)]) fed [batch, 26] ids
both with tf.keras.optimizers.legacy.Adagrad(0.05, initial accumulator 0.1,
epsilon 1e-7). Input: tf.data.Dataset.from_tensor_slices over the in-memory
arrays, batch 256, repeat, prefetch. Session threads: intra_op and inter_op
= --threads. Summaries and step logging are pushed out of the way
(save_summary_steps / log_step_count_steps huge, no checkpoint before the
end). A hook times the steps after --warmup until --seconds have passed
(graph building, session start and the final checkpoint are not timed).
Prints examples_per_sec and final_loss.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 256
BUCKETS = 1 << 20
FIELDS = 26


class TimingHook(tf.estimator.SessionRunHook):
    def __init__(self, warmup, seconds):
        self.warmup, self.seconds = warmup, seconds
        self.steps, self.start, self.elapsed, self.loss = 0, None, 0.0, float("nan")

    def before_run(self, run_context):
        return tf.estimator.SessionRunArgs(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.LOSSES))

    def after_run(self, run_context, run_values):
        self.steps += 1
        if run_values.results:
            self.loss = float(np.sum(run_values.results))
        if self.steps == self.warmup:
            self.start = time.perf_counter()
        elif self.steps > self.warmup and (self.steps - self.warmup) % 10 == 0:
            self.elapsed = time.perf_counter() - self.start
            if self.elapsed >= self.seconds:
                run_context.request_stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=["dnn", "sparse"], default="dnn")
    ap.add_argument("--data", default="/tmp/estuary/train_bench")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    tf.get_logger().setLevel("ERROR")

    y = np.fromfile(os.path.join(args.data, f"{args.model}_y.f32"), np.float32)
    n = (y.shape[0] // BATCH) * BATCH
    y = y[:n].reshape(-1, 1)
    if args.model == "dnn":
        x = np.fromfile(os.path.join(args.data, "dnn_x.f32"), np.float32).reshape(-1, 64)[:n]
        features = {"x": x}
        columns = [tf.feature_column.numeric_column("x", shape=[64])]
    else:
        ids = np.fromfile(os.path.join(args.data, "sparse_ids.i64"), np.int64)
        features = {"ids": ids.reshape(-1, FIELDS)[:n]}
        columns = [tf.feature_column.categorical_column_with_identity("ids", BUCKETS)]

    def input_fn():
        ds = tf.data.Dataset.from_tensor_slices((features, y))
        return ds.batch(BATCH, drop_remainder=True).repeat().prefetch(2)

    session = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=args.threads,
                                       inter_op_parallelism_threads=args.threads)
    model_dir = tempfile.mkdtemp(prefix="train_bench_tf_")
    config = tf.estimator.RunConfig(model_dir=model_dir, tf_random_seed=42, session_config=session,
                                    save_summary_steps=10**9, save_checkpoints_steps=10**9,
                                    log_step_count_steps=10**9)
    opt = tf.keras.optimizers.legacy.Adagrad(learning_rate=0.05, initial_accumulator_value=0.1,
                                             epsilon=1e-7)
    if args.model == "dnn":
        est = tf.estimator.DNNClassifier(hidden_units=[256, 128], feature_columns=columns,
                                         n_classes=2, optimizer=opt, config=config)
    else:
        est = tf.estimator.LinearClassifier(feature_columns=columns, n_classes=2, optimizer=opt,
                                            config=config)
    hook = TimingHook(args.warmup, args.seconds)
    est.train(input_fn, hooks=[hook], max_steps=10**9)
    timed = hook.steps - args.warmup
    print(f"examples_per_sec {timed * BATCH / hook.elapsed:.0f}")
    print(f"steps {timed}")
    print(f"final_loss {hook.loss:.4f}")


if __name__ == "__main__":
    main()
