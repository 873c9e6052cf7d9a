"""Generates feature_column_goldens.json with TensorFlow as the oracle.

Run: /work/tfvenv/bin/python estimator/testdata/make_feature_column_goldens.py
(TF 2.15). Each case holds the job-file JSON of its feature columns, the raw
features and what TF's tf.feature_column + tf.keras.layers.DenseFeatures
(or get_sparse_tensors, for categorical columns) return for them.
feature_column_golden_test.cc builds the same columns with Estuary's JSON
builder and compares.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.feature_column import feature_column_v2 as fc2  # noqa: E402

fc = tf.feature_column
HERE = os.path.dirname(os.path.abspath(__file__))
TF_DTYPES = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}


def tf_features(features):
  out = {}
  for key, f in features.items():
    dt = TF_DTYPES[f["dtype"]]
    if f.get("sparse"):
      idx = np.array(list(zip(f["rows"], f["cols"])), dtype=np.int64).reshape(-1, 2)
      out[key] = tf.SparseTensor(idx, tf.constant(f["values"], dtype=dt),
                                 [f["batch_size"], f["max_len"]])
    else:
      out[key] = tf.reshape(tf.constant(f["values"], dtype=dt), f["shape"])
  return out


def build_columns(specs, tables):
  """Mirrors Estuary's JSON builder (feature_column_builder.h)."""
  by_ref = {}
  cols = []

  def ref(name):
    return by_ref[name]

  for s in specs:
    t = s["type"]
    if t == "numeric":
      norm = s.get("normalizer")
      fn = None
      if norm:
        m, sd = norm.get("mean", 0.0), norm.get("stddev", 1.0)
        fn = lambda x, m=m, sd=sd: (x - m) / sd
      c = fc.numeric_column(s["key"], shape=tuple(s.get("shape", [1])),
                            default_value=s.get("default_value"), normalizer_fn=fn)
    elif t == "bucketized":
      c = fc.bucketized_column(ref(s["source_column"]), boundaries=s["boundaries"])
    elif t == "categorical_with_vocabulary_list":
      dt = tf.int64 if s.get("dtype") in ("int64", "int32") else tf.string
      vocab = [int(v) for v in s["vocabulary_list"]] if dt == tf.int64 else s["vocabulary_list"]
      c = fc.categorical_column_with_vocabulary_list(
          s["key"], vocab, dtype=dt, default_value=s.get("default_value", -1),
          num_oov_buckets=s.get("num_oov_buckets", 0))
    elif t == "categorical_with_vocabulary_file":
      dt = tf.int64 if s.get("dtype") in ("int64", "int32") else tf.string
      c = fc.categorical_column_with_vocabulary_file(
          s["key"], os.path.join(HERE, s["vocabulary_file"]),
          vocabulary_size=s.get("vocabulary_size"), dtype=dt,
          default_value=s.get("default_value", -1) if not s.get("num_oov_buckets") else None,
          num_oov_buckets=s.get("num_oov_buckets", 0))
    elif t == "categorical_with_hash_bucket":
      dt = tf.int64 if s.get("dtype") in ("int64", "int32") else tf.string
      c = fc.categorical_column_with_hash_bucket(s["key"], s["hash_bucket_size"], dtype=dt)
    elif t == "categorical_with_identity":
      c = fc.categorical_column_with_identity(s["key"], s["num_buckets"],
                                              default_value=s.get("default_value"))
    elif t == "crossed":
      keys = []
      for k in s["keys"]:
        obj = by_ref.get(k)
        use_col = obj is not None and (
            k in named or isinstance(obj, (fc2.BucketizedColumn, fc2.CrossedColumn)))
        keys.append(obj if use_col else k)
      c = fc.crossed_column(keys, s["hash_bucket_size"])
    elif t == "indicator":
      c = fc.indicator_column(ref(s["categorical_column"]))
    elif t == "embedding":
      cat = ref(s["categorical_column"])
      name = cat.name + "_embedding"
      c = fc.embedding_column(cat, s["dimension"], combiner=s.get("combiner", "mean"),
                              initializer=tf.constant_initializer(np.array(tables[name])),
                              max_norm=s.get("max_norm"))
    elif t == "weighted_categorical":
      c = fc.weighted_categorical_column(ref(s["categorical_column"]), s["weight_feature_key"])
    else:
      raise ValueError(t)
    by_ref[s.get("name", c.name)] = c
    cols.append(c)
  return cols, by_ref


