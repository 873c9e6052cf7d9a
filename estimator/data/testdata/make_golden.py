"""Writes the tf.train.Example golden files of example_parser_test.cc with TF.

Run by hand with the TensorFlow 2.15 venv (never part of the build):
  /work/tfvenv/bin/python estimator/data/testdata/make_golden.py estimator/data/testdata
Outputs:
  examples.tfrecord  five serialized tf.train.Example records, by TF
  parsed.json        tf.io.parse_example of them against SPEC below
                     (dense: {"shape", "values"}; sparse: {"indices",
                     "values", "dense_shape"}; strings as latin-1 text)
example_parser_test.cc builds the same spec in C++ (GoldenSpec()).
"""
import json
import sys

import tensorflow as tf

SPEC = {
    "age": tf.io.FixedLenFeature([], tf.float32, default_value=-1.0),
    "pixels": tf.io.FixedLenFeature([2, 2], tf.float32),
    "id": tf.io.FixedLenFeature([], tf.int64),
    "city": tf.io.FixedLenFeature([], tf.string, default_value="nowhere"),
    "tags": tf.io.VarLenFeature(tf.string),
    "clicks": tf.io.VarLenFeature(tf.int64),
    "weights": tf.io.VarLenFeature(tf.float32),
}


def f(v):
    return tf.train.Feature(float_list=tf.train.FloatList(value=v))


def i(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=v))


def b(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))


EXAMPLES = [
    {"age": f([31.5]), "pixels": f([0.1, 0.2, 0.3, 0.4]), "id": i([1]), "city": b([b"Oslo"]),
     "tags": b([b"a", b"b"]), "clicks": i([3, -4, 2**40]), "weights": f([0.5])},
    {"pixels": f([1, 2, 3, 4]), "id": i([-2]), "tags": b([]), "weights": f([1e-30, 3.25])},
    {"age": tf.train.Feature(), "pixels": f([5, 6, 7, 8]), "id": i([2**62]),
     "city": b([b"\xff\x00bytes"]), "clicks": tf.train.Feature(), "extra": b([b"ignored"])},
    {"age": f([-0.0]), "pixels": f([9, 10, 11, 12]), "id": i([0]), "tags": b([b"c"]),
     "clicks": i([7]), "weights": f([])},
    {"pixels": f([3.4028234663852886e38, -1, 0, 1]), "id": i([5]), "clicks": i([])},
]


def main(outdir):
    serialized = [tf.train.Example(features=tf.train.Features(feature=e)).SerializeToString()
                  for e in EXAMPLES]
    with tf.io.TFRecordWriter(f"{outdir}/examples.tfrecord") as w:
        for s in serialized:
            w.write(s)
    parsed = tf.io.parse_example(serialized, SPEC)
    out = {}
    for key, v in sorted(parsed.items()):
        def values(t):
            if t.dtype == tf.string:
                return [x.decode("latin-1") for x in t.numpy().reshape(-1).tolist()]
            return [float(x) if t.dtype == tf.float32 else int(x)
                    for x in t.numpy().reshape(-1).tolist()]
        if isinstance(v, tf.SparseTensor):
            out[key] = {"indices": v.indices.numpy().tolist(), "values": values(v.values),
                        "dense_shape": v.dense_shape.numpy().tolist()}
        else:
            out[key] = {"shape": v.shape.as_list(), "values": values(v)}
    with open(f"{outdir}/parsed.json", "w") as fp:
        json.dump(out, fp, indent=1, sort_keys=True)
        fp.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
