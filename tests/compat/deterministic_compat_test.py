"""Deterministic compatibility: TF 2.15's tf.estimator and Estuary start from
the same weights, train on the same batches in the same order, and must
agree step by step and value by value.

For every premade estimator (linear, DNN, DNN+linear: classifier and
regressor; baseline classifier and regressor) on the Titanic passenger list
(no shuffle; batches cross the epoch boundary), with TF's DEFAULT optimizers
(so their default hyper-parameters are checked) and between them
weight_column, n_classes = 3, label_vocabulary, batch norm and categorical
columns whose ids repeat within every batch (sparse updates with repeated
rows: linear weights, embeddings):
- Estuary's own initial variables (a run without warm start) have TF's
  names and shapes, TF's constants and TF's initializers' distributions;
- TF trains first; its model.ckpt-0 (the initial weights, saved before the
  first step) is written into an Estuary checkpoint (compat_tool
  write_checkpoint) that Estuary's job warm-starts from
  (estimator.warm_start_from), so both take step 1 from the same weights;
  optimizer slots start from each side's own defaults;
- both log the training loss of every step (save_summary_steps = 1; read
  back with TensorBoard's EventAccumulator): equal to LOSS_RTOL relative at
  every step;
- eval metrics (same eval batches) and every predicted value (logits,
  probabilities, classes, predictions, ...) of every eval example: equal to
  VALUE_RTOL / VALUE_ATOL.
Dropout on: the per-step loss on one repeated batch at a negligible learning
rate is a sample of the dropout loss at fixed weights; its mean and spread
must agree (dropout masks differ, so values can not): means within 4.5
standard errors, standard deviations within a factor 1.3.
Teeth: the same comparison with one default hyper-parameter 10% off on
Estuary's side (Adagrad's learning rate or initial accumulator, FTRL's
learning rate) must fail (test_changed_default_*); so must the dropout
comparison with Estuary at dropout 0.45 instead of 0.3.
Also: Adam (its sparse update is not row-wise), a named optimizer,
loss_reduction "sum", a 27-column linear model, and TFRecord input with a
multivalent feature whose ids repeat within an example.

Runs under the TF venv; drives `estuary` and `compat_tool`.
Usage: deterministic_compat_test.py --tool ESTUARY --compat_tool COMPAT_TOOL
"""
import argparse
import concurrent.futures
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

ESTUARY = None
COMPAT_TOOL = None
HERE = os.path.dirname(os.path.abspath(__file__))
TITANIC = os.path.join(HERE, "testdata", "titanic.csv")

N_TRAIN = 712  # the first 712 passengers train, the other 179 evaluate
BATCH = 32
STEPS = 30  # 712 = 22 * 32 + 8: step 23's batch spans two epochs
EVAL_BATCH = 64
SEED = 42
LOSS_RTOL = 1e-4  # per-step training loss
VALUE_RTOL, VALUE_ATOL = 1e-4, 1e-5  # eval metrics and predicted values

# x0..x19: made-up numeric features, for a linear model with more than 25
# columns (where linear.py's min(0.2, 1/sqrt(n)) would drop below 0.2, had
# TF 2.15's V2 estimators used it).
N_EXTRA = 20
EXTRA = [f"x{k}" for k in range(N_EXTRA)]
COLUMNS = ["survived", "pclass", "sex", "age", "sibsp", "parch", "fare", "embarked",
           "weight", "pclass_id", "pclass_name"] + EXTRA
DEFAULTS = [0, 0, "", 0.0, 0, 0, 0.0, "", 0.0, 0, ""] + [0.0] * N_EXTRA
PCLASS_NAMES = ["first", "second", "third"]
AGE_NORM = {"mean": 29.5, "stddev": 13.0}
FARE_NORM = {"mean": 32.0, "stddev": 50.0}

# Feature columns (job-file form). Every batch repeats the ids of sex,
# embarked and pclass (and of the crossed and bucketized columns).
FARE = {"type": "numeric", "key": "fare", "normalizer": FARE_NORM}
AGE = {"type": "numeric", "key": "age", "normalizer": AGE_NORM}
SIBSP = {"type": "numeric", "key": "sibsp"}
AGE_BUCKETS = {"type": "bucketized", "source_column": "age",
               "boundaries": [5, 12, 18, 25, 35, 45, 60]}
SEX = {"type": "categorical_with_vocabulary_list", "key": "sex",
       "vocabulary_list": ["male", "female"]}
EMBARKED = {"type": "categorical_with_vocabulary_list", "key": "embarked",
            "vocabulary_list": ["C", "Q", "S"]}