named = set()
cases = []


def dense_case(title, specs, features, tables=None):
  global named
  named = {s["name"] for s in specs if "name" in s}
  cols, _ = build_columns(specs, tables or {})
  dense_cols = [c for c in cols if isinstance(c, fc2.DenseColumn)]
  layer = tf.keras.layers.DenseFeatures(dense_cols)
  out = layer(tf_features(features)).numpy()
  cases.append({"title": title, "kind": "dense", "columns": specs, "features": features,
                "tables": tables or {}, "expect": out.tolist(),
                "order": [c.name for c in sorted(dense_cols, key=lambda c: c.name)]})


def ids_case(title, specs, features, column):
  global named
  named = {s["name"] for s in specs if "name" in s}
  _, by_ref = build_columns(specs, {})
  c = by_ref[column]
  pair = c.get_sparse_tensors(fc2.FeatureTransformationCache(tf_features(features)), None)
  ids = pair.id_tensor
  case = {"title": title, "kind": "ids", "columns": specs, "features": features,
          "column": column, "rows": ids.indices[:, 0].numpy().tolist(),
          "ids": ids.values.numpy().tolist(), "batch_size": int(ids.dense_shape[0])}
  if pair.weight_tensor is not None:
    case["weights"] = pair.weight_tensor.values.numpy().tolist()
  cases.append(case)


def dense(dtype, shape, values):
  return {"dtype": dtype, "shape": shape, "values": values}


def sparse(dtype, batch_size, entries):
  """entries: list of per-row value lists."""
  rows, cols, vals = [], [], []
  for r, row in enumerate(entries):
    for c, v in enumerate(row):
      rows.append(r)
      cols.append(c)
      vals.append(v)
  return {"dtype": dtype, "sparse": True, "batch_size": batch_size,
          "max_len": max([len(r) for r in entries] + [1]), "rows": rows, "cols": cols,
          "values": vals}


# ---- raw hashing: StringToHashBucketFast
STRINGS = ["", " ", "a", "b", "A", "hello", "Hello, World!", "héllo", "日本語", "🙂",
           "naïve café", "a" * 1000, "0", "-1", "12345678901234567890", "tab\there",
           "new\nline", "nul\0byte", "x" * 17, "y" * 33, "z" * 65, "quick brown fox"]
BUCKETS = [1, 2, 10, 1000, 2**31 - 1, 2**62, 2**63 - 1]
hash_fast = []
for n in BUCKETS:
  got = tf.strings.to_hash_bucket_fast(tf.constant(STRINGS), n).numpy().tolist()
  hash_fast += [{"s": s, "buckets": n, "id": i} for s, i in zip(STRINGS, got)]

# ---- raw crosses: SparseCrossHashed with crossed_column's key, num_buckets 0
cross_raw = []
for a, b in [("a", "b"), ("", ""), ("日本", "x"), ("hello", "world")]:
  v = tf.sparse.cross_hashed([tf.constant([[a]]), tf.constant([[b]])], num_buckets=0,
                             hash_key=0xDECAFCAFFE).values.numpy()[0]
  cross_raw.append({"a": a, "b": b, "num_buckets": 0, "id": int(v)})
for a, b in [(3, "x"), (-1, "x"), (0, "y"), (2**40, "z")]:
  v = tf.sparse.cross_hashed([tf.constant([[a]], tf.int64), tf.constant([[b]])], num_buckets=0,
                             hash_key=0xDECAFCAFFE).values.numpy()[0]
  cross_raw.append({"a_int": a, "b": b, "num_buckets": 0, "id": int(v)})

# ---- hash bucket columns
ids_case("hash bucket strings (dense '' dropped)",
         [{"type": "categorical_with_hash_bucket", "key": "s", "hash_bucket_size": 100}],
         {"s": dense("string", [6, 1], ["", "a", "日本語", "🙂", "hello", " "])}, "s")
ids_case("hash bucket strings sparse ('' kept)",
         [{"type": "categorical_with_hash_bucket", "key": "s", "hash_bucket_size": 1000}],
         {"s": sparse("string", 3, [["", "x"], [], ["héllo", "a", "a"]])}, "s")
