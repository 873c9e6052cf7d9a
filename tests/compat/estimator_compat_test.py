"""TF 2.15's tf.estimator and Estuary train the same premade estimators on
the same data and configuration; their results must agree.

For LinearClassifier, DNNClassifier, DNNLinearCombinedClassifier and
LinearRegressor on the Titanic passenger list (testdata/titanic.csv, first 712
passengers train, the other 179 eval), each configuration is written once
(a job file's `estimator` + `feature_columns`) and translated here into
tf.feature_column / tf.estimator calls. Both sides train the same number of
steps (batch 32, shuffled, tf_random_seed, TF's default optimizers unless the
job names one) and evaluate on the same eval CSV in the same batches. Compared:
- eval metric keys: the scalar tags of model_dir/eval (read with TensorBoard's
  EventAccumulator on both sides) and TF's evaluate() keys;
- prediction keys and per-key shapes of every predicted example;
- final eval metrics, averaged over SEEDS: accuracy within 0.02 absolute,
  loss and average_loss within 5% relative;
- Estuary's event files load in EventAccumulator with "loss" and
  "global_step/sec" (model_dir) and every metric key (model_dir/eval).

Runs under the TF venv; drives the `estuary` binary.
Usage: estimator_compat_test.py --tool PATH_TO_ESTUARY [unittest args]
"""
import argparse
import copy
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

ESTUARY = None
HERE = os.path.dirname(os.path.abspath(__file__))
TITANIC = os.path.join(HERE, "testdata", "titanic.csv")

N_TRAIN = 712  # the first 712 passengers train, the other 179 evaluate
STEPS = 500
BATCH = 32
EVAL_BATCH = 64  # 179 = 64 + 64 + 51: the eval `loss` is a mean over batches
SEEDS = (42, 7, 1)
ACCURACY_ABS = 0.02
LOSS_REL = 0.05

# The cleaned CSVs both sides read.
COLUMNS = ["survived", "pclass", "sex", "age", "sibsp", "parch", "fare", "embarked"]
DEFAULTS = [0, 0, "", 0.0, 0, 0, 0.0, ""]
MISSING_AGE = 28.0  # the training median; used for passengers without an age
MISSING_EMBARKED = "S"

AGE_NORM = {"mean": 29.5, "stddev": 13.0}
FARE_NORM = {"mean": 32.0, "stddev": 50.0}

