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


class FeatureColumnTest(unittest.TestCase):
    """Hash buckets, crossed ids, vocabulary ids, bucket boundaries,
    indicator/embedding outputs and DenseFeatures order, on random inputs
    drawn at test time, computed by TF and by Estuary."""

    BATCH = 400
    COLUMNS = [
        {"type": "categorical_with_hash_bucket", "key": "city", "hash_bucket_size": 1000},
        {"type": "categorical_with_hash_bucket", "key": "uid", "hash_bucket_size": 97,
         "dtype": "int64"},
        {"type": "categorical_with_vocabulary_list", "key": "color",
         "vocabulary_list": ["red", "green", "blue"], "num_oov_buckets": 3},
        {"type": "categorical_with_vocabulary_list", "key": "code", "dtype": "int64",
         "vocabulary_list": [10, 20, 30]},
        {"type": "numeric", "key": "age"},
        {"type": "bucketized", "source_column": "age", "boundaries": [18, 25.5, 30, 65]},
        {"type": "numeric", "key": "score", "shape": [2], "normalizer": {"mean": 1.5, "stddev": 2}},
        {"type": "crossed", "keys": ["city", "age_bucketized"], "hash_bucket_size": 5000},
        {"type": "crossed", "keys": ["color", "uid"], "hash_bucket_size": 100},
        {"type": "indicator", "categorical_column": "color"},
        {"type": "indicator", "categorical_column": "code"},
        {"type": "embedding", "categorical_column": "city", "dimension": 4, "combiner": "sqrtn"},
        {"type": "categorical_with_hash_bucket", "key": "tags", "hash_bucket_size": 50},
        {"type": "indicator", "categorical_column": "tags"},
        {"type": "embedding", "categorical_column": "tags", "dimension": 3, "combiner": "mean"},
    ]

    def tf_columns(self, tables):
        fc = tf.feature_column
        city = fc.categorical_column_with_hash_bucket("city", 1000)
        uid = fc.categorical_column_with_hash_bucket("uid", 97, dtype=tf.int64)
        color = fc.categorical_column_with_vocabulary_list("color", ["red", "green", "blue"],
                                                           num_oov_buckets=3)
        code = fc.categorical_column_with_vocabulary_list("code", [10, 20, 30], dtype=tf.int64)
        age = fc.numeric_column("age")
        age_b = fc.bucketized_column(age, [18, 25.5, 30, 65])
        score = fc.numeric_column("score", shape=(2,), normalizer_fn=lambda x: (x - 1.5) / 2)
        tags = fc.categorical_column_with_hash_bucket("tags", 50)
        const = tf.constant_initializer
        return [city, uid, color, code, age, age_b, score,
                fc.crossed_column(["city", age_b], 5000),
                fc.crossed_column(["color", "uid"], 100),
                fc.indicator_column(color), fc.indicator_column(code),
                fc.embedding_column(city, 4, combiner="sqrtn",
                                    initializer=const(np.array(tables["city_embedding"]))),
                tags, fc.indicator_column(tags),
                fc.embedding_column(tags, 3, combiner="mean",
                                    initializer=const(np.array(tables["tags_embedding"])))]

    def inputs(self, rng):
        b = self.BATCH
        words = ["Oslo", "Zürich", "", "東京", "new york", "a" * 300, "\u00e9", "x,y", "-1"]
        city = [rng.choice(words) if rng.random() < 0.3 else f"c{rng.integers(0, 10**6)}"
                for _ in range(b)]
        uid = rng.integers(-10**12, 10**12, size=b).tolist()
        uid[0], uid[1] = -1, 0
        color = [str(rng.choice(["red", "green", "blue", "purple", "teal", ""])) for _ in range(b)]
        code = [int(rng.choice([10, 20, 30, 40])) for _ in range(b)]
        edges = [18.0, 25.5, 30.0, 65.0, 17.999998, 25.500002, 0.1, -3.0, 1e9]
        age = [float(rng.choice(edges)) if rng.random() < 0.3 else float(rng.uniform(0, 100))
               for _ in range(b)]
        score = rng.normal(size=(b, 2)).astype(np.float32)
        tag_idx, tag_val = [], []
        for r in range(b):
            for c in range(int(rng.integers(0, 4))):
                tag_idx.append([r, c])
                tag_val.append(f"t{rng.integers(0, 30)}")
        ours = {
            "city": {"dtype": "string", "shape": [b], "values": city},
            "uid": {"dtype": "int64", "shape": [b], "values": uid},
            "color": {"dtype": "string", "shape": [b], "values": color},
            "code": {"dtype": "int64", "shape": [b], "values": code},
            "age": {"dtype": "float32", "shape": [b], "values": np.float32(age).tolist()},
            "score": {"dtype": "float32", "shape": [b, 2], "values": score.reshape(-1).tolist()},
            "tags": {"dtype": "string", "indices": tag_idx, "values": tag_val,
                     "dense_shape": [b, 4]},
        }
        theirs = {
            "city": tf.constant(city), "uid": tf.constant(uid, tf.int64),
            "color": tf.constant(color), "code": tf.constant(code, tf.int64),
            "age": tf.constant(age, tf.float32), "score": tf.constant(score),
            "tags": tf.SparseTensor(np.array(tag_idx, np.int64).reshape(-1, 2),
                                    tf.constant(tag_val, tf.string), [b, 4]),
        }
        return ours, theirs

    def test_same_ids_and_dense_outputs(self):
        from tensorflow.python.feature_column import feature_column_v2 as fc2
        rng = np.random.default_rng(20261125)
        ours_in, tf_in = self.inputs(rng)
        tables = {"city_embedding": rng.normal(size=(1000, 4)).astype(np.float32).tolist(),
                  "tags_embedding": rng.normal(size=(50, 3)).astype(np.float32).tolist()}
        out = tool({"op": "feature_columns", "columns": self.COLUMNS, "features": ours_in,
                    "tables": tables})
        columns = self.tf_columns(tables)
        cache = fc2.FeatureTransformationCache(tf_in)
        categorical = [c for c in columns if isinstance(c, fc2.CategoricalColumn)]
        self.assertGreaterEqual(len(categorical), 7)
        for col in categorical:
            ids = col.get_sparse_tensors(cache, None).id_tensor
            with self.subTest(column=col.name):
                self.assertIn(col.name, out["ids"])
                self.assertEqual(out["ids"][col.name]["rows"], ids.indices.numpy()[:, 0].tolist())
                self.assertEqual(out["ids"][col.name]["ids"], ids.values.numpy().tolist())
        dense = [c for c in columns if isinstance(c, fc2.DenseColumn)]
        for col in dense:
            want = tf.keras.layers.DenseFeatures([col])(tf_in).numpy()
            with self.subTest(column=col.name):
                np.testing.assert_allclose(np.array(out["dense"][col.name]), want,
                                           rtol=1e-6, atol=1e-6)
        want = tf.keras.layers.DenseFeatures(dense)(tf_in).numpy()
        np.testing.assert_allclose(np.array(out["dense_features"]), want, rtol=1e-6, atol=1e-6)

    def test_three_way_cross_of_int_and_strings(self):
        from tensorflow.python.feature_column import feature_column_v2 as fc2
        rng = np.random.default_rng(7)
        ours_in, tf_in = self.inputs(rng)
        big = 2**31 - 1
        out = tool({"op": "feature_columns", "features": ours_in, "columns": [
            {"type": "crossed", "keys": ["code", "city", "color"], "hash_bucket_size": big}]})
        col = tf.feature_column.crossed_column(["code", "city", "color"], big)
        ids = col.get_sparse_tensors(fc2.FeatureTransformationCache(tf_in), None).id_tensor
        self.assertEqual(col.name, "city_X_code_X_color")
        self.assertEqual(out["ids"][col.name]["ids"], ids.values.numpy().tolist())

    def test_cross_orders_sparse_inputs_before_dense_ones(self):
        from tensorflow.python.feature_column import feature_column_v2 as fc2
        rng = np.random.default_rng(11)
        ours_in, tf_in = self.inputs(rng)
        fc = tf.feature_column
        bucketized = fc.bucketized_column(fc.numeric_column("age"), [18, 25.5, 30, 65])
        for keys, tf_keys in [(["city", "age_bucketized"], ["city", bucketized]),
                              (["tags", "city"], ["tags", "city"]),
                              (["city", "tags", "uid"], ["city", "tags", "uid"])]:
            out = tool({"op": "feature_columns", "features": ours_in, "columns": [
                {"type": "numeric", "key": "age"},
                {"type": "bucketized", "source_column": "age", "boundaries": [18, 25.5, 30, 65]},
                {"type": "crossed", "keys": keys, "hash_bucket_size": 1000}]})
            col = fc.crossed_column(tf_keys, 1000)
            ids = col.get_sparse_tensors(fc2.FeatureTransformationCache(tf_in), None).id_tensor
            with self.subTest(keys=keys):
                self.assertEqual(out["ids"][col.name]["rows"], ids.indices.numpy()[:, 0].tolist())
                self.assertEqual(out["ids"][col.name]["ids"], ids.values.numpy().tolist())


def main():
    global TOOL
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args, rest = ap.parse_known_args()
    TOOL = os.path.abspath(args.tool)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
