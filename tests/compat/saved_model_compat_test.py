"""`estuary export --format saved_model` against TensorFlow 2.15.

For the Titanic configurations of estimator_compat_test (LinearClassifier,
DNNClassifier, DNNLinearCombinedClassifier, LinearRegressor) and one more
that uses every other supported column (vocabulary file with an OOV
bucket, hash bucket, identity, crossed with a raw key, embeddings with the
sum and sqrtn combiners, 3 classes), Estuary trains, exports a SavedModel
with the parsing and with the raw receiver, and predicts the eval set twice:
from the CSV, and from the same rows as serialized tf.train.Examples (a
TFRecord eval input parsed as the receiver parses them). Then:
- tf.saved_model.load(...).signatures["predict"](examples=the serialized
  Examples) returns the head's keys with `estuary predict`'s values on the
  Examples (1e-5);
- the raw receiver's signatures["predict"](feature tensors of the CSV rows)
  returns `estuary predict`'s values on the CSV (1e-5). (The two differ
  only where TF's differ: a crossed column crosses a raw key given sparse,
  as parsed from an Example, in key order, and one given dense after its
  categorical columns);
- the TF1 loader TF Serving runs (tf.compat.v1.saved_model.loader.load:
  variables restored through the SaverDef, the main op with the assets)
  and a session fetching each signature's output tensors by name, as TF
  Serving's Predict / Classify / Regress do, gives the same numbers, with
  classification scores = probabilities and regression outputs = logistic
  (binary) or predictions; a tensorflow-serving-api PredictRequest
  (signature "predict", input "examples") served that way gives a
  PredictResponse with every prediction key;
- `saved_model_cli show --all` lists the same signatures (keys, method
  names, input and output keys, dtypes, shapes and graph tensor names) as
  TF's own
  export_saved_model of the same estimator and columns (TF trained for a
  few steps) for the three classifiers.
A job with an unsupported column (weighted categorical) fails with an error
naming it.

Runs under the TF venv; drives the `estuary` binary.
Usage: saved_model_compat_test.py --tool PATH_TO_ESTUARY [unittest args]
"""
import argparse
import copy
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import estimator_compat_test as ect  # noqa: E402

ESTUARY = None
STEPS = 100
TOL = 1e-5
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")

# Every other supported column kind, in one DNN-linear combined model.
WIDE = (
    {"type": "dnn_linear_combined_classifier", "n_classes": 3, "hidden_units": [8],
     "dnn_optimizer": {"type": "adagrad", "learning_rate": 0.1},
     "linear_feature_columns": ["age_bucketized", "sex", "embarked", "parch",
                                "age_bucketized_X_embarked"],
     "dnn_feature_columns": ["age", "sex_indicator", "embarked_embedding",
                             "parch_embedding"]},
    [
        {"type": "numeric", "key": "age", "normalizer": ect.AGE_NORM},
        {"type": "bucketized", "source_column": "age", "boundaries": [12, 25, 40, 60]},
        {"type": "categorical_with_vocabulary_file", "key": "sex",
         "vocabulary_file": "VOCAB", "num_oov_buckets": 1},
        {"type": "categorical_with_hash_bucket", "key": "embarked", "hash_bucket_size": 8},
        {"type": "categorical_with_identity", "key": "parch", "num_buckets": 4,
         "default_value": 3},
        {"type": "crossed", "keys": ["age_bucketized", "embarked"], "hash_bucket_size": 16},
        {"type": "indicator", "categorical_column": "sex"},
        {"type": "embedding", "categorical_column": "embarked", "dimension": 3,
         "combiner": "sqrtn"},
        {"type": "embedding", "categorical_column": "parch", "dimension": 2, "combiner": "sum"},
    ],
)
CONFIGS = dict(ect.CONFIGS, wide_combined_classifier=WIDE)
# The acceptance set: TF exports these too and the signatures are compared.
TF_COMPARED = ("linear_classifier", "dnn_classifier", "dnn_linear_combined_classifier")