PCLASS = {"type": "categorical_with_vocabulary_list", "key": "pclass", "dtype": "int64",
          "vocabulary_list": [1, 2, 3]}
SEX_X_AGE = {"type": "crossed", "keys": ["sex", "age_bucketized"], "hash_bucket_size": 32}
SEX_INDICATOR = {"type": "indicator", "categorical_column": "sex"}
EMBARKED_EMBEDDING = {"type": "embedding", "categorical_column": "embarked", "dimension": 3}
PCLASS_EMBEDDING = {"type": "embedding", "categorical_column": "pclass", "dimension": 2,
                    "combiner": "sqrtn"}

LINEAR_COLUMNS = [FARE, AGE, AGE_BUCKETS, SEX, EMBARKED, PCLASS, SEX_X_AGE]
TAGS = {"type": "categorical_with_vocabulary_list", "key": "tags",
        "vocabulary_list": ["male", "female", "C", "Q", "S", "vip"]}
TAGS_INDICATOR = {"type": "indicator", "categorical_column": "tags"}
TAGS_EMBEDDING = {"type": "embedding", "categorical_column": "tags", "dimension": 3,
                  "combiner": "sum"}
WIDE_COLUMNS = [{"type": "numeric", "key": k} for k in EXTRA]
DNN_COLUMNS = [AGE, FARE, SIBSP, SEX, EMBARKED, SEX_INDICATOR, EMBARKED_EMBEDDING]

