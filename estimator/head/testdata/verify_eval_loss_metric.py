"""Checks against TF 2.15 that Estimator.evaluate's `loss` is the unweighted mean of
the per-batch training losses (not average_loss). Run with the oracle venv;
prints both numbers. Not a test input: documents a fact head.h relies on.
"""
import os, tempfile
os.environ['TF_CPP_MIN_LOG_LEVEL']='3'
import numpy as np, tensorflow as tf
tf.compat.v1.logging.set_verbosity('ERROR')
R=np.random.RandomState(1)
sizes=[5,9,4]
batches=[(R.normal(size=(n,1)).astype(np.float32),(R.rand(n)<.5).astype(np.int64),R.uniform(0,2,size=(n,)).astype(np.float32)) for n in sizes]
def input_fn():
  def gen():
    for lg,lb,w in batches: yield {'lg':lg,'w':w}, lb
  return tf.data.Dataset.from_generator(gen, output_signature=({'lg':tf.TensorSpec([None,1],tf.float32),'w':tf.TensorSpec([None],tf.float32)},tf.TensorSpec([None],tf.int64)))
head=tf.estimator.BinaryClassHead(weight_column='w')
def model_fn(features, labels, mode):
  v=tf.compat.v1.get_variable('v',initializer=0.0)
  logits=features['lg']+0.0*v
  return head.create_estimator_spec(features=features,mode=mode,labels=labels,logits=logits,train_op_fn=lambda l: tf.no_op())
est=tf.estimator.Estimator(model_fn, model_dir=tempfile.mkdtemp())
r=est.evaluate(input_fn, steps=3)
per=[]
for lg,lb,w in batches:
  per.append(float(head.loss(labels=lb,logits=lg,features={'w':w})))
print('estimator eval loss', r['loss'], 'mean of batch losses', np.mean(per), 'average_loss', r['average_loss'])
