#!/usr/bin/env python3
"""TF 2.15 Estimator peer of bench/ps_train_bench.py: the click-log wide-and-deep job.

  .venv-tf/bin/python bench/ps_train_bench_tf.py --job JOB.json [--warmup 50] [--seconds 10]

Builds from the Estuary job file (examples/clicks_wide_deep.json) the same
model TF's way: tf.estimator.DNNLinearCombinedClassifier, linear part over
bucketized_column(numeric_column) x 13, categorical_column_with_hash_bucket x
26 and the crossed_columns, DNN part over numeric_column(normalizer_fn =
(x - mean) / stddev) x 13 and embedding_column(hash column, 8) x 26,
hidden_units and optimizers from the job (Ftrl / Adagrad, legacy Keras
optimizers, as the Estimator uses them). Input: the job's CSV files through
the batched tf.data CSV path: TextLineDataset (header skipped), interleave
over 2 files, shuffle (the job's buffer, seed), repeat, batch (the job's
batch_size), tf.io.decode_csv on the whole batch (2 parallel calls),
prefetch 2; tf.data's private thread pool = 2 threads.

Role from TF_CONFIG, exactly as a TF user runs it: with a cluster, the
`ps` task runs tf.estimator.train_and_evaluate, which starts its
tf.distribute.Server and joins it forever (the driver kills it); the chief
trains (variables on the ps via replica_device_setter). Without TF_CONFIG:
one process. Session threads: intra_op = inter_op = --threads (1),
allow_soft_placement as in RunConfig's default, also for the ps's server (RunConfig.session_config is what train_and_evaluate
gives the server).

The chief times global_step (read from the session after each step)
after --warmup steps for --seconds (printing `timing_window start|end
global_step G` at both ends, for the driver's CPU sampling) and prints
  global_steps_per_sec X
  examples_per_sec Y
Summaries and checkpoints are pushed out of the way (huge intervals).
"""
import argparse
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402


def feature_columns(job):
    fc = tf.feature_column
    cols = {}
    for c in job["feature_columns"]:
        t = c["type"]
        if t == "numeric":
            norm = c.get("normalizer")
            fn = None
            if norm:
                fn = (lambda m, s: (lambda x: (x - m) / s))(float(norm["mean"]), float(norm["stddev"]))
            cols[c["key"]] = fc.numeric_column(c["key"], default_value=c.get("default_value"),
                                               normalizer_fn=fn)
        elif t == "bucketized":
            src = c["source_column"]
            raw = fc.numeric_column(src, default_value=0)  # the raw value, not the normalized one
            cols[f"{src}_bucketized"] = fc.bucketized_column(raw, [float(b) for b in c["boundaries"]])
        elif t == "categorical_with_hash_bucket":
            cols[c["key"]] = fc.categorical_column_with_hash_bucket(c["key"], c["hash_bucket_size"])
        elif t == "embedding":
            cat = c["categorical_column"]
            cols[f"{cat}_embedding"] = fc.embedding_column(cols[cat], c["dimension"],
                                                           combiner=c.get("combiner", "mean"))
        elif t == "crossed":
            keys = c["keys"]
            col = fc.crossed_column(keys, c["hash_bucket_size"])
            for name in ("_X_".join(keys), "_X_".join(reversed(keys)), "_X_".join(sorted(keys))):
                cols[name] = col
        else:
            sys.exit(f"ps_train_bench_tf: unsupported feature column type {t!r}")
    return cols


def optimizer(cfg):
    t = cfg["type"].lower()
    lr = cfg.get("learning_rate", 0.05)
    if t == "ftrl":
        return tf.keras.optimizers.legacy.Ftrl(learning_rate=lr)
    if t == "adagrad":
        return tf.keras.optimizers.legacy.Adagrad(learning_rate=lr, epsilon=1e-7)
    if t == "sgd":
        return tf.keras.optimizers.legacy.SGD(learning_rate=lr)
    if t == "adam":
        return tf.keras.optimizers.legacy.Adam(learning_rate=lr)
    sys.exit(f"ps_train_bench_tf: unsupported optimizer {t!r}")