# name -> case. "estimator" is the job's section (default optimizers unless
# named); "linear"/"dnn" the TF columns by reference name (Estuary's job
# names them too); "train" the training file; "steps"; "tf_features" the
# features TF's input_fn keeps (TF 2.15's baseline V2 creates its bias under
# batch-size asserts on every feature but the weight, so with more than one
# its initializer reads the not yet initialized input iterator;
# BaselineRegressorV2 does not even pass its weight column on, so there the
# weight must be the only feature).
CASES = {
    "linear_classifier": dict(
        estimator={"type": "linear_classifier", "weight_column": "weight"},
        columns=LINEAR_COLUMNS, label="survived",
        linear=["fare", "age", "age_bucketized", "sex", "embarked", "pclass",
                "age_bucketized_X_sex"]),
    "linear_classifier_vocabulary": dict(
        estimator={"type": "linear_classifier", "n_classes": 3,
                   "label_vocabulary": PCLASS_NAMES},
        columns=[FARE, AGE, AGE_BUCKETS, SEX, EMBARKED, SEX_X_AGE], label="pclass_name",
        linear=["fare", "age", "age_bucketized", "sex", "embarked", "age_bucketized_X_sex"]),
    # 27 columns: linear.py's min(0.2, 1/sqrt(27)) = 0.192 would apply if
    # TF 2.15's V2 estimators used it, but their optimizer argument defaults
    # to the string 'Ftrl', which gets 0.2; the named optimizer too.
    "linear_classifier_wide": dict(
        estimator={"type": "linear_classifier"},
        columns=LINEAR_COLUMNS + WIDE_COLUMNS, label="survived",
        linear=["fare", "age", "age_bucketized", "sex", "embarked", "pclass",
                "age_bucketized_X_sex"] + EXTRA),
    "linear_classifier_wide_named_ftrl": dict(
        estimator={"type": "linear_classifier", "optimizer": "Ftrl"},
        columns=LINEAR_COLUMNS + WIDE_COLUMNS, label="survived",
        linear=["fare", "age", "age_bucketized", "sex", "embarked", "pclass",
                "age_bucketized_X_sex"] + EXTRA),
    "linear_regressor": dict(
        estimator={"type": "linear_regressor", "weight_column": "weight",
                   "loss_reduction": "sum"},
        columns=[FARE, SIBSP, SEX, EMBARKED, PCLASS], label="age",
        linear=["fare", "sibsp", "sex", "embarked", "pclass"]),
    "dnn_classifier": dict(
        estimator={"type": "dnn_classifier", "hidden_units": [16, 8]},
        columns=DNN_COLUMNS + [PCLASS, PCLASS_EMBEDDING], label="survived",
        dnn=["age", "fare", "sibsp", "sex_indicator", "embarked_embedding",
             "pclass_embedding"]),
    # Adam's sparse update is not row-wise (untouched embedding rows move).
    "dnn_classifier_adam": dict(
        estimator={"type": "dnn_classifier", "hidden_units": [16, 8],
                   "optimizer": {"type": "adam", "learning_rate": 0.01}},
        columns=DNN_COLUMNS + [PCLASS, PCLASS_EMBEDDING], label="survived",
        dnn=["age", "fare", "sibsp", "sex_indicator", "embarked_embedding",
             "pclass_embedding"]),
    "dnn_classifier_multiclass_batch_norm": dict(
        estimator={"type": "dnn_classifier", "hidden_units": [16, 8], "n_classes": 3,
                   "label_vocabulary": PCLASS_NAMES, "weight_column": "weight",
                   "batch_norm": True},
        columns=DNN_COLUMNS, label="pclass_name",
        dnn=["age", "fare", "sibsp", "sex_indicator", "embarked_embedding"]),
    "dnn_regressor": dict(
        estimator={"type": "dnn_regressor", "hidden_units": [16, 8], "weight_column": "weight"},
        columns=DNN_COLUMNS, label="age",
        dnn=["fare", "sibsp", "sex_indicator", "embarked_embedding"]),
    "dnn_linear_combined_classifier": dict(
        estimator={"type": "dnn_linear_combined_classifier", "hidden_units": [16, 8],
                   "n_classes": 3, "weight_column": "weight"},
        columns=LINEAR_COLUMNS + [SEX_INDICATOR, EMBARKED_EMBEDDING], label="pclass_id",
        linear=["age_bucketized", "sex", "embarked", "age_bucketized_X_sex"],
        dnn=["age", "fare", "sex_indicator", "embarked_embedding"]),
    "dnn_linear_combined_regressor": dict(
        estimator={"type": "dnn_linear_combined_regressor", "hidden_units": [16, 8],
                   "batch_norm": True},
        columns=DNN_COLUMNS + [PCLASS], label="age",
        linear=["sex", "embarked", "pclass"],
        dnn=["fare", "sibsp", "sex_indicator", "embarked_embedding"]),
    "baseline_classifier": dict(
        estimator={"type": "baseline_classifier", "n_classes": 3,
                   "label_vocabulary": PCLASS_NAMES, "weight_column": "weight"},
        columns=[FARE], label="pclass_name", tf_features=["fare", "weight"]),
    "baseline_regressor": dict(
        estimator={"type": "baseline_regressor", "weight_column": "weight"},
        columns=[FARE], label="age", tf_features=["weight"]),
    # TFRecord input; "tags" is multivalent and repeats ids within examples
    # (linear: summed weights; indicator: counts; embedding: sum combiner).
    "dnn_linear_combined_classifier_multivalent": dict(
        estimator={"type": "dnn_linear_combined_classifier", "hidden_units": [8]},
        columns=[AGE, FARE, SEX, TAGS, TAGS_INDICATOR, TAGS_EMBEDDING], label="survived",
        linear=["sex", "tags"], dnn=["age", "fare", "tags_indicator", "tags_embedding"],
        train="train_tfrecord", eval="eval_tfrecord"),
    "linear_regressor_multivalent": dict(
        estimator={"type": "linear_regressor"},
        columns=[FARE, TAGS], label="age", linear=["fare", "tags"],
        train="train_tfrecord", eval="eval_tfrecord"),
    # Dropout: one batch over and over at a negligible learning rate.
    "dnn_classifier_dropout": dict(
        estimator={"type": "dnn_classifier", "hidden_units": [32, 16], "dropout": 0.3,
                   "optimizer": {"type": "sgd", "learning_rate": 1e-9}},
        columns=DNN_COLUMNS, label="survived",
        dnn=["age", "fare", "sibsp", "sex_indicator", "embarked_embedding"],
        train="one_batch", steps=200),
}

# Estuary-side changes that must make the comparison fail: one default
# hyper-parameter 10% off. name -> (case, estimator keys replaced).
CHANGED_DEFAULTS = {
    "adagrad_learning_rate": (
        "dnn_classifier", {"optimizer": {"type": "adagrad", "learning_rate": 0.0011}}),
    "adagrad_initial_accumulator": (
        "dnn_classifier", {"optimizer": {"type": "adagrad", "initial_accumulator_value": 0.11}}),
    # TF's default rate is 0.2.
    "ftrl_learning_rate": (
        "linear_classifier", {"optimizer": {"type": "ftrl", "learning_rate": 0.22}}),
    # Not a default: the dropout distribution comparison's teeth
    # (test_dropout_rate_off_fails).
    "dropout_rate": ("dnn_classifier_dropout", {"dropout": 0.45}),
}


# ----------------------------------------------------------------- data


