"""Writes the golden bundles tensor_bundle_test reads, with TF 2.15's SaveV2
(the op tf.train.Saver / tf.estimator use):

  golden.*       float32 [2,3] and [] and [0], int64 [], string [3]
                 (tensor_bundle_test also checks that Estuary's writer
                 produces the same .index and .data bytes for them)
  int32.*        an int32 tensor beside a float one (unsupported dtype)

Usage (from the repository root):
  .venv-tf/bin/python common/tf_bundle/testdata/make_golden.py
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def save(prefix, tensors):
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=os.path.join(HERE, prefix), tensor_names=names,
                      shape_and_slices=[""] * len(names),
                      tensors=[tensors[n] for n in names])


save("golden", {
    "dnn/hiddenlayer_0/kernel": tf.constant([[1.5, -2.0, 3.25], [0.0, 1e-3, -7.0]], tf.float32),
    "dnn/logits/bias": tf.constant(0.125, tf.float32),
    "empty": tf.zeros([0], tf.float32),
    "global_step": tf.constant(1000, tf.int64),
    "vocab": tf.constant(["male", "", "a longer string \u00e9"]),
})
save("int32", {
    "counts": tf.constant([1, 2, 3], tf.int32),
    "weights": tf.constant([0.5], tf.float32),
})