def run(args):
    p = subprocess.run([ESTUARY] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"estuary {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


def feature_types(columns):
    """Raw feature key -> 'float' | 'int64' | 'string', as the export parses it."""
    types = {}
    for c in columns:
        t = c["type"]
        if t == "numeric":
            types[c["key"]] = "float"
        elif t in ("categorical_with_vocabulary_list", "categorical_with_vocabulary_file",
                   "categorical_with_hash_bucket"):
            types[c["key"]] = "int64" if c.get("dtype") == "int64" else "string"
        elif t == "categorical_with_identity":
            types[c["key"]] = "int64"
    names = {c.get("name") or c.get("key") for c in columns}
    for c in columns:
        if c["type"] == "crossed":
            for k in c["keys"]:
                if k not in names and k not in types and not k.endswith("_bucketized"):
                    types[k] = "string"
    return types


def examples(eval_csv, types, label):
    """The eval rows as serialized tf.train.Examples (the export's parse spec,
    plus the label)."""
    types = dict(types)
    types.setdefault(label, "float" if label == "age" else "int64")
    out = []
    with open(eval_csv, newline="") as f:
        for r in csv.DictReader(f):
            feats = {}
            for k, t in types.items():
                if t == "float":
                    feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(r[k])]))
                elif t == "int64":
                    feats[k] = tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(float(r[k]))]))
                else:
                    feats[k] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[r[k].encode()]))
            out.append(tf.train.Example(
                features=tf.train.Features(feature=feats)).SerializeToString())
    return out


def example_input(path, types, label):
    """An eval_input reading the Examples as the export's receiver parses
    them (numeric: FixedLen [1]; categorical: VarLen)."""
    features = {}
    for k, t in types.items():
        if t == "float":
            features[k] = {"dtype": "float32", "shape": [1]}
        else:
            features[k] = {"dtype": t, "var_len": True}
    features[label] = {"dtype": "float32" if label == "age" else "int64"}
    return {"format": "tfrecord", "files": [path], "features": features, "label_key": label,
            "batch_size": ect.EVAL_BATCH}


def signatures_text(export_dir):
    """saved_model_cli show --all without its list of the graph's ops (the
    signatures with their tensor names, dtypes and shapes)."""
    p = subprocess.run([SAVED_MODEL_CLI, "show", "--all", "--dir", export_dir],
                       capture_output=True, text=True, check=True)
    lines = [ln for ln in p.stdout.splitlines() if "contains the following ops" not in ln]
    return "\n".join(lines)


def tf_export(name, work, paths):
    """TF 2.15's export_saved_model of the same estimator (a few steps)."""
    est = ect.tf_estimator(name, 1, os.path.join(work, f"tf_{name}"))
    est.train(ect.tf_input_fn(paths["train"], ect.label_key(name), ect.BATCH, True, 1),
              max_steps=5)
    cols = ect.tf_feature_columns(CONFIGS[name][1])
    # Crossed raw keys parse like the columns of the same key (Estuary's
    # ServingFeatureSpecs), else as strings.
    spec = tf.feature_column.make_parse_example_spec(
        [c for c in cols.values() if c.__class__.__name__ != "CrossedColumn"])
    for c in cols.values():
        if c.__class__.__name__ == "CrossedColumn":
            for k in c.keys:
                if isinstance(k, str) and k not in spec:
                    spec[k] = tf.io.VarLenFeature(tf.string)
    fn = tf.estimator.export.build_parsing_serving_input_receiver_fn(spec)
    return est.export_saved_model(os.path.join(work, f"tf_{name}_export"), fn).decode()


RESULTS = {}


class SavedModelCompatTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="saved_model_compat_")
        cls.paths = ect.write_clean_csvs(cls.work)
        vocab = os.path.join(cls.work, "sex_vocab.txt")
        with open(vocab, "w") as f:
            f.write("male\nfemale\n")
        cls.vocab = vocab

    def estuary_export(self, name):
        if name in RESULTS:
            return RESULTS[name]
        est, columns = CONFIGS[name]
        columns = copy.deepcopy(columns)
        for c in columns:
            if c.get("vocabulary_file") == "VOCAB":
                c["vocabulary_file"] = self.vocab
        model_dir = os.path.join(self.work, f"estuary_{name}")
        job = ect.estuary_job(name, 1, model_dir, self.paths) if name in ect.CONFIGS else None
        if job is None:
            job = ect.estuary_job("dnn_linear_combined_classifier", 1, model_dir, self.paths)
        job["estimator"] = {k: v for k, v in est.items() if k != "label_key"}
        job["feature_columns"] = columns
        job["train_spec"] = {"max_steps": STEPS}
        job_path = model_dir + ".json"
        with open(job_path, "w") as f:
            json.dump(job, f, indent=1)
        run(["train", job_path, "--max_steps", str(STEPS)])
        # Estuary's predictions on the same serialized Examples (parsed as the
        # receiver parses them: categorical features sparse; from the CSV they
        # are dense, and a crossed column then orders its raw keys after its
        # columns, as TF's sparse_cross does).
        label = ect.label_key(name) if name in ect.CONFIGS else "survived"
        types = feature_types(columns)
        serialized = examples(self.paths["eval"], types, label)
        records = model_dir + ".eval.tfrecord"
        with tf.io.TFRecordWriter(records) as w:
            for e in serialized:
                w.write(e)
        predict_job = dict(job, eval_input=example_input(records, types, label))
        with open(model_dir + ".predict.json", "w") as f:
            json.dump(predict_job, f, indent=1)
        run(["predict", model_dir + ".predict.json", "--out", model_dir + ".predictions.jsonl"])
        with open(model_dir + ".predictions.jsonl") as f:
            predictions = [json.loads(line) for line in f]
        p = run(["export", job_path, "--format", "saved_model",
                 "--export_dir_base", model_dir + "_export"])
        export_dir = p.stdout.strip().splitlines()[-1]
        # The raw receiver, against `estuary predict` on the CSV (dense
        # features, as the raw receiver's placeholders give them).
        run(["predict", job_path, "--out", model_dir + ".csv_predictions.jsonl"])
        with open(model_dir + ".csv_predictions.jsonl") as f:
            csv_predictions = [json.loads(line) for line in f]
        p = run(["export", job_path, "--format", "saved_model", "--receiver", "raw",
                 "--export_dir_base", model_dir + "_raw_export"])
        RESULTS[name] = {"export": export_dir, "predictions": predictions, "job": job_path,
                         "examples": serialized, "csv_predictions": csv_predictions,
                         "raw_export": p.stdout.strip().splitlines()[-1]}
        return RESULTS[name]

    def expected(self, r, key):
        return np.array([p[key] for p in r["predictions"]])

    def compare(self, name, key, got, want):
        got, want = np.asarray(got), np.asarray(want)
        if got.dtype.kind in "SO":
            got = got.astype(str)
            self.assertEqual(got.reshape(want.shape).tolist(), want.astype(str).tolist(),
                             f"{name}: {key}")
        else:
            np.testing.assert_allclose(got.reshape(want.shape), want.astype(got.dtype),
                                       rtol=TOL, atol=TOL, err_msg=f"{name}: {key}")

    def check_predict_signature(self, name):
        r = self.estuary_export(name)
        loaded = tf.saved_model.load(r["export"])
        self.assertTrue({"predict", "serving_default"} <= set(loaded.signatures))
        out = loaded.signatures["predict"](examples=tf.constant(r["examples"]))
        keys = set(r["predictions"][0])
        self.assertEqual(set(out), keys, name)
        for key in sorted(keys):
            self.compare(name, key, out[key].numpy(), self.expected(r, key))
        # The loaded variables are the export's bundle, restored.
        reader = tf.train.load_checkpoint(os.path.join(r["export"], "variables", "variables"))
        names = {v.name[:-2] for v in loaded.variables}
        self.assertEqual(names, set(reader.get_variable_to_shape_map()), name)
        for v in loaded.variables:
            np.testing.assert_array_equal(v.numpy(), reader.get_tensor(v.name[:-2]))

    def check_raw_receiver(self, name):
        r = self.estuary_export(name)
        fn = tf.saved_model.load(r["raw_export"]).signatures["predict"]
        specs = fn.structured_input_signature[1]
        with open(self.paths["eval"], newline="") as f:
            rows = list(csv.DictReader(f))
        convert = {tf.float32: float, tf.int64: lambda v: int(float(v)), tf.string: str.encode}
        inputs = {k: tf.constant([[convert[spec.dtype](row[k])] for row in rows], spec.dtype)
                  for k, spec in specs.items()}
        out = fn(**inputs)
        want = r["csv_predictions"]
        self.assertEqual(set(out), set(want[0]), name)
        for key in sorted(out):
            self.compare(f"{name}/raw", key, out[key].numpy(),
                         np.array([p[key] for p in want]))

    def check_serving_session(self, name):
        """What TF Serving's Predict/Classify/Regress run: the TF1 loader and
        a session fetching each signature's tensors by name."""
        r = self.estuary_export(name)
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], r["export"])
            for key, sig in meta.signature_def.items():
                (inp,) = sig.inputs.values()
                fetch = {k: v.name for k, v in sig.outputs.items()}
                got = sess.run(fetch, {inp.name: r["examples"]})
                for out_key, value in got.items():
                    if sig.method_name.endswith("/classify"):
                        want_key = {"classes": "all_classes", "scores": "probabilities"}[out_key]
                    elif sig.method_name.endswith("/regress"):
                        want_key = ("logistic" if "logistic" in r["predictions"][0]
                                    else "predictions")
                    else:
                        want_key = out_key
                    self.compare(f"{name}/{key}", out_key, value, self.expected(r, want_key))
            # TF Serving's Predict as tensorflow-serving-api clients call it:
            # a PredictRequest (signature "predict", input "examples") whose
            # inputs are fed by the signature's tensor names and whose
            # response carries every output alias.
            from tensorflow_serving.apis import predict_pb2
            request = predict_pb2.PredictRequest()
            request.model_spec.name = name
            request.model_spec.signature_name = "predict"
            request.inputs["examples"].CopyFrom(tf.make_tensor_proto(r["examples"]))
            sig = meta.signature_def[request.model_spec.signature_name]
            feeds = {sig.inputs[k].name: tf.make_ndarray(v) for k, v in request.inputs.items()}
            fetched = sess.run({k: v.name for k, v in sig.outputs.items()}, feeds)
            response = predict_pb2.PredictResponse()
            for k, v in fetched.items():
                response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
            self.assertEqual(set(response.outputs), set(r["predictions"][0]))
            for k in response.outputs:
                self.compare(f"{name}/PredictResponse", k,
                             tf.make_ndarray(response.outputs[k]), self.expected(r, k))

    def check_signatures_like_tf(self, name):
        r = self.estuary_export(name)
        ours = signatures_text(r["export"])
        theirs = signatures_text(tf_export(name, self.work, self.paths))
        self.assertEqual(ours, theirs, name)


