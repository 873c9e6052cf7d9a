"""TensorBoard / TF 2.15 read what Estuary writes: event files and the
checkpoint state file. Runs under the TF venv; drives summary_tool.
Usage: summary_compat_test.py --tool PATH [unittest args]
"""
import argparse
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


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args, rest = ap.parse_known_args()
    TOOL = os.path.abspath(args.tool)
    unittest.main(argv=[sys.argv[0]] + rest)
