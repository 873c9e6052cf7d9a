"""TF checkpoints both ways between TF 2.15's tf.estimator and Estuary.

For LinearClassifier, DNNClassifier and DNNLinearCombinedClassifier on the
Titanic columns (estimator_compat_test's CONFIGS):

- TF -> Estuary: TF trains STEPS steps and evaluates its checkpoint. Estuary
  (a) warm-starts from TF's model_dir (estimator.warm_start_from; SGD at
  1e-9 for one step, so the warm-started weights are what is evaluated) and
  its first eval equals TF's (METRIC_TOL); (b) `estuary evaluate` on a copy
  of TF's model_dir gives TF's metrics, and `estuary train` continues from
  TF's checkpoint (model variables, TF's optimizer slots, global_step);
  (c) `estuary inspect` lists TF's variables with TF's shapes.
- Estuary -> TF: Estuary trains STEPS steps with run_config.checkpoint_format
  "tf"; TF 2.15's Estimator of the same class and columns, pointed at that
  model_dir, evaluates it and gets Estuary's eval metrics (METRIC_TOL) and
  predicts; tf.train.load_checkpoint lists exactly the variables (names,
  shapes, dtypes) of TF's own checkpoint of the same model; TF can train on
  from it.
- Bad input: a truncated and a bit-flipped TF checkpoint, another model's
  checkpoint, a bundle with an int32 tensor: `estuary` fails with one line
  naming the file and the tensor (or listing the variables), and writes
  nothing (the checkpoint's files and Estuary's model_dir are unchanged).

Runs under the TF venv; drives the `estuary` binary.
Usage: tf_checkpoint_compat_test.py --tool PATH_TO_ESTUARY [unittest args]
"""
import argparse
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import estimator_compat_test as ect  # noqa: E402

ESTUARY = None
NAMES = ("linear_classifier", "dnn_classifier", "dnn_linear_combined_classifier")
STEPS = 60
SEED = 42
METRIC_TOL = 1e-5  # absolute, plus the same relative
WORK = None
PATHS = None
TF_DIRS = {}  # name -> TF's model_dir after STEPS steps
TF_EVAL = {}  # name -> TF's evaluate() of that checkpoint


def estuary_job(name, model_dir, changes=None, run_config=None):
    job = ect.estuary_job(name, SEED, model_dir, PATHS)
    job["train_spec"] = {"max_steps": STEPS}
    job["run_config"].update(run_config or {})
    job["estimator"].update(changes or {})
    path = os.path.join(WORK, os.path.basename(model_dir) + ".json")
    with open(path, "w") as f:
        json.dump(job, f, indent=1)
    return path


def estuary(*args, ok=True):
    p = subprocess.run([ESTUARY] + list(args), capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError(f"estuary {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


def parse_metrics(stdout):
    """`estuary evaluate`'s last line: "accuracy = 0.8, auc = ..."."""
    line = stdout.strip().splitlines()[-1]
    return {k: float(v) for k, v in (kv.split(" = ") for kv in line.split(", "))}


def tf_eval_input():
    return ect.tf_input_fn(PATHS["eval"], "survived", ect.EVAL_BATCH, False, SEED)


def files_of(directory):
    """{relative path: bytes} of every file under `directory`."""
    out = {}
    for root, _, files in os.walk(directory):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, directory)] = fh.read()
    return out


def checkpoint_only_copy(src, dst):
    """The checkpoint files (and state file) of a model_dir, without events."""
    os.makedirs(dst)
    for f in os.listdir(src):
        if f == "checkpoint" or f.startswith("model.ckpt-"):
            shutil.copy(os.path.join(src, f), dst)
    return dst


def variables(model_dir):
    reader = tf.train.load_checkpoint(model_dir)
    dtypes = reader.get_variable_to_dtype_map()
    return {n: (list(s), dtypes[n].name) for n, s in reader.get_variable_to_shape_map().items()}


def setUpModule():
    global WORK, PATHS
    WORK = tempfile.mkdtemp(prefix="tf_checkpoint_compat_")
    PATHS = ect.write_clean_csvs(WORK)
    tf.get_logger().setLevel("ERROR")
    for name in NAMES:
        model_dir = os.path.join(WORK, f"tf_{name}")
        est = ect.tf_estimator(name, SEED, model_dir)
        est.train(ect.tf_input_fn(PATHS["train"], "survived", ect.BATCH, True, SEED),
                  max_steps=STEPS)
        TF_EVAL[name] = {k: float(v) for k, v in est.evaluate(tf_eval_input()).items()}
        TF_DIRS[name] = model_dir


