"""Goldens for estimator/head from TensorFlow 2.15 + tensorflow-estimator 2.15.

Run with the oracle venv:
  /work/main/.venv-tf/bin/python estimator/head/testdata/make_head_goldens.py \
      > estimator/head/testdata/head_goldens.json

For each case: batches of (logits, labels, weights); per batch the head's
training loss (head.loss), d loss / d logits (GradientTape), the unreduced
loss and weights (head._unweighted_loss_and_weights) and predictions
(head.predictions); at the end every eval metric (head.metrics() updated with
head.update_metrics batch by batch) plus 'loss', which tf.estimator adds as
tf.compat.v1.metrics.mean(per-batch training loss) (estimator.py
_verify_and_create_loss_metric).
"""
import json
import os
import sys

os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
import numpy as np
import tensorflow as tf

R = np.random.RandomState(20240604)


def head_for(case):
  kind = case['head']
  red = {'sum_over_batch_size': tf.losses.Reduction.SUM_OVER_BATCH_SIZE,
         'sum': tf.losses.Reduction.SUM}[case['loss_reduction']]
  w = 'w' if case['weighted'] else None
  if kind == 'binary':
    return tf.estimator.BinaryClassHead(
        weight_column=w, label_vocabulary=case.get('label_vocabulary'),
        loss_reduction=red)
  if kind == 'multi_class':
    return tf.estimator.MultiClassHead(
        n_classes=case['n_classes'], weight_column=w,
        label_vocabulary=case.get('label_vocabulary'), loss_reduction=red)
  return tf.estimator.RegressionHead(
      label_dimension=case['label_dimension'], weight_column=w,
      loss_reduction=red)


def make_batch(case, n):
  kind = case['head']
  vocab = case.get('label_vocabulary')
  if kind == 'binary':
    logits = R.normal(0, 2, size=(n, 1)).astype(np.float32)
    # A few exact zeros: class_ids tie-break (argmax of [0, logit]).
    logits[R.rand(n, 1) < 0.1] = 0.0
    ids = (R.rand(n) < 0.6).astype(np.int64)
  elif kind == 'multi_class':
    logits = R.normal(0, 2, size=(n, case['n_classes'])).astype(np.float32)
    ids = R.randint(0, case['n_classes'], size=n).astype(np.int64)
  else:
    d = case['label_dimension']
    logits = R.normal(0, 2, size=(n, d)).astype(np.float32)
    labels = R.normal(0, 2, size=(n, d)).astype(np.float32)
  if kind != 'regression':
    if vocab:
      labels = np.array([vocab[i] for i in ids])
      labels_json = {'dtype': 'string', 'shape': [n],
                     'values': labels.tolist()}
    elif case.get('float_labels'):
      labels = ids.astype(np.float32).reshape(n, 1)
      labels_json = {'dtype': 'float32', 'shape': [n, 1],
                     'values': labels.ravel().tolist()}
    else:
      labels = ids
      labels_json = {'dtype': 'int64', 'shape': [n],
                     'values': labels.tolist()}
  else:
    labels_json = {'dtype': 'float32', 'shape': list(labels.shape),
                   'values': labels.ravel().tolist()}
  weights = None
  if case['weighted']:
    wshape = case.get('weight_shape', 'batch')
    if wshape == 'batch':
      weights = R.uniform(0, 2, size=(n,)).astype(np.float32)
    elif wshape == 'batch1':
      weights = R.uniform(0, 2, size=(n, 1)).astype(np.float32)
    else:  # per logit
      weights = R.uniform(0, 2, size=logits.shape).astype(np.float32)
    weights[R.rand(*weights.shape) < 0.15] = 0.0
  return logits, labels, labels_json, weights


def tolist(t):
  a = t.numpy() if hasattr(t, 'numpy') else np.asarray(t)
  if a.dtype.kind in 'SO':
    return [x.decode() for x in a.ravel()]
  return a.astype(np.float64).ravel().tolist() if a.dtype.kind == 'f' \
      else a.astype(np.int64).ravel().tolist()