ids_case("hash bucket int64 dense (-1 dropped)",
         [{"type": "categorical_with_hash_bucket", "key": "n", "hash_bucket_size": 1000,
           "dtype": "int64"}],
         {"n": dense("int64", [3, 2], [0, 1, -1, 42, 2**40, -7])}, "n")
ids_case("hash bucket int64 sparse",
         [{"type": "categorical_with_hash_bucket", "key": "n", "hash_bucket_size": 97,
           "dtype": "int64"}],
         {"n": sparse("int64", 2, [[-1, 5], [123456789012]])}, "n")

# ---- vocabularies
ids_case("vocab list with OOV buckets",
         [{"type": "categorical_with_vocabulary_list", "key": "c",
           "vocabulary_list": ["us", "uk", "fr", "日本"], "num_oov_buckets": 3}],
         {"c": dense("string", [7, 1], ["us", "fr", "de", "", "日本", "xx", "UK"])}, "c")
ids_case("vocab list default -1",
         [{"type": "categorical_with_vocabulary_list", "key": "c",
           "vocabulary_list": ["us", "uk", "fr"]}],
         {"c": sparse("string", 3, [["us", "zz"], [], ["fr", "uk", "q"]])}, "c")
ids_case("vocab list default_value 2",
         [{"type": "categorical_with_vocabulary_list", "key": "c",
           "vocabulary_list": ["us", "uk", "fr"], "default_value": 2}],
         {"c": dense("string", [3], ["uk", "zz", "us"])}, "c")
ids_case("int64 vocab list with OOV",
         [{"type": "categorical_with_vocabulary_list", "key": "n", "dtype": "int64",
           "vocabulary_list": ["7", "3", "100"], "num_oov_buckets": 5}],
         {"n": dense("int64", [6, 1], [3, 7, 5, 100, 2**40, -1])}, "n")
ids_case("vocab file truncated, OOV",
         [{"type": "categorical_with_vocabulary_file", "key": "f", "vocabulary_file": "vocab.txt",
           "vocabulary_size": 3, "num_oov_buckets": 2}],
         {"f": dense("string", [5], ["apple", "date", "cherry", "kiwi", "banana"])}, "f")
ids_case("int64 vocab file",
         [{"type": "categorical_with_vocabulary_file", "key": "f", "dtype": "int64",
           "vocabulary_file": "vocab_int.txt"}],
         {"f": dense("int64", [4], [20, 40, 50, 10])}, "f")

# ---- identity
ids_case("identity with default",
         [{"type": "categorical_with_identity", "key": "i", "num_buckets": 5,
           "default_value": 0}],
         {"i": dense("int64", [3, 2], [1, 4, 5, -1, -3, 2])}, "i")

ids_case("identity without default passes out-of-range through",
         [{"type": "categorical_with_identity", "key": "i", "num_buckets": 3}],
         {"i": sparse("int64", 2, [[0, 3, -2], [7]])}, "i")
dense_case("indicator ignores out-of-range identity ids",
           [{"type": "categorical_with_identity", "key": "i", "num_buckets": 3},
            {"type": "indicator", "categorical_column": "i"}],
           {"i": sparse("int64", 2, [[0, 3, -2, 0], [7, 2]])})

# ---- bucketized
ids_case("bucketized edges as ids",
         [{"type": "numeric", "key": "x", "shape": [2]},
          {"type": "bucketized", "source_column": "x", "boundaries": [-1, 0, 0.1, 10]}],
         {"x": dense("float32", [3, 2], [-1.0, -1.0000001, 0.0, 0.1, 0.099999994, 10.0])},
         "x_bucketized")
dense_case("bucketized edges one-hot",
           [{"type": "numeric", "key": "x"},
            {"type": "bucketized", "source_column": "x", "boundaries": [-1, 0, 0.1, 10]}],
           {"x": dense("float32", [8, 1],
                       [-5, -1.0, -0.0, 0.0, 0.1, 0.10000001, 9.999999, 1e30])})

# ---- crosses
ids_case("cross 2 string keys, dense with ''",
         [{"type": "crossed", "keys": ["a", "b"], "hash_bucket_size": 1000}],
         {"a": dense("string", [3, 1], ["x", "", "日本"]),
          "b": dense("string", [3, 1], ["y", "z", ""])}, "a_X_b")
