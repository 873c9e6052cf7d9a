"""Writes the TFRecord golden files of common/io/tfrecord_test.cc with TF.

Run by hand with the TensorFlow 2.15 venv (never part of the build):
  /work/tfvenv/bin/python common/io/testdata/make_golden.py common/io/testdata
Records (tfrecord_test.cc GoldenRecords() must match):
  0: b""                      (empty record)
  1: b"hello"
  2: bytes(range(256))        (every byte value)
  3: b"x" * 1000
"""
import sys

import tensorflow as tf

RECORDS = [b"", b"hello", bytes(range(256)), b"x" * 1000]


def main(outdir):
    with tf.io.TFRecordWriter(f"{outdir}/tf_written.tfrecord") as w:
        for r in RECORDS:
            w.write(r)
    opts = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(f"{outdir}/tf_written.tfrecord.gz", opts) as w:
        for r in RECORDS:
            w.write(r)
    # Sanity: TF reads back what it wrote.
    got = [r.numpy() for r in tf.data.TFRecordDataset(f"{outdir}/tf_written.tfrecord")]
    assert got == RECORDS, got
    got = [r.numpy() for r in tf.data.TFRecordDataset(
        f"{outdir}/tf_written.tfrecord.gz", compression_type="GZIP")]
    assert got == RECORDS, got


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
