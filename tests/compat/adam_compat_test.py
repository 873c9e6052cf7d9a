"""DNN + Adam: Estuary's eval loss within 1% of TF 2.15's on the compat
configurations (estimator_compat_test's DNNClassifier, and its
DNNLinearCombinedClassifier with Adam on the DNN part), 3 seeds.

Why the randomness is shared. With independent random streams (each side's
own initial weights and shuffle), the eval loss after 500 steps moves by
~4% (one standard deviation) from seed to seed on either side, so a 3-seed
mean can not be held to 1%; the 1.8-2.8% "gap" measured in session 3 was
that noise (12 seeds: DNN -2.1%, DNN+linear +0.6%, Estuary vs TF; see
docs/ARCHITECTURE.md, "Adam fidelity"). What can be held to 1% is the
model and optimizer over a whole training run: per seed, both sides start
from TF's initial weights (its model.ckpt-0 for tf_random_seed = seed,
written into an Estuary checkpoint that Estuary warm-starts from) and read
the same seeded shuffle of the training rows (materialised once as a CSV
of STEPS x BATCH rows, read in order by both), 500 steps with Adam
(dense on the network, sparse on the embedding table: Keras' legacy Adam
decays every row's moments), then evaluate the same eval CSV. Asserted:
each seed's eval loss and average_loss within 1%, and the 3-seed means
(measured: equal to all printed digits); and the final variables and Adam
slots (m, v; the embedding table's too) to VARIABLE_RTOL of the largest
value of each (measured: float rounding).

Runs under the TF venv; drives `estuary` and `compat_tool`. ~1-2 min on an
idle 2-core machine.
Usage: adam_compat_test.py --tool ESTUARY --compat_tool COMPAT_TOOL
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import estimator_compat_test as base  # noqa: E402  (configs, columns, data)

ESTUARY = None
COMPAT_TOOL = None
SEEDS = (42, 7, 1)
STEPS = 500
BATCH = base.BATCH
EVAL_BATCH = base.EVAL_BATCH
LOSS_REL = 0.01

ADAM = {"type": "adam", "learning_rate": 0.01}
# name -> (estimator section, feature columns), as in estimator_compat_test.
CONFIGS = {
    "dnn_classifier": base.CONFIGS["dnn_classifier"],
    "dnn_linear_combined_classifier_adam": (
        dict(base.CONFIGS["dnn_linear_combined_classifier"][0], dnn_optimizer=ADAM),
        base.CONFIGS["dnn_linear_combined_classifier"][1]),
}


def shuffled_stream(paths, seed, out):
    """The training rows as tf.data shuffles them (buffer = all rows,
    reshuffled each epoch, op seed `seed`), STEPS x BATCH of them."""
    with open(paths["train"]) as f:
        header = f.readline()
    ds = (tf.data.TextLineDataset(paths["train"]).skip(1)
          .shuffle(base.N_TRAIN, seed=seed).repeat().take(STEPS * BATCH))
    with open(out, "w") as f:
        f.write(header)
        for line in ds.as_numpy_iterator():
            f.write(line.decode() + "\n")
    return out


def tf_estimator(name, seed, model_dir):
    est, columns = CONFIGS[name]
    cols = base.tf_feature_columns(columns)
    config = tf.estimator.RunConfig(model_dir=model_dir, tf_random_seed=seed,
                                    save_summary_steps=100, log_step_count_steps=100)
    kw = {k: base.tf_optimizer(est[k]) for k in ("optimizer", "dnn_optimizer") if k in est}
    if est["type"] == "dnn_classifier":
        dense = [c for c in cols.values()
                 if c.__class__.__name__ in ("NumericColumn", "IndicatorColumn",
                                             "EmbeddingColumn")]
        return tf.estimator.DNNClassifier(est["hidden_units"], dense, config=config, **kw)
    return tf.estimator.DNNLinearCombinedClassifier(
        linear_feature_columns=[cols[k] for k in est["linear_feature_columns"]],
        dnn_feature_columns=[cols[k] for k in est["dnn_feature_columns"]],
        dnn_hidden_units=est["hidden_units"], config=config, **kw)


def input_fn(path, batch):
    def fn():
        ds = tf.data.TextLineDataset(path).skip(1).batch(batch)

        def parse(lines):
            features = dict(zip(base.COLUMNS,
                                tf.io.decode_csv(lines, record_defaults=base.DEFAULTS)))
            return features, features.pop("survived")
        return ds.map(parse)
    return fn


def run_tf(name, seed, work, paths, stream):
    model_dir = os.path.join(work, f"tf_{name}_{seed}")
    est = tf_estimator(name, seed, model_dir)
    est.train(input_fn(stream, BATCH), max_steps=STEPS)
    est.evaluate(input_fn(paths["eval"], EVAL_BATCH), steps=None)
    return model_dir


def compat_tool(request):
    p = subprocess.run([COMPAT_TOOL], input=json.dumps(request), capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"compat_tool {request['op']} failed: {p.stdout}{p.stderr}")
    return json.loads(p.stdout)


def run_estuary(name, seed, work, paths, stream, tf_dir):
    # TF's initial weights -> an Estuary checkpoint to warm-start from.
    reader = tf.train.load_checkpoint(os.path.join(tf_dir, "model.ckpt-0"))
    floats = {}
    for var, dtype in reader.get_variable_to_dtype_map().items():
        if dtype == tf.float32 and not var.startswith("training/"):
            v = reader.get_tensor(var)
            floats[var] = {"shape": list(v.shape), "values": v.reshape(-1).tolist()}
    init_dir = os.path.join(work, f"init_{name}_{seed}")
    compat_tool({"op": "write_checkpoint", "model_dir": init_dir, "step": 0, "floats": floats})

    model_dir = os.path.join(work, f"estuary_{name}_{seed}")
    est, columns = CONFIGS[name]
    common = {"format": "csv", "header": True, "column_defaults": base.DEFAULTS,
              "label_key": "survived"}
    job = {
        "model_dir": model_dir,
        "estimator": dict(est, warm_start_from=init_dir),
        "feature_columns": columns,
        "train_input": dict(common, files=[stream], batch_size=BATCH, num_epochs=1),
        "eval_input": dict(common, files=[paths["eval"]], batch_size=EVAL_BATCH),
        "run_config": {"tf_random_seed": seed, "save_summary_steps": 100,
                       "log_step_count_steps": 100},
        "train_spec": {"max_steps": STEPS},
        "eval_spec": {"steps": None},
    }
    job_path = model_dir + ".json"
    with open(job_path, "w") as f:
        json.dump(job, f, indent=1)
    p = subprocess.run([ESTUARY, "train", job_path, "--max_steps", str(STEPS)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"estuary train {job_path} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return model_dir


def variable_differences(tf_dir, our_dir):
    """{name: max |TF - Estuary| / (1e-3 + max |TF|)} over the final model
    variables and the Adam slots m and v (TF's training/Adam/<var>/m is
    Estuary's <var>/adam/m); a name missing on Estuary's side is inf."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(tf_dir))
    ours = compat_tool({"op": "read_checkpoint", "model_dir": our_dir})["floats"]
    out = {}
    for name in reader.get_variable_to_shape_map():
        if name.startswith("training/Adam/") and name.rsplit("/", 1)[1] in ("m", "v"):
            var, slot = name[len("training/Adam/"):].rsplit("/", 1)
            our_name = f"{var}/adam/{slot}"
        elif name.startswith("training/") or name == "global_step":
            continue
        else:
            our_name = name
        t = np.asarray(reader.get_tensor(name), dtype=np.float64).reshape(-1)
        if our_name not in ours:
            out[name] = float("inf")
            continue
        o = np.asarray(ours[our_name]["values"], dtype=np.float64)
        out[name] = (float(np.abs(t - o).max() / (1e-3 + np.abs(t).max()))
                     if o.shape == t.shape else float("inf"))
    return out


RESULTS = {}  # (side, name, seed) -> final eval metrics
VARIABLES = {}  # (name, seed) -> variable_differences
VARIABLE_RTOL = 1e-3


def setUpModule():
    work = tempfile.mkdtemp(prefix="adam_compat_")
    paths = base.write_clean_csvs(work)
    tf.get_logger().setLevel("ERROR")
    for seed in SEEDS:
        stream = shuffled_stream(paths, seed, os.path.join(work, f"stream_{seed}.csv"))
        for name in CONFIGS:
            tf_dir = run_tf(name, seed, work, paths, stream)
            our_dir = run_estuary(name, seed, work, paths, stream, tf_dir)
            RESULTS[("tf", name, seed)] = base.final_metrics(tf_dir)
            RESULTS[("estuary", name, seed)] = base.final_metrics(our_dir)
            VARIABLES[(name, seed)] = variable_differences(tf_dir, our_dir)
    report = ["", f"{'config':38s} {'seed':>4s} {'TF loss':>9s} {'Estuary':>9s} {'rel':>9s}"]
    for name in CONFIGS:
        for seed in SEEDS:
            a = RESULTS[("tf", name, seed)]["loss"]
            b = RESULTS[("estuary", name, seed)]["loss"]
            worst = max(VARIABLES[(name, seed)].items(), key=lambda kv: kv[1])
            report.append(f"{name:38s} {seed:4d} {a:9.5f} {b:9.5f} {b / a - 1:+9.2e}"
                          f"  variables: largest difference {worst[1]:.1e} ({worst[0]})")
    print("\n".join(report), file=sys.stderr)


class AdamCompatTest(unittest.TestCase):
    def check(self, name):
        for key in ("loss", "average_loss"):
            for seed in SEEDS:
                a = RESULTS[("tf", name, seed)][key]
                b = RESULTS[("estuary", name, seed)][key]
                self.assertLessEqual(abs(b - a), LOSS_REL * a,
                                     f"seed {seed} {key}: TF {a:.5f}, Estuary {b:.5f}")
            a = np.mean([RESULTS[("tf", name, s)][key] for s in SEEDS])
            b = np.mean([RESULTS[("estuary", name, s)][key] for s in SEEDS])
            self.assertLessEqual(abs(b - a), LOSS_REL * a,
                                 f"mean {key}: TF {a:.5f}, Estuary {b:.5f}")

    def check_variables(self, name):
        for seed in SEEDS:
            bad = {k: v for k, v in VARIABLES[(name, seed)].items() if not v <= VARIABLE_RTOL}
            self.assertEqual(bad, {}, f"seed {seed}: variables (or Adam slots) differ")
            self.assertTrue(any(k.endswith("/m") for k in VARIABLES[(name, seed)]))

    def test_dnn_classifier(self):
        self.check("dnn_classifier")

    def test_dnn_linear_combined_classifier_adam(self):
        self.check("dnn_linear_combined_classifier_adam")

    def test_dnn_classifier_variables(self):
        self.check_variables("dnn_classifier")

    def test_dnn_linear_combined_classifier_adam_variables(self):
        self.check_variables("dnn_linear_combined_classifier_adam")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--compat_tool", required=True)
    args, rest = ap.parse_known_args()
    ESTUARY = os.path.abspath(args.tool)
    COMPAT_TOOL = os.path.abspath(args.compat_tool)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