# name -> (estimator section, feature_columns): one configuration, two runtimes.
CONFIGS = {
    "linear_classifier": (
        {"type": "linear_classifier"},  # default optimizer: FTRL, lr 0.2
        [
            {"type": "numeric", "key": "fare", "normalizer": FARE_NORM},
            {"type": "numeric", "key": "age", "normalizer": AGE_NORM},
            {"type": "bucketized", "source_column": "age",
             "boundaries": [5, 12, 18, 25, 35, 45, 60]},
            {"type": "categorical_with_vocabulary_list", "key": "sex",
             "vocabulary_list": ["male", "female"]},
            {"type": "categorical_with_vocabulary_list", "key": "embarked",
             "vocabulary_list": ["C", "Q", "S"]},
            {"type": "categorical_with_vocabulary_list", "key": "pclass", "dtype": "int64",
             "vocabulary_list": [1, 2, 3]},
            {"type": "crossed", "keys": ["sex", "age_bucketized"], "hash_bucket_size": 32},
            {"type": "crossed", "keys": ["sex", "pclass"], "hash_bucket_size": 16},
        ],
    ),
    "dnn_classifier": (
        # Adam: with TF's default (Adagrad 0.001) a few hundred steps leave
        # this DNN near its random start, and the result depends on the seed.
        {"type": "dnn_classifier", "hidden_units": [16, 8],
         "optimizer": {"type": "adam", "learning_rate": 0.01}},
        [
            {"type": "numeric", "key": "age", "normalizer": AGE_NORM},
            {"type": "numeric", "key": "fare", "normalizer": FARE_NORM},
            {"type": "numeric", "key": "sibsp"},
            {"type": "numeric", "key": "parch"},
            {"type": "categorical_with_vocabulary_list", "key": "sex",
             "vocabulary_list": ["male", "female"]},
            {"type": "categorical_with_vocabulary_list", "key": "pclass", "dtype": "int64",
             "vocabulary_list": [1, 2, 3]},
            {"type": "categorical_with_vocabulary_list", "key": "embarked",
             "vocabulary_list": ["C", "Q", "S"]},
            {"type": "indicator", "categorical_column": "sex"},
            {"type": "indicator", "categorical_column": "pclass"},
            {"type": "embedding", "categorical_column": "embarked", "dimension": 2},
        ],
    ),
    "dnn_linear_combined_classifier": (
        # linear part: the default optimizer (FTRL, min(0.005, 1/sqrt(n)));
        # DNN part: Adagrad as by default, at 0.1 (0.001 barely moves it in a
        # few hundred steps).
        {"type": "dnn_linear_combined_classifier", "hidden_units": [16, 8],
         "dnn_optimizer": {"type": "adagrad", "learning_rate": 0.1},
         "linear_feature_columns": ["sex", "pclass", "age_bucketized", "pclass_X_sex"],
         "dnn_feature_columns": ["age", "fare", "sex_indicator", "embarked_embedding"]},
        [
            {"type": "numeric", "key": "age", "normalizer": AGE_NORM},
            {"type": "numeric", "key": "fare", "normalizer": FARE_NORM},
            {"type": "bucketized", "source_column": "age",
             "boundaries": [5, 12, 18, 25, 35, 45, 60]},
            {"type": "categorical_with_vocabulary_list", "key": "sex",
             "vocabulary_list": ["male", "female"]},
            {"type": "categorical_with_vocabulary_list", "key": "pclass", "dtype": "int64",
             "vocabulary_list": [1, 2, 3]},
            {"type": "categorical_with_vocabulary_list", "key": "embarked",
             "vocabulary_list": ["C", "Q", "S"]},
            {"type": "crossed", "keys": ["sex", "pclass"], "hash_bucket_size": 16},
            {"type": "indicator", "categorical_column": "sex"},
            {"type": "embedding", "categorical_column": "embarked", "dimension": 2},
        ],
    ),
    "linear_regressor": (
        # Predicts age; SGD (FTRL's default rate would need thousands of steps
        # to move the bias to ~30).
        {"type": "linear_regressor", "label_key": "age",
         "optimizer": {"type": "sgd", "learning_rate": 0.01}},
        [
            {"type": "numeric", "key": "fare", "normalizer": FARE_NORM},
            {"type": "numeric", "key": "sibsp"},
            {"type": "numeric", "key": "parch"},
            {"type": "numeric", "key": "survived"},
            {"type": "categorical_with_vocabulary_list", "key": "sex",
             "vocabulary_list": ["male", "female"]},
            {"type": "categorical_with_vocabulary_list", "key": "pclass", "dtype": "int64",
             "vocabulary_list": [1, 2, 3]},
            {"type": "categorical_with_vocabulary_list", "key": "embarked",
             "vocabulary_list": ["C", "Q", "S"]},
        ],
    ),
}


def estimator_section(name):
    return {k: v for k, v in CONFIGS[name][0].items() if k != "label_key"}


def label_key(name):
    return CONFIGS[name][0].get("label_key", "survived")


# ----------------------------------------------------------------- data


