"""Compatibility with TensorFlow 2.15, the seed system: TF is the oracle.

Runs under the TF venv (.venv-tf, see scripts/setup.sh) and drives
compat_tool (Estuary's side) through JSON. Never imported by the product.
Usage: compat_test.py --tool PATH [unittest args]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

TOOL = None


def tool(request):
    p = subprocess.run([TOOL], input=json.dumps(request), capture_output=True, text=True)
    out = json.loads(p.stdout) if p.stdout.strip() else {}
    if p.returncode != 0:
        raise AssertionError(f"compat_tool failed ({p.returncode}): {out.get('error')} {p.stderr}")
    return out


def hexs(values):
    return [v.hex() for v in values]


# Examples with every kind of value, missing and empty features.
EXAMPLES = [
    {"id": {"int64": [1]}, "x": {"float": [0.5, -1.25]}, "city": {"bytes": ["Oslo"]},
     "tags": {"bytes": ["a", "b", "c"]}, "w": {"float": [1.0e-7]}},
    {"id": {"int64": [-9223372036854775807]}, "x": {"float": [3.4028235e38, 1.17549435e-38]},
     "city": {"bytes": ["Zürich"]}, "tags": {"bytes": []}},
    {"id": {"int64": [42]}, "x": {"float": [0.0, -0.0]}, "tags": {"bytes": ["\u00e9\u00e8"]},
     "w": {"float": [2.5]}},
]
SPEC_JSON = {
    "id": {"dtype": "int64"},
    "x": {"dtype": "float32", "shape": [2]},
    "city": {"dtype": "string", "default": "unknown"},
    "tags": {"dtype": "string", "var_len": True},
    "w": {"dtype": "float32", "var_len": True},
}
TF_SPEC = {
    "id": tf.io.FixedLenFeature([], tf.int64),
    "x": tf.io.FixedLenFeature([2], tf.float32),
    "city": tf.io.FixedLenFeature([], tf.string, default_value="unknown"),
    "tags": tf.io.VarLenFeature(tf.string),
    "w": tf.io.VarLenFeature(tf.float32),
}


def tf_example(ex):
    feature = {}
    for key, value in ex.items():
        if "int64" in value:
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=value["int64"]))
        elif "float" in value:
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=value["float"]))
        else:
            feature[key] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[v.encode() for v in value["bytes"]]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def tf_parsed_as_json(parsed):
    """TF's parse_example output in compat_tool's JSON shape."""
    out = {}
    for key, t in parsed.items():
        if isinstance(t, tf.sparse.SparseTensor):
            vals = t.values.numpy()
            out[key] = {"indices": t.indices.numpy().tolist(),
                        "values": hexs(vals) if vals.dtype == object else vals.tolist(),
                        "dense_shape": t.dense_shape.numpy().tolist()}
        else:
            arr = t.numpy()
            flat = arr.reshape(-1)
            out[key] = {"dense": hexs(flat) if arr.dtype == object else flat.tolist(),
                        "shape": list(arr.shape)}
    return out


class TFRecordAndExampleTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))

    def check_same_parse(self, path, compression):
        ours = tool({"op": "parse_tfrecord", "file": path, "compression": compression,
                     "features": SPEC_JSON})
        ds = tf.data.TFRecordDataset([path], compression_type=compression)
        records = [r.numpy() for r in ds]
        self.assertEqual(ours["records"], len(records))
        theirs = tf_parsed_as_json(tf.io.parse_example(tf.constant(records), TF_SPEC))
        self.assertEqual(ours["features"], theirs)

    def test_files_written_by_tensorflow_are_read_here(self):
        for compression in ["", "GZIP"]:
            path = os.path.join(self.dir, f"tf{compression}.tfrecord")
            opts = tf.io.TFRecordOptions(compression_type=compression)
            with tf.io.TFRecordWriter(path, opts) as w:
                for ex in EXAMPLES * 50:
                    w.write(tf_example(ex).SerializeToString())
            self.check_same_parse(path, compression)

    def test_files_written_here_are_read_by_tensorflow(self):
        for compression in ["", "GZIP"]:
            path = os.path.join(self.dir, f"ours{compression}.tfrecord")
            tool({"op": "write_tfrecord", "file": path, "compression": compression,
                  "examples": EXAMPLES * 50})
            ds = tf.data.TFRecordDataset([path], compression_type=compression)
            records = [tf.train.Example.FromString(r.numpy()) for r in ds]
            self.assertEqual(records, [tf_example(ex) for ex in EXAMPLES * 50])
            self.check_same_parse(path, compression)

    def test_corruption_is_detected_by_both(self):
        path = os.path.join(self.dir, "corrupt.tfrecord")
        tool({"op": "write_tfrecord", "file": path, "examples": EXAMPLES})
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[20] ^= 0x40  # inside the first record's payload
        with open(path, "wb") as f:
            f.write(bytes(data))
        with self.assertRaises(tf.errors.DataLossError):
            list(tf.data.TFRecordDataset([path]))
        with self.assertRaisesRegex(AssertionError, "corrupt record at offset 0: data checksum"):
            tool({"op": "parse_tfrecord", "file": path, "features": SPEC_JSON})


def main():
    global TOOL
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args, rest = ap.parse_known_args()
    TOOL = os.path.abspath(args.tool)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
