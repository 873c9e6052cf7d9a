#!/usr/bin/env python3
"""TF 2.15 Estimator peer of bench/train_bench.cc: the same models, weights and batches.

  .venv-tf/bin/python bench/train_bench_tf.py --model dnn|sparse --data DIR --threads N \
      [--input memory|csv] [--init DIR/init_MODEL] [--check_steps K] [--steps N]

  dnn:    tf.estimator.DNNClassifier(hidden_units=[256, 128], n_classes=2,
          feature_columns=[numeric_column("x", shape=[64])]; --input csv:
          numeric_column x00..x63)
  sparse: tf.estimator.LinearClassifier(n_classes=2, feature_columns=[
          categorical_column_with_identity("ids", 2^20)]) fed a SparseTensor
          of 26 ids per example (--input csv: one identity column of 2^20
          buckets per field, f00..f25, from zeros)
both with tf.keras.optimizers.legacy.Adagrad(0.05 * --lr_scale, initial
accumulator 0.1, epsilon 1e-7). The canned model_fn is wrapped only to add a
hook that fetches its loss every step.

Initial weights: --init's files (one raw float32 array per variable, TF's
names with '/' -> '.') are written as a TF checkpoint and warm-started from
(tf.estimator.WarmStartSettings, every trainable variable).

Input, --input memory: the batches are cut before any step and loaded once
(after the session starts, by a hook) into local variables [batches, 256,
...]; step i's features are slice i mod batches (a 64 KiB gather for the
DNN, the ids of a prebuilt SparseTensor with constant indices for sparse):
no tf.data, no batching, no dense-to-sparse conversion in a step.
--input csv: TextLineDataset(MODEL.csv) -> repeat -> batch(256) ->
map(batched tf.io.decode_csv; sparse ids stay dense [256] int64 columns, the
identity columns convert them) (-> prefetch with --threads > 1), in file
order, on a private tf.data thread pool of --threads threads.

Threads: session intra_op and inter_op = --threads; tf.data's private pool
= --threads, its per-op parallelism 1, autotune off. Summaries, step
logging and checkpoints are pushed out of the way. The first --check_steps
steps are untimed and their losses printed; then --steps timed steps (or
steps until --seconds passed). Graph building, session start and the final
checkpoint are not timed. Prints loss_at_step lines, examples_per_sec,
cpu_seconds (process CPU time of the timed steps), steps, version.
"""
import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 256
BUCKETS = 1 << 20
FIELDS = 26
DENSE = 64
VARIABLES = {
    "dnn": {"dnn/hiddenlayer_0/kernel": [DENSE, 256], "dnn/hiddenlayer_0/bias": [256],
            "dnn/hiddenlayer_1/kernel": [256, 128], "dnn/hiddenlayer_1/bias": [128],
            "dnn/logits/kernel": [128, 1], "dnn/logits/bias": [1]},
    "sparse": {"linear/linear_model/ids/weights": [BUCKETS, 1],
               "linear/linear_model/bias_weights": [1]},
}


def write_init_checkpoint(init, model, out_dir):
    """A TF checkpoint of --init's arrays; returns its prefix."""
    g = tf.Graph()
    with g.as_default():
        for name, shape in VARIABLES[model].items():
            path = os.path.join(init, name.replace("/", ".") + ".f32")
            v = np.fromfile(path, np.float32)
            if v.size != int(np.prod(shape)):
                raise SystemExit(f"train_bench_tf.py: {path}: {v.size} floats, expected {shape}")
            tf.compat.v1.Variable(v.reshape(shape), name=name)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, os.path.join(out_dir, "init.ckpt"))


class StepHook(tf.estimator.SessionRunHook):
    """Fetches the loss every step, loads the in-memory batches, times the steps."""

    def __init__(self, loss, check_steps, steps, seconds, feeds):
        self.loss_tensor, self.check_steps, self.steps, self.seconds = loss, check_steps, steps, seconds
        self.feeds = feeds  # [(assign op name, placeholder name, array)]
        self.done, self.start, self.elapsed, self.losses = 0, None, 0.0, {}
        self.cpu_start, self.cpu = None, 0.0

    def after_create_session(self, session, coord):
        g = session.graph
        for op, ph, array in self.feeds:
            session.run(g.get_operation_by_name(op), feed_dict={g.get_tensor_by_name(ph): array})

    def before_run(self, run_context):
        if self.start is None and self.done == self.check_steps:
            self.cpu_start, self.start = time.process_time(), time.perf_counter()
        return tf.estimator.SessionRunArgs(self.loss_tensor)

    def after_run(self, run_context, run_values):
        self.done += 1
        if self.done <= self.check_steps:
            self.losses[self.done] = float(run_values.results)
            return
        timed = self.done - self.check_steps
        if timed > 0 and (timed == self.steps or (not self.steps and timed % 10 == 0)):
            self.elapsed = time.perf_counter() - self.start
            self.cpu = time.process_time() - self.cpu_start
            if timed == self.steps or self.elapsed >= self.seconds:
                self.losses[self.done] = float(run_values.results)
                run_context.request_stop()