class TfToEstuaryTest(unittest.TestCase):
    def assertMetricsEqual(self, ours, theirs, what):
        keys = set(theirs) - {"global_step"}
        self.assertEqual(set(ours) - {"global_step"}, keys, what)
        for k in sorted(keys):
            self.assertLessEqual(abs(ours[k] - theirs[k]), METRIC_TOL * (1 + abs(theirs[k])),
                                 f"{what}: {k}: TF {theirs[k]!r}, Estuary {ours[k]!r}")

    def check_warm_start(self, name):
        model_dir = os.path.join(WORK, f"warm_{name}")
        sgd = {"type": "sgd", "learning_rate": 1e-9}
        opt = ({"linear_optimizer": sgd, "dnn_optimizer": sgd} if "combined" in name
               else {"optimizer": sgd})
        job = estuary_job(name, model_dir, dict(opt, warm_start_from=TF_DIRS[name]))
        estuary("train", job, "--max_steps", "1", "--evaluate=false")
        ours = parse_metrics(estuary("evaluate", job).stdout)
        self.assertEqual(ours["global_step"], 1)
        self.assertMetricsEqual(ours, TF_EVAL[name], f"{name} warm-started")

    def check_evaluate_and_train_on(self, name):
        model_dir = checkpoint_only_copy(TF_DIRS[name], os.path.join(WORK, f"on_{name}"))
        job = estuary_job(name, model_dir)
        ours = parse_metrics(estuary("evaluate", job).stdout)
        self.assertEqual(ours["global_step"], STEPS)
        self.assertMetricsEqual(ours, TF_EVAL[name], f"{name} TF's model_dir")
        p = estuary("train", job, "--max_steps", str(STEPS + 5), "--evaluate=false")
        self.assertIn(f"model.ckpt-{STEPS} (global_step {STEPS})", p.stdout + p.stderr)
        self.assertTrue(os.path.exists(os.path.join(model_dir, f"model.ckpt-{STEPS + 5}.manifest")))
        after = parse_metrics(estuary("evaluate", job).stdout)
        self.assertEqual(after["global_step"], STEPS + 5)
        self.assertLess(abs(after["loss"] - TF_EVAL[name]["loss"]), 0.05)

    def check_inspect(self, name):
        out = estuary("inspect", TF_DIRS[name]).stdout.splitlines()
        self.assertIn(f"model.ckpt-{STEPS} (tf format", out[0])
        listed = {}
        for line in out[1:]:
            n, rest = line.split(" (", 1)
            dtype, shape = rest.split(") [")
            listed[n] = ([int(d) for d in shape.rstrip("]").split(",") if d], dtype)
        want = {n: (s, {"float32": "float"}.get(d, d)) for n, (s, d) in
                variables(TF_DIRS[name]).items()}
        self.assertEqual(listed, want)


class EstuaryToTfTest(unittest.TestCase):
    def check_tf_reads(self, name):
        model_dir = os.path.join(WORK, f"estuary_tf_{name}")
        job = estuary_job(name, model_dir, run_config={"checkpoint_format": "tf"})
        estuary("train", job, "--max_steps", str(STEPS), "--evaluate=false")
        self.assertTrue(os.path.exists(os.path.join(model_dir, f"model.ckpt-{STEPS}.index")))
        self.assertFalse(os.path.exists(os.path.join(model_dir, f"model.ckpt-{STEPS}.manifest")))
        ours = parse_metrics(estuary("evaluate", job).stdout)
        # TF's own checkpoint of this model holds exactly these variables.
        self.assertEqual(variables(model_dir), variables(TF_DIRS[name]))
        est = ect.tf_estimator(name, SEED, model_dir)
        theirs = {k: float(v) for k, v in est.evaluate(tf_eval_input()).items()}
        self.assertEqual(theirs["global_step"], STEPS)
        TfToEstuaryTest.assertMetricsEqual(self, theirs, ours, f"{name}: TF on Estuary's")
        predictions = list(est.predict(tf_eval_input()))
        self.assertEqual(len(predictions), 891 - ect.N_TRAIN)
        # TF trains on from Estuary's checkpoint (its optimizer slots).
        est.train(ect.tf_input_fn(PATHS["train"], "survived", ect.BATCH, True, SEED),
                  max_steps=STEPS + 3)
        self.assertEqual(tf.train.load_checkpoint(model_dir).get_tensor("global_step"), STEPS + 3)