ids_case("cross 3 keys multivalent (order)",
         [{"type": "crossed", "keys": ["a", "b", "c"], "hash_bucket_size": 100000}],
         {"a": sparse("string", 3, [["a1", "a2"], ["p"], []]),
          "b": sparse("string", 3, [["b1", "b2", "b3"], ["q"], ["r"]]),
          "c": dense("string", [3, 2], ["c1", "c2", "c3", "c4", "c5", "c6"])}, "a_X_b_X_c")
ids_case("cross string x int64",
         [{"type": "crossed", "keys": ["s", "n"], "hash_bucket_size": 5000}],
         {"s": dense("string", [4], ["a", "b", "a", "c"]),
          "n": dense("int64", [4], [1, -1, 2**40, 0])}, "n_X_s")
ids_case("cross with bucketized (shape 2) and string",
         [{"type": "numeric", "key": "age", "shape": [2]},
          {"type": "bucketized", "source_column": "age", "boundaries": [18, 30, 65]},
          {"type": "crossed", "keys": ["age_bucketized", "country"], "hash_bucket_size": 1000}],
         {"age": dense("float32", [2, 2], [17, 30, 70, 25]),
          "country": sparse("string", 2, [["us", "fr"], ["de"]])}, "age_bucketized_X_country")
ids_case("cross named vocab column (OOV -1 kept) x int",
         [{"type": "categorical_with_vocabulary_list", "key": "c", "name": "c_vocab",
           "vocabulary_list": ["us", "uk"]},
          {"type": "crossed", "keys": ["c_vocab", "n"], "hash_bucket_size": 777}],
         {"c": dense("string", [3], ["uk", "zz", "us"]),
          "n": dense("int64", [3], [5, 6, 7])}, "c_X_n")
ids_case("nested cross",
         [{"type": "crossed", "keys": ["a", "b"], "hash_bucket_size": 10, "name": "ab"},
          {"type": "crossed", "keys": ["ab", "c"], "hash_bucket_size": 999}],
         {"a": dense("string", [2], ["x", "y"]), "b": dense("string", [2], ["u", "v"]),
          "c": dense("int64", [2], [1, 2])}, "a_X_b_X_c")

# ---- weighted
ids_case("weighted categorical ids and weights",
         [{"type": "categorical_with_identity", "key": "i", "num_buckets": 10},
          {"type": "weighted_categorical", "categorical_column": "i", "weight_feature_key": "w"}],
         {"i": sparse("int64", 2, [[1, 3, 1], [7]]),
          "w": sparse("float32", 2, [[0.5, 2.0, 1.5], [-1.0]])}, "i_weighted_by_w")

# ---- numeric
dense_case("numeric shape, normalizer, int input",
           [{"type": "numeric", "key": "p", "shape": [2, 2], "normalizer": {"mean": 1.5,
                                                                           "stddev": 2.0}},
            {"type": "numeric", "key": "k"}],
           {"p": dense("float32", [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]),
            "k": dense("int64", [2], [3, -4])})

# ---- indicator
dense_case("indicator counts, weighted sums",
           [{"type": "categorical_with_vocabulary_list", "key": "c", "name": "cv",
             "vocabulary_list": ["a", "b", "c"], "num_oov_buckets": 1},
            {"type": "indicator", "categorical_column": "cv"},
            {"type": "categorical_with_identity", "key": "i", "num_buckets": 4},
            {"type": "weighted_categorical", "categorical_column": "i", "weight_feature_key": "w",
             "name": "iw"},
            {"type": "indicator", "categorical_column": "iw"},
            {"type": "categorical_with_vocabulary_list", "key": "d", "name": "dv",
             "vocabulary_list": ["p", "q"]},
            {"type": "indicator", "categorical_column": "dv"}],
           {"c": sparse("string", 3, [["a", "a", "b"], [], ["zz", "c"]]),
            "i": sparse("int64", 3, [[0, 2, 2], [3], []]),
            "w": sparse("float32", 3, [[0.5, 1.0, 2.5], [4.0], []]),
            "d": dense("string", [3], ["q", "nope", "p"])})