def memory_input_fn(model, data, feeds):
    """Slice (global_step mod batches) of local variables holding every batch."""
    y = np.fromfile(os.path.join(data, f"{model}_y.f32"), np.float32)
    nb = y.shape[0] // BATCH
    arrays = {"y": y[:nb * BATCH].reshape(nb, BATCH, 1)}
    if model == "dnn":
        x = np.fromfile(os.path.join(data, "dnn_x.f32"), np.float32)
        arrays["x"] = x[:nb * BATCH * DENSE].reshape(nb, BATCH, DENSE)
    else:
        ids = np.fromfile(os.path.join(data, "sparse_ids.i64"), np.int64)
        arrays["ids"] = ids[:nb * BATCH * FIELDS].reshape(nb, BATCH * FIELDS)
    for key, a in arrays.items():
        feeds.append((f"bench_load_{key}", f"bench_feed_{key}:0", a))

    def input_fn():
        held = {}
        for key, a in arrays.items():
            dtype = tf.as_dtype(a.dtype)
            v = tf.compat.v1.get_variable(f"bench_{key}", shape=a.shape, dtype=dtype,
                                          initializer=tf.compat.v1.zeros_initializer(),
                                          trainable=False,
                                          collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])
            ph = tf.compat.v1.placeholder(dtype, a.shape, name=f"bench_feed_{key}")
            tf.compat.v1.assign(v, ph, name=f"bench_load_{key}")
            held[key] = v
        # Read before this step's update of global_step (the update depends on it).
        i = tf.math.floormod(tf.compat.v1.train.get_global_step(), nb)
        labels = tf.gather(held["y"], i)
        if model == "dnn":
            return {"x": tf.gather(held["x"], i)}, labels
        r, c = np.meshgrid(np.arange(BATCH), np.arange(FIELDS), indexing="ij")
        indices = tf.constant(np.stack([r.ravel(), c.ravel()], axis=1).astype(np.int64))
        ids = tf.SparseTensor(indices, tf.gather(held["ids"], i), [BATCH, FIELDS])
        return {"ids": ids}, labels

    return input_fn


def csv_input_fn(model, data, threads):
    if model == "dnn":
        names = [f"x{i:02d}" for i in range(DENSE)]
        defaults = [[0.0]] * DENSE
        columns = [tf.feature_column.numeric_column(n) for n in names]
    else:
        names = [f"f{i:02d}" for i in range(FIELDS)]
        defaults = [[0]] * FIELDS  # int64 ids
        columns = [tf.feature_column.categorical_column_with_identity(n, BUCKETS) for n in names]

    def parse(lines):
        cols = tf.io.decode_csv(lines, record_defaults=defaults + [[0.0]])
        return dict(zip(names, cols[:-1])), tf.reshape(cols[-1], [-1, 1])

    def input_fn():
        ds = tf.data.TextLineDataset(os.path.join(data, f"{model}.csv")).repeat()
        ds = ds.batch(BATCH, drop_remainder=True)
        ds = ds.map(parse, num_parallel_calls=threads if threads > 1 else None, deterministic=True)
        if threads > 1:
            ds = ds.prefetch(2 * threads)
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
        options.autotune.enabled = False
        return ds.with_options(options)

    return input_fn, columns


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["dnn", "sparse"], default="dnn")
    ap.add_argument("--data", default="/tmp/estuary/train_bench")
    ap.add_argument("--input", choices=["memory", "csv"], default="memory")
    ap.add_argument("--init", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check_steps", type=int, default=20)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--lr_scale", type=float, default=1.0)
    args = ap.parse_args()
    if args.input == "csv" and args.model == "sparse" and args.init:
        raise SystemExit("train_bench_tf.py: sparse --input csv starts from zeros (no --init)")
    tf.get_logger().setLevel("ERROR")

    scratch = tempfile.mkdtemp(prefix="train_bench_tf_")  # deleted at the end
    model_dir = os.path.join(scratch, "model")
    feeds = []
    if args.input == "csv":
        input_fn, columns = csv_input_fn(args.model, args.data, args.threads)
    else:
        input_fn = memory_input_fn(args.model, args.data, feeds)
        columns = ([tf.feature_column.numeric_column("x", shape=[DENSE])] if args.model == "dnn"
                   else [tf.feature_column.categorical_column_with_identity("ids", BUCKETS)])
    warm = None
    if args.init:
        warm = tf.estimator.WarmStartSettings(
            write_init_checkpoint(args.init, args.model, os.path.join(scratch, "init")),
            vars_to_warm_start=".*")
    session = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=args.threads,
                                       inter_op_parallelism_threads=args.threads)
    config = tf.estimator.RunConfig(model_dir=model_dir, tf_random_seed=42, session_config=session,
                                    save_summary_steps=10**9, save_checkpoints_steps=10**9,
                                    log_step_count_steps=10**9)
    opt = tf.keras.optimizers.legacy.Adagrad(learning_rate=0.05 * args.lr_scale,
                                             initial_accumulator_value=0.1, epsilon=1e-7)
    if args.model == "dnn":
        canned = tf.estimator.DNNClassifier(hidden_units=[256, 128], feature_columns=columns,
                                            n_classes=2, optimizer=opt, config=config)
    else:
        canned = tf.estimator.LinearClassifier(feature_columns=columns, n_classes=2, optimizer=opt,
                                               config=config)
    hooks = []

    def model_fn(features, labels, mode, config):
        spec = canned.model_fn(features, labels, mode, config)
        hook = StepHook(spec.loss, args.check_steps, args.steps, args.seconds, feeds)
        hooks.append(hook)
        return spec._replace(training_hooks=list(spec.training_hooks) + [hook])

    est = tf.estimator.Estimator(model_fn, config=config, warm_start_from=warm)
    est.train(input_fn, max_steps=args.check_steps + (args.steps or 10**9))
    shutil.rmtree(scratch, ignore_errors=True)
    hook = hooks[-1]
    for step in sorted(hook.losses):
        print(f"loss_at_step {step} {hook.losses[step]:.9g}")
    timed = hook.done - args.check_steps
    print(f"examples_per_sec {timed * BATCH / hook.elapsed:.0f}")
    print(f"cpu_seconds {hook.cpu:.4f}")
    print(f"steps {timed}")
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")
    print(f"version tensorflow {tf.__version__}, oneDNN {onednn}")


if __name__ == "__main__":
    main()