def run_case(case, sizes):
  head = head_for(case)
  metrics = head.metrics()
  batches = []
  losses = []
  for n in sizes:
    logits, labels, labels_json, weights = make_batch(case, n)
    features = {'w': tf.constant(weights)} if weights is not None else {}
    lg = tf.constant(logits)
    with tf.GradientTape() as tape:
      tape.watch(lg)
      loss = head.loss(labels=tf.constant(labels), logits=lg,
                       features=features)
    grad = tape.gradient(loss, lg)
    processed = head._processed_labels(lg, tf.constant(labels))
    unweighted, w = head._unweighted_loss_and_weights(lg, processed, features)
    w = tf.broadcast_to(tf.cast(w, tf.float32), tf.shape(unweighted))
    preds = head.predictions(lg)
    head.update_metrics(metrics, features, lg, tf.constant(labels))
    losses.append(float(loss.numpy()))
    b = {
        'logits': {'shape': list(logits.shape),
                   'values': logits.ravel().astype(np.float64).tolist()},
        'labels': labels_json,
        'training_loss': float(loss.numpy()),
        'dlogits': tolist(grad),
        'unreduced_loss': tolist(unweighted),
        'weights_out': tolist(w),
    }
    if n <= 20:  # keep the file small: predictions of the small batches only
      b['predictions'] = {
          k: {'shape': list(v.shape), 'dtype': v.dtype.name,
              'values': tolist(v)} for k, v in preds.items()}
    if weights is not None:
      b['weights'] = {'shape': list(weights.shape),
                      'values': weights.ravel().astype(np.float64).tolist()}
    batches.append(b)
  result = {k: float(m.result().numpy()) for k, m in metrics.items()}
  result['loss'] = float(np.mean(np.array(losses, dtype=np.float32)))
  return {'config': case, 'batches': batches, 'metrics': result}


CASES = [
    dict(name='binary_int', head='binary', weighted=False,
         loss_reduction='sum_over_batch_size'),
    dict(name='binary_weighted', head='binary', weighted=True,
         loss_reduction='sum_over_batch_size'),
    dict(name='binary_weighted_sum_float', head='binary', weighted=True,
         weight_shape='batch1', float_labels=True, loss_reduction='sum'),
    dict(name='binary_vocab', head='binary', weighted=True,
         label_vocabulary=['neg', 'pos'], loss_reduction='sum_over_batch_size'),
    dict(name='multi_class', head='multi_class', n_classes=4, weighted=False,
         loss_reduction='sum_over_batch_size'),
    dict(name='multi_class_weighted_sum', head='multi_class', n_classes=3,
         weighted=True, loss_reduction='sum'),
    dict(name='multi_class_vocab', head='multi_class', n_classes=3,
         weighted=True, label_vocabulary=['a', 'b', 'c'],
         loss_reduction='sum_over_batch_size'),
    dict(name='regression', head='regression', label_dimension=1,
         weighted=False, loss_reduction='sum_over_batch_size'),
    dict(name='regression_weighted', head='regression', label_dimension=1,
         weighted=True, loss_reduction='sum_over_batch_size'),
    dict(name='regression_dim2_weighted', head='regression', label_dimension=2,
         weighted=True, weight_shape='batch', loss_reduction='sum_over_batch_size'),
    dict(name='regression_dim2_per_logit_sum', head='regression',
         label_dimension=2, weighted=True, weight_shape='per_logit',
         loss_reduction='sum'),
]

if __name__ == '__main__':
  out = {'tf_version': tf.__version__, 'cases': []}
  for c in CASES:
    out['cases'].append(run_case(c, [5, 9, 4]))
  # A large binary case so the AUC buckets fill.
  big = dict(name='binary_big', head='binary', weighted=True,
             loss_reduction='sum_over_batch_size')
  out['cases'].append(run_case(big, [120, 150, 80]))
  json.dump(out, sys.stdout, indent=None, separators=(',', ':'))
