"""`estuary export --format onnx` checked by the ONNX tools themselves.

For each configuration (a job on the Titanic passenger list), Estuary trains
a few steps, exports with --format onnx, and onnx_tool prints the graph's
inputs for the first eval batch (OnnxFeeds, the reference of
transform.json) and Estimator::Predict's numbers for the same rows. Then:
- onnx.checker.check_model (full_check: shape inference too) accepts
  model.onnx; IR version 8, opset 17;
- ONNX Runtime's logits, probabilities / logistic / predictions equal
  Estuary's to 1e-5, class_ids exactly.

Usage: onnx_export_test.py --tool ONNX_TOOL --estuary ESTUARY --titanic CSV
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
import onnxruntime as ort

ARGS = None

DEFAULTS = [0, 0, 0, "", "", 0.0, 0, 0, "", 0.0, "", ""]  # titanic.csv's 12 columns
AGE_NORM = {"mean": 29.5, "stddev": 13.0}

COLUMNS = [
    {"type": "numeric", "key": "Age", "normalizer": AGE_NORM},
    {"type": "numeric", "key": "Fare", "normalizer": {"mean": 32.0, "stddev": 50.0}},
    {"type": "numeric", "key": "SibSp"},
    {"type": "bucketized", "source_column": "Age", "boundaries": [5, 12, 18, 25, 35, 45, 60]},
    {"type": "categorical_with_vocabulary_file", "key": "Sex", "vocabulary_file": "sex.txt"},
    {"type": "categorical_with_vocabulary_list", "key": "Embarked",
     "vocabulary_list": ["C", "Q", "S"]},
    {"type": "categorical_with_hash_bucket", "key": "Cabin", "hash_bucket_size": 20},
    {"type": "crossed", "keys": ["Sex", "Age_bucketized"], "hash_bucket_size": 32},
    {"type": "indicator", "categorical_column": "Sex"},
    {"type": "embedding", "categorical_column": "Embarked", "dimension": 3},
    {"type": "embedding", "categorical_column": "Cabin", "dimension": 2, "combiner": "sqrtn"},
]

CONFIGS = {
    "linear_classifier": ({"type": "linear_classifier"}, "Survived"),
    "dnn_classifier_4_classes": (
        {"type": "dnn_classifier", "hidden_units": [8, 4], "n_classes": 4,
         "activation_fn": "tanh", "batch_norm": True,
         "dnn_feature_columns": ["Age", "Fare", "Sex_indicator", "Embarked_embedding",
                                 "Cabin_embedding", "Age_bucketized"],
         "optimizer": {"type": "adam", "learning_rate": 0.01}},
        "Pclass"),
    "dnn_linear_combined_classifier": (
        {"type": "dnn_linear_combined_classifier", "hidden_units": [8],
         "linear_feature_columns": ["Sex", "Age_bucketized", "Age_bucketized_X_Sex", "Fare",
                                    "Cabin"],
         "dnn_feature_columns": ["Age", "SibSp", "Sex_indicator", "Embarked_embedding"],
         "dnn_optimizer": {"type": "adagrad", "learning_rate": 0.1}},
        "Survived"),
    "linear_regressor": (
        {"type": "linear_regressor", "optimizer": {"type": "sgd", "learning_rate": 0.01}},
        "Parch"),
}


def run(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout


class OnnxExportTest(unittest.TestCase):
    def check(self, name):
        est, label = CONFIGS[name]
        work = tempfile.mkdtemp(prefix=name, dir=os.environ.get("TEST_TMPDIR"))
        with open(os.path.join(work, "sex.txt"), "w") as f:
            f.write("male\nfemale\n")
        csv = {"format": "csv", "files": [os.path.abspath(ARGS.titanic)], "header": True,
               "column_defaults": DEFAULTS, "label_key": label}
        job = {
            "model_dir": os.path.join(work, "model"),
            "estimator": est,
            "feature_columns": COLUMNS,
            "train_input": dict(csv, batch_size=32, num_epochs=-1, shuffle_buffer_size=100),
            "eval_input": dict(csv, batch_size=40),
            "run_config": {"tf_random_seed": 3},
        }
        job_path = os.path.join(work, "job.json")
        with open(job_path, "w") as f:
            json.dump(job, f)
        run([ARGS.estuary, "train", job_path, "--steps", "40", "--evaluate=false"])
        out = run([ARGS.estuary, "export", job_path, "--format", "onnx"])
        export_dir = out.strip().splitlines()[-1]
        self.assertEqual(os.path.basename(os.path.dirname(export_dir)), "export")
        model_path = os.path.join(export_dir, "model.onnx")
        transform = json.load(open(os.path.join(export_dir, "transform.json")))

        model = onnx.load(model_path)
        onnx.checker.check_model(model, full_check=True)
        self.assertEqual(model.ir_version, 8)
        self.assertEqual([(o.domain, o.version) for o in model.opset_import], [("", 17)])

        ref = json.loads(run([ARGS.tool, job_path]))
        feeds = {}
        for k, t in ref["feeds"].items():
            dtype = np.float32 if t["dtype"] == "float32" else np.int64
            feeds[k] = np.array(t["values"], dtype=dtype).reshape(t["shape"])
        self.assertEqual(sorted(feeds), sorted(transform["inputs"]))
        self.assertEqual(sorted(i.name for i in model.graph.input), sorted(feeds))
        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        self.assertEqual(sorted(names), sorted(transform["outputs"]))
        got = dict(zip(names, session.run(names, feeds)))
        for key in names:
            want = np.array(ref["estuary"][key])
            with self.subTest(key=key):
                self.assertEqual(got[key].shape, want.shape)
                if key == "class_ids":
                    np.testing.assert_array_equal(got[key], want)
                else:
                    np.testing.assert_allclose(got[key], want, rtol=1e-5, atol=1e-5)
        # A trained model, not zeros: the logits differ between examples.
        self.assertGreater(float(np.std(got["logits"])), 1e-4)

    def test_linear_classifier(self):
        self.check("linear_classifier")

    def test_dnn_classifier_4_classes(self):
        self.check("dnn_classifier_4_classes")

    def test_dnn_linear_combined_classifier(self):
        self.check("dnn_linear_combined_classifier")

    def test_linear_regressor(self):
        self.check("linear_regressor")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    parser.add_argument("--estuary", required=True)
    parser.add_argument("--titanic", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
