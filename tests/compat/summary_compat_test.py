"""TensorBoard / TF 2.15 read what Estuary writes: event files and the
checkpoint state file (summary_tool); and Estuary's premade classifiers
write the summaries TF 2.15's do.

PremadeSummariesTest: TF and `estuary` train LinearClassifier (binary:
scalar "bias"; 3 classes: histogram "bias"), DNNClassifier (also 3 classes
with batch norm) and DNNLinearCombinedClassifier for SUMMARY_STEPS steps
from the same initial weights (TF's model.ckpt-0, warm start) on the same
unshuffled batches with save_summary_steps = 1
(deterministic_compat_test's cases). The train directory's tag sets
(scalars and histograms, read with TensorBoard's EventAccumulator) must be
equal, apart from the step-rate tags (TF writes "global_step/sec" every
log_step_count_steps; Estuary also "examples/sec"); e.g. DNN:
dnn/hiddenlayer_N/fraction_of_zero_values, dnn/hiddenlayer_N/activation,
dnn/logits/...; linear: bias, fraction_of_zero_weights; combined: also
linear/fraction_of_zero_values and linear/activation. Every scalar at every
step within VALUE_RTOL / VALUE_ATOL, every histogram's count, min, max,
sum of squares and sum (to float rounding) too; the linear variables'
summaries (bias, fraction_of_zero_weights), which TF reads unordered
against the step's update, between Estuary's values before and after it.

Runs under the TF venv; drives summary_tool, `estuary` and compat_tool.
Usage: summary_compat_test.py --tool SUMMARY_TOOL --estuary ESTUARY
         --compat_tool COMPAT_TOOL [unittest args]
"""
import argparse
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

TOOL = None
ESTUARY = None
COMPAT_TOOL = None
HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY_CASES = ("linear_classifier", "linear_classifier_vocabulary", "dnn_classifier",
                 "dnn_classifier_multiclass_batch_norm", "dnn_linear_combined_classifier")
SUMMARY_STEPS = 5
STEP_RATE_TAGS = {"global_step/sec", "examples/sec"}
VALUE_RTOL, VALUE_ATOL = 1e-4, 1e-5
# Summaries of variables (not of the forward pass): see check_values.
VARIABLE_TAGS = {"bias", "fraction_of_zero_weights"}


def histogram_values():
    v = [math.sin(i * 0.37) * math.exp(0.01 * i) - 0.2 for i in range(1000)]
    return v + [0.0, 1e-13, -1e25]


class SummaryCompatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.events_dir = os.path.join(cls.tmp, "events")
        cls.model_dir = os.path.join(cls.tmp, "model")
        p = subprocess.run([TOOL, cls.events_dir, cls.model_dir], capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError(f"summary_tool failed: {p.stderr}")
        cls.event_file = p.stdout.strip()

    def accumulator(self):
        acc = event_accumulator.EventAccumulator(
            self.events_dir, size_guidance={event_accumulator.SCALARS: 0,
                                            event_accumulator.HISTOGRAMS: 0})
        acc.Reload()
        return acc

    def test_file_name_and_version(self):
        name = os.path.basename(self.event_file)
        self.assertTrue(name.startswith("events.out.tfevents."), name)
        first = next(iter(tf.compat.v1.train.summary_iterator(self.event_file)))
        self.assertEqual(first.file_version, "brain.Event:2")
        self.assertEqual(self.accumulator().file_version, 2.0)

    def test_scalars(self):
        acc = self.accumulator()
        self.assertIn("loss", acc.Tags()["scalars"])
        got = [(e.step, e.value) for e in acc.Scalars("loss")]
        want = [(s, float(np.float32(1.0 / (s + 1)))) for s in range(0, 41, 10)]
        self.assertEqual(got, want)

    def test_histogram_matches_tf(self):
        acc = self.accumulator()
        self.assertIn("weights", acc.Tags()["histograms"])
        [h] = acc.Histograms("weights")
        self.assertEqual(h.step, 40)
        ours = h.histogram_value
        # TF's own HistogramSummary kernel (histogram.cc) on the same doubles.
        with tf.Graph().as_default():
            op = tf.compat.v1.summary.histogram(
                "weights", tf.constant(histogram_values(), dtype=tf.float64))
            with tf.compat.v1.Session() as sess:
                s = tf.compat.v1.Summary.FromString(sess.run(op))
        theirs = s.value[0].histo
        self.assertEqual(ours.min, theirs.min)
        self.assertEqual(ours.max, theirs.max)
        self.assertEqual(ours.num, theirs.num)
        self.assertAlmostEqual(ours.sum, theirs.sum, delta=abs(theirs.sum) * 1e-12)
        self.assertAlmostEqual(ours.sum_squares, theirs.sum_squares,
                               delta=abs(theirs.sum_squares) * 1e-12)
        self.assertEqual(list(ours.bucket_limit), list(theirs.bucket_limit))
        self.assertEqual(list(ours.bucket), list(theirs.bucket))

    def test_checkpoint_state_read_by_tf(self):
        st = tf.train.get_checkpoint_state(self.model_dir)
        self.assertIsNotNone(st)
        self.assertEqual(os.path.basename(st.model_checkpoint_path), "model.ckpt-300")
        self.assertEqual([os.path.basename(p) for p in st.all_model_checkpoint_paths],
                         ["model.ckpt-200", "model.ckpt-300"])
        self.assertEqual(len(st.all_model_checkpoint_timestamps), 2)


def train_summaries(model_dir):
    """{"scalars": {tag: {step: value}}, "histograms": {tag: {step: HistogramProto}}}."""
    acc = event_accumulator.EventAccumulator(
        model_dir, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    return {"scalars": {t: {e.step: e.value for e in acc.Scalars(t)} for t in tags["scalars"]},
            "histograms": {t: {e.step: e.histogram_value for e in acc.Histograms(t)}
                           for t in tags["histograms"]}}


class PremadeSummariesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, HERE)
        import deterministic_compat_test as d  # noqa: E402  (cases, data, both sides)
        d.ESTUARY, d.COMPAT_TOOL = ESTUARY, COMPAT_TOOL
        work = tempfile.mkdtemp(prefix="premade_summaries_")
        paths = d.write_csvs(work)
        tf.get_logger().setLevel("ERROR")
        cls.results = {}
        for name in SUMMARY_CASES:
            case = dict(d.CASES[name], steps=SUMMARY_STEPS)
            tf_dir = os.path.join(work, f"tf_{name}")
            est = d.tf_estimator(case, tf_dir)
            est.train(d.tf_input_fn(paths["train"], case["label"], d.BATCH, True),
                      max_steps=SUMMARY_STEPS)
            init_dir = os.path.join(work, f"init_{name}")
            d.write_initial_checkpoint(os.path.join(tf_dir, "model.ckpt-0"), init_dir)
            our_dir = os.path.join(work, f"estuary_{name}")
            job_path = our_dir + ".json"
            with open(job_path, "w") as f:
                json.dump(d.estuary_job(case, our_dir, paths, init_dir, {}), f, indent=1)
            p = subprocess.run([ESTUARY, "train", job_path, "--max_steps", str(SUMMARY_STEPS),
                                "--evaluate=false"], capture_output=True, text=True)
            if p.returncode != 0:
                raise AssertionError(f"estuary train {job_path} failed ({p.returncode}):\n"
                                     f"{p.stdout}\n{p.stderr}")
            cls.results[name] = (train_summaries(tf_dir), train_summaries(our_dir))

    def check_tags(self, name):
        theirs, ours = self.results[name]
        self.assertEqual(set(ours["histograms"]), set(theirs["histograms"]))
        self.assertEqual(set(ours["scalars"]) - STEP_RATE_TAGS,
                         set(theirs["scalars"]) - STEP_RATE_TAGS)
        self.assertIn("loss", ours["scalars"])
        print(f"\n{name}: scalars {sorted(set(theirs['scalars']) - STEP_RATE_TAGS)}, "
              f"histograms {sorted(theirs['histograms'])}", file=sys.stderr)

    def check_values(self, name):
        theirs, ours = self.results[name]
        bad = []

        def close(what, a, b):
            if not abs(a - b) <= VALUE_ATOL + VALUE_RTOL * abs(a):
                bad.append(f"{what}: TF {a}, Estuary {b}")

        def within(what, a, lo, hi):
            tol = VALUE_ATOL + VALUE_RTOL * abs(a)
            if not lo - tol <= a <= hi + tol:
                bad.append(f"{what}: TF {a}, Estuary {lo} (this step) .. {hi} (the next)")

        steps = list(range(1, SUMMARY_STEPS + 1))
        for tag, values in theirs["scalars"].items():
            if tag in STEP_RATE_TAGS:
                continue
            for s in steps:
                if s not in values or s not in ours["scalars"].get(tag, {}):
                    bad.append(f"{tag}: no value at step {s}")
                    continue
                if tag in VARIABLE_TAGS:
                    # TF reads these variables in the step's session.run
                    # without ordering against the update: before it, after
                    # it, or some of each (Estuary: before; the value after
                    # is Estuary's of the next step).
                    if s < SUMMARY_STEPS:
                        now, later = ours["scalars"][tag][s], ours["scalars"][tag][s + 1]
                        within(f"{tag} step {s}", values[s], min(now, later), max(now, later))
                    continue
                close(f"{tag} step {s}", values[s], ours["scalars"][tag][s])
        for tag, values in theirs["histograms"].items():
            for s in steps:
                if s not in values or s not in ours["histograms"].get(tag, {}):
                    bad.append(f"{tag}: no histogram at step {s}")
                    continue
                a, b = values[s], ours["histograms"][tag][s]
                if tag in VARIABLE_TAGS and s == SUMMARY_STEPS:
                    continue
                if tag in VARIABLE_TAGS:  # as above: before or after the update
                    c = ours["histograms"][tag][s + 1]
                    for field in ("min", "max", "sum"):
                        now, later = getattr(b, field), getattr(c, field)
                        within(f"{tag} step {s} {field}", getattr(a, field),
                               min(now, later), max(now, later))
                    continue
                if a.num != b.num:
                    bad.append(f"{tag} step {s}: {a.num} values in TF's, {b.num} in Estuary's")
                for field in ("min", "max", "sum_squares"):
                    close(f"{tag} step {s} {field}", getattr(a, field), getattr(b, field))
                # The sum of batch-normalised activations is ~0 (cancelling
                # terms): to float rounding of the terms.
                scale = a.num * max(abs(a.min), abs(a.max), 1.0)
                if not abs(a.sum - b.sum) <= 1e-6 * scale + VALUE_RTOL * abs(a.sum):
                    bad.append(f"{tag} step {s} sum: TF {a.sum}, Estuary {b.sum}")
        self.assertEqual(bad[:10], [], f"{len(bad)} summary values differ")


def add_premade_tests():
    for name in SUMMARY_CASES:
        for check in ("tags", "values"):
            def test(self, name=name, check=check):
                getattr(self, "check_" + check)(name)
            setattr(PremadeSummariesTest, f"test_{name}_{check}", test)


add_premade_tests()

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--estuary", required=True)
    ap.add_argument("--compat_tool", required=True)
    args, rest = ap.parse_known_args()
    TOOL = os.path.abspath(args.tool)
    ESTUARY = os.path.abspath(args.estuary)
    COMPAT_TOOL = os.path.abspath(args.compat_tool)
    unittest.main(argv=[sys.argv[0]] + rest)
