"""Writes nn_goldens.json: TF 2.15 forward/backward of a small DNN (the
layers tf.estimator's DNN uses: Dense(activation) -> [BatchNormalization
(momentum=0.999)] per hidden layer, Dense logits) and of every activation.

Run: /work/main/.venv-tf/bin/python estimator/nn/testdata/make_nn_goldens.py
"""
import json
import os

import numpy as np
import tensorflow as tf

rng = np.random.RandomState(3)
f32 = lambda a: np.asarray(a, np.float32)
X = f32(rng.uniform(-1, 1, (5, 3)))
W0 = f32(rng.uniform(-1, 1, (3, 4)))
B0 = f32(rng.uniform(-0.2, 0.2, (4,)))
W1 = f32(rng.uniform(-1, 1, (4, 2)))
B1 = f32(rng.uniform(-0.2, 0.2, (2,)))
GAMMA = f32(rng.uniform(0.5, 1.5, (4,)))
BETA = f32(rng.uniform(-0.2, 0.2, (4,)))
R = f32(rng.uniform(-1, 1, (5, 2)))  # loss = sum(logits * R)

ACTS = ["relu", "tanh", "sigmoid", "elu", "selu", "softplus", "linear"]


def mlp(activation, batch_norm):
  h = tf.keras.layers.Dense(4, activation=activation)
  bn = tf.keras.layers.BatchNormalization(momentum=0.999) if batch_norm else None
  out = tf.keras.layers.Dense(2)
  x = tf.Variable(X)
  h.build((None, 3)); out.build((None, 4))
  h.kernel.assign(W0); h.bias.assign(B0); out.kernel.assign(W1); out.bias.assign(B1)
  params = {"dnn/hiddenlayer_0/kernel": h.kernel, "dnn/hiddenlayer_0/bias": h.bias,
            "dnn/logits/kernel": out.kernel, "dnn/logits/bias": out.bias}
  if bn is not None:
    bn.build((None, 4)); bn.gamma.assign(GAMMA); bn.beta.assign(BETA)
    params["dnn/hiddenlayer_0/batchnorm_0/gamma"] = bn.gamma
    params["dnn/hiddenlayer_0/batchnorm_0/beta"] = bn.beta
  with tf.GradientTape() as tape:
    net = h(x)
    if bn is not None:
      net = bn(net, training=True)
    logits = out(net)
    loss = tf.reduce_sum(logits * R)
  names = sorted(params)
  grads = tape.gradient(loss, [params[n] for n in names] + [x])
  res = {"activation": activation, "batch_norm": batch_norm,
         "logits": logits.numpy().tolist(),
         "grads": {n: g.numpy().tolist() for n, g in zip(names, grads[:-1])},
         "dx": grads[-1].numpy().tolist()}
  if bn is not None:
    res["moving_mean"] = bn.moving_mean.numpy().tolist()
    res["moving_variance"] = bn.moving_variance.numpy().tolist()
    res["inference_logits"] = out(bn(h(X), training=False)).numpy().tolist()
  return res


z = f32(np.linspace(-3, 3, 13))
acts = {}
for a in ACTS:
  zt = tf.constant(z)
  with tf.GradientTape() as tape:
    tape.watch(zt)
    y = tf.keras.activations.get(a)(zt)
  acts[a] = {"y": y.numpy().tolist(), "dy_dz": tape.gradient(y, zt).numpy().tolist()}

out = {"x": X.tolist(), "w0": W0.tolist(), "b0": B0.tolist(), "w1": W1.tolist(),
       "b1": B1.tolist(), "gamma": GAMMA.tolist(), "beta": BETA.tolist(), "r": R.tolist(),
       "mlp": [mlp("relu", False), mlp("tanh", True), mlp("elu", False)],
       "z": z.tolist(), "activations": acts}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_goldens.json")
with open(path, "w") as f:
  json.dump(out, f, separators=(",", ":"))
  f.write("\n")
