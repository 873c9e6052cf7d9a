"""Writes optimizer_goldens.json: TF 2.15 legacy Keras optimizers (the ones
tf.estimator's premade estimators build from 'Adagrad', 'Adam', 'Ftrl',
'RMSProp', 'SGD') applied densely and sparsely (IndexedSlices) for 3 steps,
and sparsely with repeated indices ("sparse_dup": TF sums the duplicates
first, _deduplicate_indexed_slices, and applies once).

Run: /work/main/.venv-tf/bin/python common/testdata/make_optimizer_goldens.py
"""
import json
import os

import numpy as np
import tensorflow as tf

L = tf.keras.optimizers.legacy

CASES = [
    ("sgd", {"type": "sgd", "learning_rate": 0.1}, lambda: L.SGD(learning_rate=0.1)),
    ("momentum", {"type": "momentum", "learning_rate": 0.1, "momentum": 0.9},
     lambda: L.SGD(learning_rate=0.1, momentum=0.9)),
    ("nesterov", {"type": "momentum", "learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True},
     lambda: L.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("adagrad", {"type": "adagrad", "learning_rate": 0.1}, lambda: L.Adagrad(learning_rate=0.1)),
    ("adagrad_init", {"type": "adagrad", "learning_rate": 0.3, "initial_accumulator_value": 0.5,
                      "epsilon": 1e-3},
     lambda: L.Adagrad(learning_rate=0.3, initial_accumulator_value=0.5, epsilon=1e-3)),
    ("adam", {"type": "adam", "learning_rate": 0.01}, lambda: L.Adam(learning_rate=0.01)),
    ("adam_params", {"type": "adam", "learning_rate": 0.05, "beta1": 0.8, "beta2": 0.9,
                     "epsilon": 1e-3},
     lambda: L.Adam(learning_rate=0.05, beta_1=0.8, beta_2=0.9, epsilon=1e-3)),
    ("ftrl", {"type": "ftrl", "learning_rate": 0.1}, lambda: L.Ftrl(learning_rate=0.1)),
    ("ftrl_reg", {"type": "ftrl", "learning_rate": 0.2, "l1_regularization_strength": 0.05,
                  "l2_regularization_strength": 0.1},
     lambda: L.Ftrl(learning_rate=0.2, l1_regularization_strength=0.05,
                    l2_regularization_strength=0.1)),
    ("ftrl_shrink", {"type": "ftrl", "learning_rate": 0.2, "learning_rate_power": -0.7,
                     "initial_accumulator_value": 0.3, "l1_regularization_strength": 0.01,
                     "l2_regularization_strength": 0.02,
                     "l2_shrinkage_regularization_strength": 0.5},
     lambda: L.Ftrl(learning_rate=0.2, learning_rate_power=-0.7, initial_accumulator_value=0.3,
                    l1_regularization_strength=0.01, l2_regularization_strength=0.02,
                    l2_shrinkage_regularization_strength=0.5)),
    ("rmsprop", {"type": "rmsprop", "learning_rate": 0.01}, lambda: L.RMSprop(learning_rate=0.01)),
    ("rmsprop_centered", {"type": "rmsprop", "learning_rate": 0.01, "centered": True, "rho": 0.8},
     lambda: L.RMSprop(learning_rate=0.01, centered=True, rho=0.8)),
    ("rmsprop_momentum", {"type": "rmsprop", "learning_rate": 0.01, "momentum": 0.5},
     lambda: L.RMSprop(learning_rate=0.01, momentum=0.5)),
    ("rmsprop_momentum_centered", {"type": "rmsprop", "learning_rate": 0.01, "momentum": 0.5,
                                   "centered": True},
     lambda: L.RMSprop(learning_rate=0.01, momentum=0.5, centered=True)),
]

rng = np.random.RandomState(7)
VAR0 = rng.uniform(-1, 1, size=(4, 3)).astype(np.float32)
DENSE_GRADS = [rng.uniform(-1, 1, size=(4, 3)).astype(np.float32) for _ in range(3)]
SPARSE_ROWS = [[2, 0], [3], [0, 1, 2]]
SPARSE_GRADS = [rng.uniform(-1, 1, size=(len(r), 3)).astype(np.float32) for r in SPARSE_ROWS]
# Repeated rows, as a batch's ids repeat (drawn after the above so their
# values stay as they were).
DUP_ROWS = [[2, 0, 2], [3, 3, 3], [1, 0, 1, 2, 0]]
DUP_GRADS = [rng.uniform(-1, 1, size=(len(r), 3)).astype(np.float32) for r in DUP_ROWS]


def run(make, sparse, rows=SPARSE_ROWS, grads=SPARSE_GRADS):
  opt = make()
  var = tf.Variable(VAR0)
  steps = []
  for i in range(3):
    if sparse:
      g = tf.IndexedSlices(tf.constant(grads[i]), tf.constant(rows[i], tf.int64),
                           tf.constant([4, 3], tf.int64))
    else:
      g = tf.constant(DENSE_GRADS[i])
    opt.apply_gradients([(g, var)])
    slots = {n: opt.get_slot(var, n).numpy().tolist() for n in opt.get_slot_names()}
    steps.append({"var": var.numpy().tolist(), "slots": slots})
  return steps


out = {
    "var0": VAR0.tolist(),
    "dense_grads": [g.tolist() for g in DENSE_GRADS],
    "sparse_rows": SPARSE_ROWS,
    "sparse_grads": [g.tolist() for g in SPARSE_GRADS],
    "sparse_dup_rows": DUP_ROWS,
    "sparse_dup_grads": [g.tolist() for g in DUP_GRADS],
    "cases": [],
    "defaults": {},
}
for name, spec, make in CASES:
  out["cases"].append({"name": name, "spec": spec, "dense": run(make, False),
                       "sparse": run(make, True),
                       "sparse_dup": run(make, True, DUP_ROWS, DUP_GRADS)})
for cls in ["SGD", "Adagrad", "Adam", "Ftrl", "RMSprop"]:
  cfg = getattr(L, cls)().get_config()
  out["defaults"][cls] = {k: (float(v) if isinstance(v, (np.floating, float)) else v)
                          for k, v in cfg.items()}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizer_goldens.json")
with open(path, "w") as f:
  json.dump(out, f, indent=None, separators=(",", ":"))
  f.write("\n")
print(json.dumps(out["defaults"], indent=1))