class BadInputTest(unittest.TestCase):
    def assertOneLineError(self, p, *needles):
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        errors = [l for l in p.stderr.splitlines() if ": error: " in l]
        self.assertEqual(len(errors), 1, p.stderr)
        for n in needles:
            self.assertIn(n, errors[0])

    def corrupt_copy(self, tag, damage):
        """A copy of TF's linear model_dir with its latest data file damaged."""
        src = TF_DIRS["linear_classifier"]
        dst = checkpoint_only_copy(src, os.path.join(WORK, f"bad_{tag}"))
        data = os.path.join(dst, f"model.ckpt-{STEPS}.data-00000-of-00001")
        with open(data, "rb") as f:
            b = bytearray(f.read())
        with open(data, "wb") as f:
            f.write(damage(b))
        return dst, data

    def warm_start_fails(self, tag, ckpt, name="linear_classifier"):
        model_dir = os.path.join(WORK, f"bad_run_{tag}")
        before = files_of(os.path.dirname(ckpt) if not os.path.isdir(ckpt) else ckpt)
        p = estuary("train", estuary_job(name, model_dir, {"warm_start_from": ckpt}),
                    "--max_steps", "1", "--evaluate=false", ok=False)
        after = files_of(os.path.dirname(ckpt) if not os.path.isdir(ckpt) else ckpt)
        self.assertEqual(after, before, "the checkpoint's files changed")
        self.assertFalse(glob.glob(os.path.join(model_dir, "model.ckpt-*")),
                         "a checkpoint was written")
        return p

    def test_truncated(self):
        _, data = self.corrupt_copy("truncated", lambda b: b[: len(b) // 2])
        prefix = data.split(".data-")[0]
        p = self.warm_start_fails("truncated", prefix)
        self.assertOneLineError(p, data, "tensor '", "truncated")
        p = estuary("inspect", prefix, "--all_tensors", ok=False)
        self.assertOneLineError(p, data, "tensor '")

    def test_bit_flipped(self):
        def flip(b):
            b[len(b) // 3] ^= 0x20
            return b
        _, data = self.corrupt_copy("flipped", flip)
        prefix = data.split(".data-")[0]
        p = self.warm_start_fails("flipped", prefix)
        self.assertOneLineError(p, data, "tensor '", "checksum mismatch")

    def test_truncated_index(self):
        dst = checkpoint_only_copy(TF_DIRS["dnn_classifier"], os.path.join(WORK, "bad_index"))
        index = os.path.join(dst, f"model.ckpt-{STEPS}.index")
        with open(index, "r+b") as f:
            f.truncate(os.path.getsize(index) - 7)
        p = self.warm_start_fails("index", index[: -len(".index")], "dnn_classifier")
        self.assertOneLineError(p, index, "not a TF checkpoint index")

    def test_another_models_checkpoint(self):
        p = self.warm_start_fails("other", TF_DIRS["linear_classifier"], "dnn_classifier")
        self.assertOneLineError(p, f"model.ckpt-{STEPS}", "missing",
                                "dnn/hiddenlayer_0/kernel [11, 16] float32",
                                "dnn/logits/bias [1, 1] float32")

    def test_unsupported_dtype(self):
        d = os.path.join(WORK, "int32_ckpt")
        os.makedirs(d)
        prefix = os.path.join(d, "model.ckpt-3")
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["global_step", "linear/counts"],
                          shape_and_slices=["", ""],
                          tensors=[tf.constant(3, tf.int64), tf.constant([1, 2], tf.int32)])
        tf.compat.v1.train.update_checkpoint_state(d, prefix)
        p = self.warm_start_fails("int32", d)
        self.assertOneLineError(p, prefix + ".index", "tensor 'linear/counts'", "int32")


def add_tests():
    for name in NAMES:
        for cls, checks in ((TfToEstuaryTest, ("warm_start", "evaluate_and_train_on", "inspect")),
                            (EstuaryToTfTest, ("tf_reads",))):
            for check in checks:
                def test(self, name=name, check=check):
                    getattr(self, "check_" + check)(name)
                setattr(cls, f"test_{name}_{check}", test)


add_tests()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args, rest = ap.parse_known_args()
    ESTUARY = os.path.abspath(args.tool)
    ect.ESTUARY = ESTUARY
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
