#!/usr/bin/env python3
"""TF 2.15 Estimator peer of bench/sync_train_bench.py: the Fashion-MNIST DNN
trained synchronously.

  .venv-tf/bin/python bench/sync_train_bench_tf.py --job JOB.json [--steps 600] [--warmup 100]

The model of the Estuary job file (examples/fashion_mnist_dnn.json):
tf.estimator.DNNClassifier(hidden_units, n_classes, feature_columns=
[numeric_column("pixels", shape=[784])], optimizer=the job's (legacy Keras
Adam), its tf_random_seed). Input (input_fn(input_context)): the job's idx
files read with numpy (uint8), Dataset.from_tensor_slices -> shard(the
input pipeline's id of however many the strategy has: the same partition
as Estuary's shard "auto") -> shuffle(the job's buffer, seed) -> repeat ->
batch(the job's batch_size, per replica) -> map(cast / 255) -> prefetch 2;
tf.data's private pool of --threads threads.

Role from TF_CONFIG, as a TF user runs it: with a cluster (chief + workers),
RunConfig(train_distribute=tf.distribute.experimental.
MultiWorkerMirroredStrategy()) and tf.estimator.train_and_evaluate: every
task trains, gradients are all-reduced by TF's collective ops (ring over
gRPC on CPU), global batch = batch_size x tasks. Without TF_CONFIG: one
process, no strategy (the reference).

Session threads: intra_op = inter_op = --threads (1). Every task trains
--steps global steps (max_steps, so chief and workers stop at the same
step); the chief times global_step (read from the session after each step)
from its --warmup-th step to the last (printing `timing_window start|end
global_step G` at both ends, for the driver's CPU sampling) and prints
  global_steps_per_sec X
  examples_per_sec Y      (x batch_size x tasks in sync)
Summaries and checkpoints are pushed out of the way (huge intervals).
"""
import argparse
import gzip
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def optimizer(cfg):
    t = cfg["type"].lower()
    lr = cfg.get("learning_rate", 0.001)
    if t == "adam":
        return tf.keras.optimizers.legacy.Adam(learning_rate=lr)
    if t == "adagrad":
        return tf.keras.optimizers.legacy.Adagrad(learning_rate=lr, epsilon=1e-7)
    if t == "sgd":
        return tf.keras.optimizers.legacy.SGD(learning_rate=lr)
    sys.exit(f"sync_train_bench_tf: unsupported optimizer {t!r}")


def input_fn_from(section, threads):
    images = read_idx(section["images"]).reshape(-1, 784)
    labels = read_idx(section["labels"]).astype(np.int32).reshape(-1, 1)
    batch = section["batch_size"]
    seed = section.get("seed")
    buffer = section.get("shuffle_buffer_size", 10000)

    def input_fn(input_context=None):
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        if input_context is not None and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        ds = ds.shuffle(buffer, seed=seed).repeat().batch(batch, drop_remainder=True)
        ds = ds.map(lambda x, y: ({"pixels": tf.cast(x, tf.float32) / 255.0}, y))
        ds = ds.prefetch(2)
        opts = tf.data.Options()
        opts.threading.private_threadpool_size = threads
        opts.threading.max_intra_op_parallelism = 1
        return ds.with_options(opts)
    return input_fn


class GlobalStepRateHook(tf.estimator.SessionRunHook):
    """global_step/sec from the `warmup`-th local step to the last."""

    def __init__(self, warmup, last):
        self.warmup, self.last = warmup, last
        self.steps, self.t0, self.g0 = 0, None, None
        self.t1, self.g1 = None, None

    def begin(self):
        self.gs = tf.compat.v1.train.get_global_step()

    def before_run(self, run_context):
        return tf.estimator.SessionRunArgs(self.gs)

    def after_run(self, run_context, run_values):
        self.steps += 1
        g = int(run_values.results)  # global_step before this step's increment
        now = time.perf_counter()
        if self.steps == self.warmup:
            self.t0, self.g0 = now, g
            print(f"timing_window start global_step {g}", flush=True)
        elif self.t0 is not None:
            self.t1, self.g1 = now, g
            if g + 1 == self.last:  # the final step: the driver samples CPU time
                print(f"timing_window end global_step {g}", flush=True)

    def rate(self):
        if self.t1 is None or self.g1 <= self.g0:
            return None
        return (self.g1 - self.g0) / (self.t1 - self.t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", required=True)
    ap.add_argument("--model_dir", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--steps", type=int, default=600, help="global steps (max_steps)")
    args = ap.parse_args()
    tf.get_logger().setLevel("ERROR")
    job = json.load(open(args.job))
    est_cfg = job["estimator"]
    if est_cfg["type"] != "dnn_classifier":
        sys.exit(f"sync_train_bench_tf: {args.job}: estimator.type {est_cfg['type']!r} "
                 "(only dnn_classifier)")
    section = job["train_input"]
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    cluster = tf_config.get("cluster", {})
    tasks = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    is_chief = not cluster or tf_config.get("task", {}).get("type") == "chief"
    strategy = tf.distribute.experimental.MultiWorkerMirroredStrategy() if cluster else None
    if strategy is not None:
        print(f"strategy {type(strategy).__name__}, {strategy.num_replicas_in_sync} replicas in sync",
              file=sys.stderr, flush=True)
    session = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=args.threads,
                                       inter_op_parallelism_threads=args.threads,
                                       allow_soft_placement=True)
    model_dir = args.model_dir or tempfile.mkdtemp(prefix="sync_train_bench_tf_")
    config = tf.estimator.RunConfig(model_dir=model_dir,
                                    tf_random_seed=job.get("run_config", {}).get("tf_random_seed"),
                                    session_config=session, save_summary_steps=10**9,
                                    save_checkpoints_steps=10**9, save_checkpoints_secs=None,
                                    log_step_count_steps=10**9, train_distribute=strategy)
    est = tf.estimator.DNNClassifier(
        hidden_units=est_cfg["hidden_units"], n_classes=est_cfg["n_classes"],
        feature_columns=[tf.feature_column.numeric_column("pixels", shape=[784])],
        optimizer=optimizer(est_cfg["optimizer"]), config=config)
    hook = GlobalStepRateHook(args.warmup, args.steps)
    input_fn = input_fn_from(section, args.threads)
    if cluster:
        train_spec = tf.estimator.TrainSpec(input_fn, max_steps=args.steps, hooks=[hook])
        eval_spec = tf.estimator.EvalSpec(input_fn, steps=1, start_delay_secs=10**6,
                                          throttle_secs=10**6)
        tf.estimator.train_and_evaluate(est, train_spec, eval_spec)
    else:
        est.train(input_fn, hooks=[hook], max_steps=args.steps)
    if not is_chief:
        return
    rate = hook.rate()
    if rate is None:
        sys.exit("sync_train_bench_tf: training ended before the timing window "
                 f"({hook.steps} steps, --warmup {args.warmup})")
    examples = section["batch_size"] * max(tasks, 1)
    print(f"global_steps_per_sec {rate:.2f}")
    print(f"examples_per_sec {rate * examples:.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