def input_fn_from(section):
    files = sorted(f for p in section["files"] for f in glob.glob(p))
    if not files:
        sys.exit(f"ps_train_bench_tf: no files match {section['files']}")
    names = open(files[0]).readline().strip().split(",")
    defaults = [[d] if not isinstance(d, list) else [0.0] for d in section["column_defaults"]]
    label = section["label_key"]
    batch = section["batch_size"]
    seed = section.get("seed")

    def parse(lines):
        cols = tf.io.decode_csv(lines, defaults)
        d = dict(zip(names, cols))
        y = d.pop(label)
        return d, tf.reshape(tf.cast(y, tf.float32), [-1, 1])

    def input_fn():
        ds = tf.data.Dataset.from_tensor_slices(files)
        ds = ds.interleave(lambda f: tf.data.TextLineDataset(f).skip(1), cycle_length=2)
        ds = ds.shuffle(section.get("shuffle_buffer_size", 10000), seed=seed).repeat()
        ds = ds.batch(batch, drop_remainder=True).map(parse, num_parallel_calls=2).prefetch(2)
        opts = tf.data.Options()
        opts.threading.private_threadpool_size = 2
        opts.threading.max_intra_op_parallelism = 1
        return ds.with_options(opts)
    return input_fn


class GlobalStepRateHook(tf.estimator.SessionRunHook):
    """global_step/sec after `warmup` local steps, over `seconds`."""

    def __init__(self, warmup, seconds):
        self.warmup, self.seconds = warmup, seconds
        self.steps, self.t0, self.g0 = 0, None, None
        self.rate = None

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
            print(f"timing_window start global_step {g}", flush=True)  # the driver samples CPU time
        elif self.t0 is not None and now - self.t0 >= self.seconds:
            self.rate = (g - self.g0) / (now - self.t0)
            print(f"timing_window end global_step {g}", flush=True)
            run_context.request_stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", required=True)
    ap.add_argument("--model_dir", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    tf.get_logger().setLevel("ERROR")
    job = json.load(open(args.job))
    est_cfg = job["estimator"]
    cols = feature_columns(job)
    linear = [cols[n] for n in est_cfg["linear_feature_columns"]]
    dnn = [cols[n] for n in est_cfg["dnn_feature_columns"]]
    section = job["train_input"]
    # allow_soft_placement as in RunConfig's default session config (without
    # it the summaries' zero_fraction conds cannot colocate on a PS cluster).
    session = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=args.threads,
                                       inter_op_parallelism_threads=args.threads,
                                       allow_soft_placement=True)
    model_dir = args.model_dir or tempfile.mkdtemp(prefix="ps_train_bench_tf_")
    config = tf.estimator.RunConfig(model_dir=model_dir,
                                    tf_random_seed=job.get("run_config", {}).get("tf_random_seed"),
                                    session_config=session, save_summary_steps=10**9,
                                    save_checkpoints_steps=10**9, save_checkpoints_secs=None,
                                    log_step_count_steps=10**9)
    est = tf.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=linear, linear_optimizer=optimizer(est_cfg["linear_optimizer"]),
        dnn_feature_columns=dnn, dnn_optimizer=optimizer(est_cfg["dnn_optimizer"]),
        dnn_hidden_units=est_cfg["hidden_units"], n_classes=2, config=config)
    hook = GlobalStepRateHook(args.warmup, args.seconds)
    train_spec = tf.estimator.TrainSpec(input_fn_from(section), max_steps=10**9, hooks=[hook])
    eval_spec = tf.estimator.EvalSpec(input_fn_from(section), steps=1, start_delay_secs=10**6,
                                      throttle_secs=10**6)
    if os.environ.get("TF_CONFIG"):
        tf.estimator.train_and_evaluate(est, train_spec, eval_spec)  # the ps never returns
    else:
        est.train(train_spec.input_fn, hooks=[hook], max_steps=10**9)
    if hook.rate is None:
        sys.exit("ps_train_bench_tf: training ended before the timing window")
    batch = section["batch_size"]
    print(f"global_steps_per_sec {hook.rate:.2f}")
    print(f"examples_per_sec {hook.rate * batch:.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