def add_tests():
    for name in CONFIGS:
        checks = ["predict_signature", "serving_session", "raw_receiver"]
        if name in TF_COMPARED:
            checks.append("signatures_like_tf")
        for check in checks:
            def test(self, name=name, check=check):
                getattr(self, "check_" + check)(name)
            setattr(SavedModelCompatTest, f"test_{name}_{check}", test)


add_tests()


class UnsupportedColumnTest(unittest.TestCase):

    def test_weighted_categorical_is_named(self):
        work = tempfile.mkdtemp(prefix="saved_model_bad_")
        paths = ect.write_clean_csvs(work)
        model_dir = os.path.join(work, "m")
        job = ect.estuary_job("linear_classifier", 1, model_dir, paths)
        job["feature_columns"] = [
            {"type": "categorical_with_vocabulary_list", "key": "sex",
             "vocabulary_list": ["male", "female"]},
            {"type": "weighted_categorical", "categorical_column": "sex",
             "weight_feature_key": "age"},
        ]
        job["estimator"] = {"type": "linear_classifier",
                            "linear_feature_columns": ["sex_weighted_by_age"]}
        job_path = model_dir + ".json"
        with open(job_path, "w") as f:
            json.dump(job, f)
        run(["train", job_path, "--max_steps", "2"])
        p = subprocess.run([ESTUARY, "export", job_path, "--format", "saved_model"],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("sex_weighted_by_age", p.stderr)
        self.assertIn("weighted categorical", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(model_dir, "export")) and any(
            not n.startswith(".") for n in os.listdir(os.path.join(model_dir, "export"))))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args, rest = ap.parse_known_args()
    ESTUARY = os.path.abspath(args.tool)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