# ---- embeddings
TABLE5 = (np.arange(15, dtype=np.float32).reshape(5, 3) * 0.25 - 1.0).tolist()
for combiner in ["sum", "mean", "sqrtn"]:
  dense_case(f"embedding {combiner} (empty row, -1 id)",
             [{"type": "categorical_with_vocabulary_list", "key": "c", "name": "cv",
               "vocabulary_list": ["a", "b", "c", "d", "e"]},
              {"type": "embedding", "categorical_column": "cv", "dimension": 3,
               "combiner": combiner}],
             {"c": sparse("string", 4, [["a", "c", "c"], [], ["zz"], ["e", "zz", "b"]])},
             {"c_embedding": TABLE5})
  dense_case(f"weighted embedding {combiner} (weights <= 0 dropped)",
             [{"type": "categorical_with_identity", "key": "i", "num_buckets": 5},
              {"type": "weighted_categorical", "categorical_column": "i",
               "weight_feature_key": "w", "name": "iw"},
              {"type": "embedding", "categorical_column": "iw", "dimension": 3,
               "combiner": combiner}],
             {"i": sparse("int64", 3, [[0, 4, 2], [1, 3], [2]]),
              "w": sparse("float32", 3, [[0.5, 2.0, -1.0], [0.0, 3.0], [1.5]])},
             {"i_weighted_by_w_embedding": TABLE5})
dense_case("embedding max_norm",
           [{"type": "categorical_with_identity", "key": "i", "num_buckets": 5},
            {"type": "embedding", "categorical_column": "i", "dimension": 3, "combiner": "sum",
             "max_norm": 1.0}],
           {"i": sparse("int64", 2, [[0, 4], [2]])}, {"i_embedding": TABLE5})

# ---- DenseFeatures order
dense_case("DenseFeatures sorts by name",
           [{"type": "numeric", "key": "zeta"},
            {"type": "numeric", "key": "Alpha", "shape": [2]},
            {"type": "numeric", "key": "mid"},
            {"type": "bucketized", "source_column": "mid", "boundaries": [0.5]},
            {"type": "categorical_with_identity", "key": "b", "num_buckets": 3},
            {"type": "indicator", "categorical_column": "b"},
            {"type": "embedding", "categorical_column": "b", "dimension": 2, "combiner": "sum"},
            {"type": "numeric", "key": "b_"}],
           {"zeta": dense("float32", [2], [1, 2]),
            "Alpha": dense("float32", [2, 2], [3, 4, 5, 6]),
            "mid": dense("float32", [2], [0.2, 0.7]),
            "b": dense("int64", [2], [2, 0]),
            "b_": dense("float32", [2], [8, 9])},
           {"b_embedding": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]})

# ---- embedding gradient (safe_embedding_lookup_sparse, d/d table)
grads = []
for combiner in ["sum", "mean", "sqrtn"]:
  table = tf.Variable(np.array(TABLE5, dtype=np.float32))
  sp_ids = tf.SparseTensor([[0, 0], [0, 1], [0, 2], [1, 0], [2, 0]], tf.constant([0, 4, 0, 2, 3],
                                                                                  tf.int64), [4, 3])
  sp_w = tf.SparseTensor(sp_ids.indices, tf.constant([0.5, 2.0, 1.0, 3.0, -1.0]), [4, 3])
  upstream = np.arange(12, dtype=np.float32).reshape(4, 3) * 0.1 + 0.05
  with tf.GradientTape() as tape:
    out = tf.nn.safe_embedding_lookup_sparse(table, sp_ids, sp_w, combiner=combiner)
    loss = tf.reduce_sum(out * upstream)
  g = tf.convert_to_tensor(tape.gradient(loss, table)).numpy()
  grads.append({"combiner": combiner, "table": TABLE5, "batch_size": 4,
                "rows": [0, 0, 0, 1, 2], "ids": [0, 4, 0, 2, 3],
                "weights": [0.5, 2.0, 1.0, 3.0, -1.0], "upstream": upstream.tolist(),
                "output": out.numpy().tolist(), "dense_grad": g.tolist()})

with open(os.path.join(HERE, "feature_column_goldens.json"), "w") as f:
  json.dump({"tf_version": tf.__version__, "hash_fast": hash_fast, "cross_raw": cross_raw,
             "cases": cases, "embedding_grads": grads}, f, indent=None, ensure_ascii=False)
  f.write("\n")
print(len(hash_fast), len(cross_raw), len(cases), len(grads))