def write_clean_csvs(out_dir):
    """testdata/titanic.csv -> train.csv / eval.csv with COLUMNS."""
    with open(TITANIC, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 891, len(rows)
    clean = []
    for r in rows:
        clean.append([
            int(r["Survived"]), int(r["Pclass"]), r["Sex"],
            float(r["Age"]) if r["Age"] else MISSING_AGE,
            int(r["SibSp"]), int(r["Parch"]), float(r["Fare"]),
            r["Embarked"] or MISSING_EMBARKED,
        ])
    paths = {}
    for split, part in (("train", clean[:N_TRAIN]), ("eval", clean[N_TRAIN:])):
        paths[split] = os.path.join(out_dir, f"{split}.csv")
        with open(paths[split], "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            w.writerows(part)
    return paths


# -------------------------------------------------------------- Estuary


def estuary_job(name, seed, model_dir, paths):
    est, columns = CONFIGS[name]
    common = {"format": "csv", "header": True, "column_defaults": DEFAULTS,
              "label_key": label_key(name)}
    return {
        "model_dir": model_dir,
        "estimator": estimator_section(name),
        "feature_columns": columns,
        "train_input": dict(common, files=[paths["train"]], batch_size=BATCH,
                            shuffle_buffer_size=N_TRAIN, num_epochs=-1),
        "eval_input": dict(common, files=[paths["eval"]], batch_size=EVAL_BATCH),
        "run_config": {"tf_random_seed": seed, "save_summary_steps": 100,
                       "log_step_count_steps": 100},
        "train_spec": {"max_steps": STEPS},
        "eval_spec": {"steps": None},
    }


def run_estuary(name, seed, work, paths):
    """Trains (+ evaluates) and predicts with the estuary binary."""
    model_dir = os.path.join(work, f"estuary_{name}_{seed}")
    job_path = model_dir + ".json"
    with open(job_path, "w") as f:
        json.dump(estuary_job(name, seed, model_dir, paths), f, indent=1)
    for args in (["train", job_path, "--max_steps", str(STEPS)],
                 ["predict", job_path, "--out", model_dir + ".predictions.jsonl"]):
        p = subprocess.run([ESTUARY] + args, capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError(f"estuary {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
    with open(model_dir + ".predictions.jsonl") as f:
        predictions = [json.loads(line) for line in f]
    return {"model_dir": model_dir, "predictions": predictions}


# ------------------------------------------------------------------- TF


def tf_feature_columns(columns):
    """The job's feature_columns -> {reference name: tf.feature_column}."""
    fc = tf.feature_column
    by_name = {}
    derived = set()  # names of bucketized and crossed columns
    for spec in columns:
        t = spec["type"]
        if t == "numeric":
            norm = spec.get("normalizer")
            fn = None
            if norm:
                fn = (lambda m, s: lambda x: (x - m) / s)(norm["mean"], norm["stddev"])
            col = fc.numeric_column(spec["key"], normalizer_fn=fn)
        elif t == "bucketized":
            col = fc.bucketized_column(by_name[spec["source_column"]], spec["boundaries"])
        elif t == "categorical_with_vocabulary_list":
            dtype = tf.int64 if spec.get("dtype") == "int64" else tf.string
            col = fc.categorical_column_with_vocabulary_list(
                spec["key"], spec["vocabulary_list"], dtype=dtype)
        elif t == "crossed":
            # A key naming a derived (bucketized/crossed) column is that
            # column; any other string is the raw feature, as in TF.
            keys = [by_name[k] if k in derived else k for k in spec["keys"]]
            col = fc.crossed_column(keys, spec["hash_bucket_size"])
        elif t == "indicator":
            col = fc.indicator_column(by_name[spec["categorical_column"]])
        elif t == "embedding":
            col = fc.embedding_column(by_name[spec["categorical_column"]], spec["dimension"],
                                      combiner=spec.get("combiner", "mean"))
        else:
            raise ValueError(t)
        by_name[spec.get("name", col.name)] = col
        if t in ("bucketized", "crossed"):
            derived.add(spec.get("name", col.name))
    return by_name


def tf_optimizer(spec):
    """A job's optimizer object -> TF's (legacy Keras, as Estimator wants)."""
    cls = {"adam": "Adam", "adagrad": "Adagrad", "ftrl": "Ftrl", "sgd": "SGD"}[spec["type"]]
    return getattr(tf.keras.optimizers.legacy, cls)(learning_rate=spec["learning_rate"])


def tf_estimator(name, seed, model_dir):
    est, columns = CONFIGS[name]
    cols = tf_feature_columns(columns)
    config = tf.estimator.RunConfig(model_dir=model_dir, tf_random_seed=seed,
                                    save_summary_steps=100, log_step_count_steps=100)
    dense = [c for c in cols.values()
             if c.__class__.__name__ in ("NumericColumn", "BucketizedColumn",
                                         "IndicatorColumn", "EmbeddingColumn")]
    kw = {k: tf_optimizer(est[k]) for k in ("optimizer", "linear_optimizer", "dnn_optimizer")
          if k in est}
    # A linear model's default columns (estimator_factory's LinearDefault):
    # every column except indicator/embedding wrappers.
    linear = [c for c in cols.values()
              if c.__class__.__name__ not in ("IndicatorColumn", "EmbeddingColumn")]
    if name == "linear_classifier":
        return tf.estimator.LinearClassifier(linear, config=config, **kw)
    if name == "linear_regressor":
        return tf.estimator.LinearRegressor(linear, config=config, **kw)
    if name == "dnn_classifier":
        return tf.estimator.DNNClassifier(est["hidden_units"], dense, config=config, **kw)
    if name == "dnn_linear_combined_classifier":
        return tf.estimator.DNNLinearCombinedClassifier(
            linear_feature_columns=[cols[k] for k in est["linear_feature_columns"]],
            dnn_feature_columns=[cols[k] for k in est["dnn_feature_columns"]],
            dnn_hidden_units=est["hidden_units"], config=config, **kw)
    raise ValueError(name)


def tf_input_fn(path, label, batch, train, seed):
    def input_fn():
        ds = tf.data.TextLineDataset(path).skip(1)
        if train:
            ds = ds.shuffle(N_TRAIN, seed=seed).repeat()
        ds = ds.batch(batch)

        def parse(lines):
            features = dict(zip(COLUMNS, tf.io.decode_csv(lines, record_defaults=DEFAULTS)))
            return features, features.pop(label)
        return ds.map(parse)
    return input_fn


def run_tf(name, seed, work, paths):
    model_dir = os.path.join(work, f"tf_{name}_{seed}")
    est = tf_estimator(name, seed, model_dir)
    label = label_key(name)
    est.train(tf_input_fn(paths["train"], label, BATCH, True, seed), max_steps=STEPS)
    eval_input = tf_input_fn(paths["eval"], label, EVAL_BATCH, False, seed)
    result = est.evaluate(eval_input, steps=None)
    predictions = list(est.predict(eval_input))
    return {"model_dir": model_dir, "evaluate": {k: float(v) for k, v in result.items()},
            "predictions": predictions}


# ------------------------------------------------------------- reading


def scalars(directory):
    """{tag: [(step, value)]} of the event files directly in `directory`."""
    acc = event_accumulator.EventAccumulator(directory,
                                             size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def final_metrics(model_dir):
    return {tag: values[-1][1] for tag, values in scalars(os.path.join(model_dir, "eval")).items()}


def shape_of(value):
    """Shape of a JSON value (nested lists), as numpy would see it."""
    return list(np.shape(np.array(value, dtype=object)))


# ---------------------------------------------------------------- tests

RESULTS = {}  # (side, name, seed) -> result dict


def setUpModule():
    work = tempfile.mkdtemp(prefix="estimator_compat_")
    paths = write_clean_csvs(work)
    errors = []

    def estuary_side():
        try:
            for name in CONFIGS:
                for seed in SEEDS:
                    RESULTS[("estuary", name, seed)] = run_estuary(name, seed, work, paths)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    # Estuary's runs (subprocesses) overlap TF's (this process).
    t = threading.Thread(target=estuary_side)
    t.start()
    tf.get_logger().setLevel("ERROR")
    for name in CONFIGS:
        for seed in SEEDS:
            RESULTS[("tf", name, seed)] = run_tf(name, seed, work, paths)
    t.join()
    if errors:
        raise errors[0]
    report = ["", f"{'estimator':32s} {'metric':14s} {'TF':>10s} {'Estuary':>10s}  (mean of seeds {SEEDS})"]
    for name in CONFIGS:
        tf_m, our_m = mean_metrics("tf", name), mean_metrics("estuary", name)
        for k in ("accuracy", "loss", "average_loss", "auc"):
            if k in tf_m and k in our_m:
                report.append(f"{name:32s} {k:14s} {tf_m[k]:10.4f} {our_m[k]:10.4f}")
    print("\n".join(report), file=sys.stderr)


def mean_metrics(side, name):
    per_seed = [final_metrics(RESULTS[(side, name, s)]["model_dir"]) for s in SEEDS]
    return {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}


class EstimatorCompatTest(unittest.TestCase):
    def check_metric_keys(self, name):
        for seed in SEEDS:
            tf_r, ours = RESULTS[("tf", name, seed)], RESULTS[("estuary", name, seed)]
            tf_tags = set(scalars(os.path.join(tf_r["model_dir"], "eval")))
            our_tags = set(scalars(os.path.join(ours["model_dir"], "eval")))
            self.assertEqual(our_tags, tf_tags)
            self.assertEqual(tf_tags | {"global_step"}, set(tf_r["evaluate"]))

    def check_prediction_keys(self, name):
        for seed in SEEDS:
            tf_p = RESULTS[("tf", name, seed)]["predictions"]
            our_p = RESULTS[("estuary", name, seed)]["predictions"]
            self.assertEqual(len(our_p), len(tf_p))
            for i, (theirs, ours) in enumerate(zip(tf_p, our_p)):
                self.assertEqual(set(ours), set(theirs), f"example {i}")
                for k in theirs:
                    self.assertEqual(shape_of(ours[k]), list(np.shape(theirs[k])),
                                     f"example {i} key {k}")

    def check_metric_values(self, name):
        tf_m, our_m = mean_metrics("tf", name), mean_metrics("estuary", name)
        if "accuracy" in tf_m:
            self.assertAlmostEqual(our_m["accuracy"], tf_m["accuracy"], delta=ACCURACY_ABS,
                                   msg=f"accuracy: TF {tf_m['accuracy']:.4f}")
        for k in ("loss", "average_loss"):
            self.assertLessEqual(abs(our_m[k] - tf_m[k]), LOSS_REL * tf_m[k],
                                 f"{k}: TF {tf_m[k]:.4f}, Estuary {our_m[k]:.4f}")

    def check_event_files(self, name):
        for seed in SEEDS:
            ours = RESULTS[("estuary", name, seed)]["model_dir"]
            train = scalars(ours)
            self.assertTrue({"loss", "global_step/sec"} <= set(train), sorted(train))
            self.assertEqual(train["loss"][-1][0], STEPS)
            self.assertTrue(all(np.isfinite(v) for _, v in train["loss"]))
            evals = scalars(os.path.join(ours, "eval"))
            keys = set(RESULTS[("tf", name, seed)]["evaluate"]) - {"global_step"}
            self.assertEqual(set(evals), keys)
            for tag, values in evals.items():
                self.assertEqual([s for s, _ in values], [STEPS], tag)


def add_tests():
    for name in CONFIGS:
        for check in ("metric_keys", "prediction_keys", "metric_values", "event_files"):
            def test(self, name=name, check=check):
                getattr(self, "check_" + check)(name)
            setattr(EstimatorCompatTest, f"test_{name}_{check}", test)


add_tests()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args, rest = ap.parse_known_args()
    ESTUARY = os.path.abspath(args.tool)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