def write_csvs(out_dir):
    """testdata/titanic.csv -> train.csv, eval.csv, one_batch.csv (COLUMNS)."""
    with open(TITANIC, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 891, len(rows)
    clean = []
    for i, r in enumerate(rows):
        pclass = int(r["Pclass"])
        clean.append([
            int(r["Survived"]), pclass, r["Sex"], float(r["Age"]) if r["Age"] else 28.0,
            int(r["SibSp"]), int(r["Parch"]), float(r["Fare"]), r["Embarked"] or "S",
            0.5 + 0.25 * (i % 4), pclass - 1, PCLASS_NAMES[pclass - 1],
        ] + [((i * (k + 3)) % 7 - 3) / 3.0 for k in range(N_EXTRA)])
    paths = {}
    for split, part in (("train", clean[:N_TRAIN]), ("eval", clean[N_TRAIN:]),
                        ("one_batch", clean[:BATCH])):
        paths[split] = os.path.join(out_dir, f"{split}.csv")
        with open(paths[split], "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(COLUMNS)
            w.writerows(part)
    # The same rows as tf.train.Examples, with a multivalent "tags" feature
    # whose ids repeat within an example.
    for split, part in (("train", clean[:N_TRAIN]), ("eval", clean[N_TRAIN:])):
        paths[split + "_tfrecord"] = os.path.join(out_dir, f"{split}.tfrecord")
        with tf.io.TFRecordWriter(paths[split + "_tfrecord"]) as w:
            for i, row in enumerate(part):
                w.write(to_example(dict(zip(COLUMNS, row)), i).SerializeToString())
    return paths


def tags(row, i):
    """3 to 5 tags, one repeated (twice or three times)."""
    out = [row["sex"], row["embarked"], row["sex"] if i % 2 else row["embarked"]]
    if row["fare"] > 50:
        out.append("vip")
    if i % 5 == 0:
        out.append(out[0])
    return out


def to_example(row, i):
    f = {}
    for k, v in row.items():
        if isinstance(v, str):
            f[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
        elif isinstance(v, int):
            f[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        else:
            f[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
    f["tags"] = tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t.encode() for t in tags(row, i)]))
    return tf.train.Example(features=tf.train.Features(feature=f))


def example_dtype(default):
    return "string" if isinstance(default, str) else (
        "int64" if isinstance(default, int) else "float32")


def scalars(directory, tag):
    """[(step, value)] of scalar `tag` in the event files of `directory`."""
    acc = event_accumulator.EventAccumulator(directory,
                                             size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def eval_metrics(model_dir):
    acc = event_accumulator.EventAccumulator(os.path.join(model_dir, "eval"),
                                             size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {t: acc.Scalars(t)[-1].value for t in acc.Tags()["scalars"]}


# ------------------------------------------------------------------- TF


def tf_columns(case):
    sys.path.insert(0, HERE)
    import estimator_compat_test as base  # noqa: E402  (the job -> tf.feature_column map)
    return base.tf_feature_columns(case["columns"])


def tf_optimizer(spec):
    if isinstance(spec, str):
        return spec  # the estimator picks the learning rate
    cls = {"adagrad": "Adagrad", "adam": "Adam", "ftrl": "Ftrl", "sgd": "SGD"}[spec["type"]]
    return getattr(tf.keras.optimizers.legacy, cls)(learning_rate=spec["learning_rate"])


def tf_estimator(case, model_dir):
    est = case["estimator"]
    cols = tf_columns(case)
    config = tf.estimator.RunConfig(model_dir=model_dir, tf_random_seed=SEED,
                                    save_summary_steps=1, log_step_count_steps=1000)
    kind = est["type"]
    head = {}
    if kind.endswith("classifier"):
        head["n_classes"] = est.get("n_classes", 2)
        head["label_vocabulary"] = est.get("label_vocabulary")
    head["weight_column"] = est.get("weight_column")
    if est.get("loss_reduction") == "sum":
        head["loss_reduction"] = tf.losses.Reduction.SUM
    if "optimizer" in est:
        head["optimizer"] = tf_optimizer(est["optimizer"])
    linear = [cols[k] for k in case.get("linear", [])]
    dnn = [cols[k] for k in case.get("dnn", [])]
    dnn_kw = dict(dropout=est.get("dropout"), batch_norm=est.get("batch_norm", False))
    E = tf.estimator
    if kind == "linear_classifier":
        return E.LinearClassifier(linear, config=config, **head)
    if kind == "linear_regressor":
        return E.LinearRegressor(linear, config=config, **head)
    if kind == "dnn_classifier":
        return E.DNNClassifier(est["hidden_units"], dnn, config=config, **head, **dnn_kw)
    if kind == "dnn_regressor":
        return E.DNNRegressor(est["hidden_units"], dnn, config=config, **head, **dnn_kw)
    if kind.startswith("dnn_linear_combined_"):
        cls = (E.DNNLinearCombinedClassifier if kind.endswith("classifier")
               else E.DNNLinearCombinedRegressor)
        return cls(linear_feature_columns=linear, dnn_feature_columns=dnn,
                   dnn_hidden_units=est["hidden_units"], dnn_dropout=est.get("dropout"),
                   batch_norm=est.get("batch_norm", False), config=config, **head)
    if kind == "baseline_classifier":
        return E.BaselineClassifier(config=config, **head)
    if kind == "baseline_regressor":
        return E.BaselineRegressor(config=config, **head)
    raise ValueError(kind)


def tf_input_fn(path, label, batch, train, keep=None):
    tfrecord = path.endswith(".tfrecord")
    spec = {k: tf.io.FixedLenFeature([], tf.as_dtype(example_dtype(d)))
            for k, d in zip(COLUMNS, DEFAULTS)}
    spec["tags"] = tf.io.VarLenFeature(tf.string)

    def input_fn():
        ds = tf.data.TFRecordDataset(path) if tfrecord else tf.data.TextLineDataset(path).skip(1)
        if train:
            ds = ds.repeat()
        ds = ds.batch(batch)

        def parse(lines):
            if tfrecord:
                features = tf.io.parse_example(lines, spec)
            else:
                features = dict(zip(COLUMNS, tf.io.decode_csv(lines, record_defaults=DEFAULTS)))
            labels = features.pop(label)
            if keep:
                features = {k: v for k, v in features.items() if k in keep}
            return features, labels
        return ds.map(parse)
    return input_fn


def plain(value):
    """A TF prediction value -> JSON-like Python (bytes decoded)."""
    value = np.asarray(value)
    if value.dtype.kind in "SO":
        out = [v.decode() if isinstance(v, bytes) else v for v in value.reshape(-1).tolist()]
        return out if value.ndim else out[0]
    return value.tolist()


def run_tf(name, case, work, paths):
    model_dir = os.path.join(work, f"tf_{name}")
    est = tf_estimator(case, model_dir)
    train = paths[case.get("train", "train")]
    steps = case.get("steps", STEPS)
    keep = case.get("tf_features")
    est.train(tf_input_fn(train, case["label"], BATCH, True, keep), max_steps=steps)
    eval_input = tf_input_fn(paths[case.get("eval", "eval")], case["label"], EVAL_BATCH, False,
                             keep)
    est.evaluate(eval_input, steps=None)
    predictions = [{k: plain(v) for k, v in p.items()} for p in est.predict(eval_input)]
    return {"model_dir": model_dir, "predictions": predictions,
            "init": os.path.join(model_dir, "model.ckpt-0")}


# -------------------------------------------------------------- Estuary


def write_initial_checkpoint(tf_prefix, out_dir):
    """TF's model.ckpt-0 -> an Estuary checkpoint (its float variables)."""
    reader = tf.train.load_checkpoint(tf_prefix)
    floats = {}
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if dtype == tf.float32:
            v = reader.get_tensor(name)
            floats[name] = {"shape": list(v.shape), "values": v.reshape(-1).tolist()}
    compat_tool({"op": "write_checkpoint", "model_dir": out_dir, "step": 0, "floats": floats})


def estuary_job(case, model_dir, paths, init_dir, changes):
    est = dict(case["estimator"])
    if init_dir:
        est["warm_start_from"] = init_dir
    if "linear" in case:
        est["linear_feature_columns"] = case["linear"]
    if "dnn" in case:
        est["dnn_feature_columns"] = case["dnn"]
    est.update(changes)
    if case.get("train", "train").endswith("tfrecord"):
        features = {k: {"dtype": example_dtype(d)} for k, d in zip(COLUMNS, DEFAULTS)}
        features["tags"] = {"dtype": "string", "var_len": True}
        common = {"format": "tfrecord", "features": features, "label_key": case["label"]}
    else:
        common = {"format": "csv", "header": True, "column_defaults": DEFAULTS,
                  "label_key": case["label"]}
    return {
        "model_dir": model_dir,
        "estimator": est,
        "feature_columns": case["columns"],
        "train_input": dict(common, files=[paths[case.get("train", "train")]],
                            batch_size=BATCH, num_epochs=-1),
        "eval_input": dict(common, files=[paths[case.get("eval", "eval")]],
                           batch_size=EVAL_BATCH),
        "run_config": {"tf_random_seed": SEED, "save_summary_steps": 1,
                       "log_step_count_steps": 1000},
        "eval_spec": {"steps": None},
    }


def run_estuary(tag, case, work, paths, init_prefix, changes=None):
    model_dir = os.path.join(work, f"estuary_{tag}")
    init_dir = os.path.join(work, f"init_{tag}")
    write_initial_checkpoint(init_prefix, init_dir)
    job_path = model_dir + ".json"
    with open(job_path, "w") as f:
        json.dump(estuary_job(case, model_dir, paths, init_dir, changes or {}), f, indent=1)
    steps = case.get("steps", STEPS)
    out = model_dir + ".predictions.jsonl"
    for args in (["train", job_path, "--max_steps", str(steps)],
                 ["predict", job_path, "--out", out]):
        p = subprocess.run([ESTUARY] + args, capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError(f"estuary {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
    with open(out) as f:
        predictions = [json.loads(line) for line in f]
    return {"model_dir": model_dir, "predictions": predictions}


def run_estuary_init(tag, case, work, paths):
    """Estuary's own initial variables: one step at SGD 1e-9, no warm start."""
    model_dir = os.path.join(work, f"estuary_init_{tag}")
    sgd = {"type": "sgd", "learning_rate": 1e-9}
    kind = case["estimator"]["type"]
    changes = ({"linear_optimizer": sgd, "dnn_optimizer": sgd}
               if kind.startswith("dnn_linear_combined_") else {"optimizer": sgd})
    job_path = model_dir + ".json"
    with open(job_path, "w") as f:
        json.dump(estuary_job(case, model_dir, paths, None, changes), f, indent=1)
    p = subprocess.run([ESTUARY, "train", job_path, "--max_steps", "1", "--evaluate=false"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"estuary train {job_path} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return compat_tool({"op": "read_checkpoint", "model_dir": model_dir})["floats"]


def compat_tool(request):
    p = subprocess.run([COMPAT_TOOL], input=json.dumps(request), capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"compat_tool {request['op']} failed: {p.stdout}{p.stderr}")
    return json.loads(p.stdout)


# ----------------------------------------------------------- comparing


def init_mismatches(tf_prefix, ours):
    """How Estuary's initial model variables differ from TF's model.ckpt-0:
    names and shapes exactly; constants (zeros, ones) to 1e-4 (moving
    statistics, which the one step moves, to 0.05); random ones
    drawn from TF's initializer (glorot_uniform kernels, truncated normal
    embeddings with stddev 1/sqrt(dimension)): within its bound, and with
    its standard deviation (within a factor 1.35) when there are >= 60."""
    reader = tf.train.load_checkpoint(tf_prefix)
    theirs = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
              if not n.startswith("training/") and n != "global_step"}
    bad = []
    if set(ours) != set(theirs):
        return [f"variables only in TF: {sorted(set(theirs) - set(ours))}, "
                f"only in Estuary: {sorted(set(ours) - set(theirs))}"]
    for name, t in sorted(theirs.items()):
        o = np.array(ours[name]["values"], dtype=np.float32)
        rows, cols = ours[name]["shape"]
        want = list(t.shape) if t.ndim == 2 else [1, max(1, t.size)]
        if [rows, cols] != want:
            bad.append(f"{name}: shape TF {list(t.shape)}, Estuary [{rows}, {cols}]")
            continue
        t = t.reshape(-1)
        if np.all(t == t[0]):
            # The 1e-9 step moves Estuary's by up to ~1e-6 (a summed
            # regression loss); batch norm's moving statistics by 0.001 x a
            # batch statistic.
            tol = 0.05 if "/moving_" in name else 1e-4
            if not np.all(np.abs(o - t[0]) <= tol):
                bad.append(f"{name}: TF all {t[0]}, Estuary from {o.min()} to {o.max()}")
            continue
        if name.endswith("/kernel"):
            bound = math.sqrt(6.0 / (rows + cols))  # glorot_uniform
            std = bound / math.sqrt(3.0)
        elif name.endswith("/embedding_weights"):
            std = 1.0 / math.sqrt(cols)  # truncated at 2 stddevs
            bound, std = 2 * std, 0.8796 * std
        else:
            bad.append(f"{name}: TF initialises it randomly; no rule here")
            continue
        if not (np.abs(o).max() <= bound * (1 + 1e-6) and o.std() > 0):
            bad.append(f"{name}: Estuary's values reach {np.abs(o).max():.4f}, bound {bound:.4f}")
        if o.size >= 60 and not abs(math.log(o.std() / std)) < math.log(1.35):
            bad.append(f"{name}: Estuary's std {o.std():.4f}, TF's initializer {std:.4f}")
    return bad


def loss_mismatches(tf_dir, our_dir, steps):
    """Steps whose training loss differs beyond LOSS_RTOL (or is missing)."""
    theirs, ours = dict(scalars(tf_dir, "loss")), dict(scalars(our_dir, "loss"))
    bad = []
    for s in range(1, steps + 1):
        a, b = theirs.get(s), ours.get(s)
        if a is None or b is None or not abs(b - a) <= LOSS_RTOL * abs(a):
            bad.append((s, a, b))
    return bad


def close(a, b):
    return abs(a - b) <= VALUE_ATOL + VALUE_RTOL * abs(a)


def value_mismatches(theirs, ours, where):
    """Differences between two JSON-like values (floats within tolerance)."""
    if isinstance(theirs, list) or isinstance(ours, list):
        if not (isinstance(theirs, list) and isinstance(ours, list)) or len(theirs) != len(ours):
            return [f"{where}: TF {theirs!r}, Estuary {ours!r}"]
        out = []
        for i, (a, b) in enumerate(zip(theirs, ours)):
            out += value_mismatches(a, b, f"{where}[{i}]")
        return out
    if isinstance(theirs, float) or isinstance(ours, float):
        ok = isinstance(ours, (int, float)) and close(float(theirs), float(ours))
    else:
        ok = theirs == ours
    return [] if ok else [f"{where}: TF {theirs!r}, Estuary {ours!r}"]


def dropout_mismatches(tag):
    """How the loss samples of Estuary's run `tag` and TF's dropout run
    differ: means beyond 4.5 standard errors, spreads beyond a factor 1.3
    (~3.7 standard errors of log(std) for 200 draws each; measured when
    equal: 0.2 standard errors, a factor 1.002)."""
    name = "dnn_classifier_dropout"
    a = np.array([v for _, v in scalars(RESULTS[("tf", name)]["model_dir"], "loss")])
    b = np.array([v for _, v in scalars(RESULTS[("estuary", tag)]["model_dir"], "loss")])
    n = CASES[name]["steps"]
    if (len(a), len(b)) != (n, n):
        return [f"{len(a)} and {len(b)} steps, not {n}"]
    bad = []
    if not (a.std() > 0.01 * a.mean() and b.std() > 0.01 * b.mean()):
        bad.append(f"no spread (is dropout on?): std TF {a.std():.4g}, Estuary {b.std():.4g}")
    z = abs(a.mean() - b.mean()) / math.sqrt(a.var() / n + b.var() / n)
    if not z < 4.5:
        bad.append(f"mean loss: TF {a.mean():.4f}, Estuary {b.mean():.4f} ({z:.1f} s.e.)")
    print(f"\ndropout loss, {tag}: mean TF {a.mean():.4f}, Estuary {b.mean():.4f} ({z:.1f} s.e.);"
          f" std TF {a.std():.4f}, Estuary {b.std():.4f}", file=sys.stderr)
    if not abs(math.log(b.std() / a.std())) < math.log(1.3):
        bad.append(f"loss std: TF {a.std():.4f}, Estuary {b.std():.4f}")
    return bad


# ---------------------------------------------------------------- tests

RESULTS = {}  # ("tf" | "estuary", tag) -> result


def setUpModule():
    work = tempfile.mkdtemp(prefix="deterministic_compat_")
    paths = write_csvs(work)
    tf.get_logger().setLevel("ERROR")
    # Estuary's runs (subprocesses, one at a time) overlap TF's (this process).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        futures = {}
        for name, case in CASES.items():
            print(f"TF: {name}", file=sys.stderr)
            RESULTS[("tf", name)] = r = run_tf(name, case, work, paths)
            futures[name] = pool.submit(run_estuary, name, case, work, paths, r["init"])
            futures["init/" + name] = pool.submit(run_estuary_init, name, case, work, paths)
            for changed, (base, changes) in CHANGED_DEFAULTS.items():
                if base == name:
                    futures[changed] = pool.submit(run_estuary, changed, case, work, paths,
                                                   r["init"], changes)
        for tag, f in futures.items():
            RESULTS[("estuary", tag)] = f.result()
    report = ["", f"{'run':44s} {'steps':>5s} {'max |rel| loss diff':>20s}"
              f"  (tolerance {LOSS_RTOL})"]
    for tag in list(CASES) + list(CHANGED_DEFAULTS):
        base = CHANGED_DEFAULTS[tag][0] if tag in CHANGED_DEFAULTS else tag
        if tag == "dropout_rate":
            continue
        theirs = dict(scalars(RESULTS[("tf", base)]["model_dir"], "loss"))
        ours = dict(scalars(RESULTS[("estuary", tag)]["model_dir"], "loss"))
        diff = max((abs(ours[s] - v) / abs(v) for s, v in theirs.items() if s in ours),
                   default=float("nan"))
        report.append(f"{tag:44s} {len(theirs):5d} {diff:20.2e}")
    print("\n".join(report), file=sys.stderr)


class DeterministicCompatTest(unittest.TestCase):
    def check_losses(self, name):
        bad = loss_mismatches(RESULTS[("tf", name)]["model_dir"],
                              RESULTS[("estuary", name)]["model_dir"],
                              CASES[name].get("steps", STEPS))
        self.assertEqual(bad, [], "(step, TF loss, Estuary loss) beyond the tolerance")

    def check_eval_metrics(self, name):
        theirs = eval_metrics(RESULTS[("tf", name)]["model_dir"])
        ours = eval_metrics(RESULTS[("estuary", name)]["model_dir"])
        self.assertEqual(set(ours), set(theirs))
        bad = [f"{k}: TF {theirs[k]}, Estuary {ours[k]}" for k in theirs
               if not close(theirs[k], ours[k])]
        self.assertEqual(bad, [])

    def check_initial_variables(self, name):
        bad = init_mismatches(RESULTS[("tf", name)]["init"], RESULTS[("estuary", "init/" + name)])
        self.assertEqual(bad, [])

    def check_predictions(self, name):
        theirs = RESULTS[("tf", name)]["predictions"]
        ours = RESULTS[("estuary", name)]["predictions"]
        self.assertEqual(len(ours), len(theirs))
        bad = []
        for i, (a, b) in enumerate(zip(theirs, ours)):
            self.assertEqual(set(b), set(a), f"example {i}")
            for k in a:
                bad += value_mismatches(a[k], b[k], f"example {i} {k}")
        self.assertEqual(bad[:10], [], f"{len(bad)} predicted values differ")

    def test_dropout_loss_distribution(self):
        """Dropout masks differ; the distribution of the loss must not."""
        self.assertEqual(dropout_mismatches("dnn_classifier_dropout"), [])

    def test_dropout_rate_off_fails(self):
        """The distribution comparison has teeth: Estuary at dropout 0.45."""
        bad = dropout_mismatches("dropout_rate")
        self.assertNotEqual(bad, [], "dropout 0.45 instead of 0.3 went unnoticed")
        print(f"\ndropout 0.45 instead of 0.3: {bad}", file=sys.stderr)

    def test_dropout_predictions_are_deterministic(self):
        """Inference never drops: predictions agree value by value."""
        self.check_predictions("dnn_classifier_dropout")


CHECKS = ("losses", "eval_metrics", "predictions", "initial_variables")


def add_tests():
    for name in CASES:
        # With dropout: test_dropout_* instead of losses and predictions.
        checks = ("eval_metrics", "initial_variables") if "dropout" in name else CHECKS
        for check in checks:
            def test(self, name=name, check=check):
                getattr(self, "check_" + check)(name)
            setattr(DeterministicCompatTest, f"test_{name}_{check}", test)
    for changed, (base, changes) in CHANGED_DEFAULTS.items():
        if changed == "dropout_rate":
            continue  # test_dropout_rate_off_fails
        def test(self, changed=changed, base=base):
            bad = loss_mismatches(RESULTS[("tf", base)]["model_dir"],
                                  RESULTS[("estuary", changed)]["model_dir"], STEPS)
            self.assertNotEqual(bad, [], f"{changed} 10% off went unnoticed")
            print(f"\n{changed} 10% off: {len(bad)} of {STEPS} steps differ, first "
                  f"(step, TF, Estuary) = {bad[0]}", file=sys.stderr)
        setattr(DeterministicCompatTest, f"test_changed_default_{changed}_fails", test)


add_tests()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--compat_tool", required=True)
    ap.add_argument("--cases", help="comma-separated subset of CASES (for debugging)")
    args, rest = ap.parse_known_args()
    if args.cases:
        keep = set(args.cases.split(","))
        CASES = {k: v for k, v in CASES.items() if k in keep}
        CHANGED_DEFAULTS = {k: v for k, v in CHANGED_DEFAULTS.items() if v[0] in keep}
        for attr in list(vars(DeterministicCompatTest)):
            dropout = attr.startswith("test_dropout") and "dnn_classifier_dropout" in keep
            if attr.startswith("test_") and not dropout and not any(
                    attr.startswith(f"test_{k}_") and attr[len(k) + 6:] in CHECKS for k in keep):
                delattr(DeterministicCompatTest, attr)
    ESTUARY = os.path.abspath(args.tool)
    COMPAT_TOOL = os.path.abspath(args.compat_tool)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
