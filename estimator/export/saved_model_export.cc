#include "estimator/export/saved_model_export.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tf_bundle/tensor_bundle.h"
#include "common/tf_bundle/tf_variables.h"
#include "common/tf_dtype.h"
#include "estimator/export/export_format.h"
#include "estimator/export/tf_graph.h"
#include "estimator/feature_column_builder.h"
#include "estimator/nn/activation.h"
#include "proto/tf/variable.pb.h"

namespace estuary {
namespace export_format {
namespace {

using tensorflow::DataType;
using tensorflow::DT_FLOAT;
using tensorflow::DT_INT32;
using tensorflow::DT_INT64;
using tensorflow::DT_STRING;
using Kind = FeatureColumnKind;

constexpr char kLinearScope[] = "linear/linear_model/";
constexpr char kInputLayer[] = "dnn/input_from_feature_columns/input_layer/";
constexpr float kBatchNormEpsilon = 1e-3f;        // estimator/nn/layers.h
constexpr int64_t kCrossHashKey = 956888297470;   // 0xDECAFCAFFE, TF's sparse_cross key

// TF's shape of an Estuary variable (tf_bundle's rule: biases and batch-norm
// parameters are 1-D in TF, [1, units] in Estuary).
std::vector<int64_t> VariableShape(const std::string& name, const RowMatrixXf& m) {
  return tf_bundle::TfShape(name, m.rows(), m.cols());
}

// A SparseTensor's three tensors (indices [N, 2] int64, values [N], dense
// shape [2] int64).
struct Sparse {
  std::string indices, values, shape;
  DataType dtype = DT_INT64;
};

// A raw feature as the receiver gives it: a dense tensor (fixed-length
// features; raw varlen ones too) and/or a sparse one.
struct RawFeature {
  std::optional<std::string> dense;
  DataType dtype = DT_FLOAT;
  std::optional<Sparse> sparse;
};

// A categorical column's ids: int64 values with each one's example row.
struct Ids {
  std::string values, rows;
};

// Builds the graph. Errors are sticky: the first one is kept in status_
// and the graph built so far is discarded by Build().
class Builder {
 public:
  Builder(const JobSpec& job, const Variables& vars, std::string receiver)
      : job_(job), vars_(vars), receiver_(std::move(receiver)) {}

  absl::StatusOr<SavedModelExport> Build();

 private:
  std::string N(const std::string& op, const std::string& name,
                const std::vector<std::string>& inputs, const std::vector<TfAttr>& attrs = {}) {
    absl::StatusOr<std::string> n = g_.Add(op, name, inputs, attrs);
    if (!n.ok()) {
      if (status_.ok()) status_ = n.status();
      return name;
    }
    return *n;
  }
  void Fail(absl::Status st) {
    if (status_.ok()) status_ = std::move(st);
  }
  absl::Status ColumnError(const FeatureColumnConfig& c, const std::string& what) {
    return c.where.Error(absl::StrCat(what, " (not in the SavedModel export)"));
  }

  // Small op wrappers (T: the element type).
  std::string Binary(const std::string& op, const std::string& name, const std::string& x,
                     const std::string& y, DataType t) {
    return N(op, name, {x, y}, {{"T", AttrType(t)}});
  }
  std::string Cast(const std::string& name, const std::string& x, DataType from, DataType to) {
    return N("Cast", name, {x}, {{"SrcT", AttrType(from)}, {"DstT", AttrType(to)}});
  }
  std::string Reshape(const std::string& name, const std::string& x, DataType t,
                      const std::vector<int32_t>& shape) {
    return N("Reshape", name,
             {x, g_.Int32s(name + "/shape", {static_cast<int64_t>(shape.size())}, shape)},
             {{"T", AttrType(t)}});
  }
  std::string Gather(const std::string& name, const std::string& params,
                     const std::string& indices, DataType t, int32_t axis = 0) {
    return N("GatherV2", name, {params, indices, g_.Int32s(name + "/axis", {}, {axis})},
             {{"Tparams", AttrType(t)}, {"Tindices", AttrType(DT_INT64)},
              {"Taxis", AttrType(DT_INT32)}});
  }
  // dim 0 of `x` as an int32 scalar.
  std::string Dim0(const std::string& name, const std::string& x, DataType t) {
    const std::string shape = N("Shape", name + "/Shape", {x}, {{"T", AttrType(t)}});
    return N("StridedSlice", name,
             {shape, g_.Int32s(name + "/stack", {1}, {0}), g_.Int32s(name + "/stack_1", {1}, {1}),
              g_.Int32s(name + "/stack_2", {1}, {1})},
             {{"T", AttrType(DT_INT32)}, {"Index", AttrType(DT_INT32)},
              {"shrink_axis_mask", AttrInt(1)}});
  }

  // A variable's value (VarHandleOp + ReadVariableOp on first use).
  std::string ReadVariable(const std::string& name);
  // Adds resource variable `name` (handle, initializer, read) and its
  // VariableDef; returns the read.
  std::string MakeVariable(const std::string& name, DataType dtype,
                           const std::vector<int64_t>& shape, bool trainable);

  // The receiver: fills features_ and the signature inputs.
  void ParsingReceiver();
  void RawReceiver();
  absl::StatusOr<Sparse> SparseFeature(const std::string& key);
  absl::StatusOr<RawFeature*> Feature(const std::string& key);

  absl::StatusOr<size_t> ColumnIndex(const std::string& ref) const;
  absl::StatusOr<size_t> IndexOf(const ColumnPtr& c) const;
  // The dense value [batch, width] of dense column i.
  absl::StatusOr<std::string> Dense(size_t i);
  // The numeric column i's normalized values [batch, d].
  absl::StatusOr<std::string> Numeric(size_t i);
  // Categorical column i's ids as a SparseTensor (int64 values).
  absl::StatusOr<Sparse> CategoricalSparse(size_t i);
  // Its ids in [0, num_buckets) with their rows.
  absl::StatusOr<Ids> ValidIds(size_t i);
  absl::StatusOr<std::string> VocabularyLookup(size_t i, const Sparse& in);
  // The crossed column's inputs: sparse (categorical columns and raw keys
  // given sparse) and dense (raw keys given dense), in TF's order.
  absl::Status CrossInputs(size_t i, std::vector<Sparse>* sparse,
                           std::vector<std::pair<std::string, DataType>>* dense);

  absl::StatusOr<std::string> LinearLogits(const std::vector<ColumnPtr>& columns,
                                           const std::string& out_name);
  absl::StatusOr<std::string> DnnLogits(const std::vector<ColumnPtr>& columns);
  absl::Status Head(const std::string& logits);
  absl::Status Saver(tensorflow::MetaGraphDef* meta);
  absl::Status Signatures(tensorflow::MetaGraphDef* meta);

  const JobSpec& job_;
  const Variables& vars_;
  const std::string receiver_;
  absl::Status status_;
  TfGraph g_;
  FeatureColumnSet set_;
  int64_t logits_dim_ = 1;

  std::string batch_;  // int32 scalar: the batch size
  std::map<std::string, RawFeature> features_;
  std::map<std::string, std::pair<std::string, DataType>> receiver_inputs_;  // key -> tensor
  std::map<size_t, std::string> dense_;
  std::map<size_t, Sparse> sparse_;
  std::map<size_t, Ids> ids_;
  std::map<std::string, std::string> read_;  // variable -> its ReadVariableOp
  std::vector<std::string> variable_order_;
  std::map<std::string, std::string> handles_;  // variable -> VarHandleOp
  struct VariableDefBytes {
    std::string name, bytes;
    bool trainable;
  };
  std::vector<VariableDefBytes> variable_defs_;  // in creation order
  std::vector<std::string> table_inits_;
  std::vector<std::pair<std::string, std::string>> asset_tensors_;  // tensor, asset name
  std::map<std::string, std::string> assets_;                         // asset name -> source
  // Prediction key -> (tensor, dtype, shape).
  struct Output {
    std::string tensor;
    DataType dtype;
    std::vector<int64_t> shape;
  };
  std::map<std::string, Output> predictions_;
  Output classify_classes_;
  Variables out_vars_;
};

std::string Builder::MakeVariable(const std::string& name, DataType dtype,
                                  const std::vector<int64_t>& shape, bool trainable) {
  // As tf.compat.v1.get_variable makes a resource variable: the handle,
  // a zeros initial value and its Assign (the initializer), and a read.
  const std::string handle =
      N("VarHandleOp", name, {},
        {{"dtype", AttrType(dtype)}, {"shape", AttrShape(shape)},
         {"shared_name", AttrString(name)}});
  tensorflow::TensorProto zeros;
  zeros.set_dtype(dtype);
  *zeros.mutable_tensor_shape() = TfShape(shape);
  if (dtype == DT_INT64) {
    zeros.add_int64_val(0);  // one value fills the shape
  } else {
    zeros.add_float_val(0.0f);
  }
  const std::string initial = g_.Constant(name + "/Initializer/zeros", zeros);
  const std::string assign =
      N("AssignVariableOp", name + "/Assign", {handle, initial}, {{"dtype", AttrType(dtype)}});
  const std::string read =
      N("ReadVariableOp", name + "/Read/ReadVariableOp", {handle}, {{"dtype", AttrType(dtype)}});
  handles_[name] = handle;
  read_[name] = read;
  tensorflow::VariableDef def;
  def.set_variable_name(handle + ":0");
  def.set_initial_value_name(initial + ":0");
  def.set_initializer_name(assign);
  def.set_snapshot_name(read + ":0");
  def.set_is_resource(true);
  def.set_trainable(trainable);
  if (!trainable) def.set_aggregation(tensorflow::VARIABLE_AGGREGATION_ONLY_FIRST_REPLICA);
  std::string bytes;
  def.SerializeToString(&bytes);
  variable_defs_.push_back({name, bytes, trainable});
  return read;
}

std::string Builder::ReadVariable(const std::string& name) {
  auto it = read_.find(name);
  if (it != read_.end()) return it->second;
  auto f = vars_.floats.find(name);
  if (f == vars_.floats.end()) {
    Fail(absl::InvalidArgumentError(absl::StrCat("the checkpoint has no variable '", name, "'")));
    return name;
  }
  variable_order_.push_back(name);
  out_vars_.floats[name] = f->second;
  // Moving statistics are not trained (TF's batch norm keeps them out of
  // trainable_variables).
  const bool trainable = !absl::EndsWith(name, "/moving_mean") &&
                         !absl::EndsWith(name, "/moving_variance");
  return MakeVariable(name, DT_FLOAT, VariableShape(name, f->second), trainable);
}

void Builder::ParsingReceiver() {
  absl::StatusOr<std::vector<data::FeatureSpec>> specs = ServingFeatureSpecs(job_);
  if (!specs.ok()) return Fail(specs.status());
  const std::string examples = N("Placeholder", "input_example_tensor", {},
                                 {{"dtype", AttrType(DT_STRING)}, {"shape", AttrShape({-1})}});
  receiver_inputs_["examples"] = {examples + ":0", DT_STRING};
  batch_ = N("Size", "ParseExample/batch_size", {examples}, {{"T", AttrType(DT_STRING)}});
  std::vector<std::string> sparse_keys, dense_keys, defaults;
  std::vector<DataType> sparse_types, dense_types;
  std::vector<std::vector<int64_t>> dense_shapes;
  for (const data::FeatureSpec& f : *specs) {
    if (const auto* fixed = std::get_if<data::FixedLenFeature>(&f)) {
      dense_keys.push_back(fixed->key);
      dense_types.push_back(ToTfDataType(fixed->dtype));
      dense_shapes.push_back(fixed->shape);
      std::vector<float> values;
      std::vector<int64_t> shape = {0};
      if (fixed->default_value.has_value()) {
        if (fixed->dtype != DType::kFloat || fixed->default_value->floats.size() != 1) {
          Fail(absl::InvalidArgumentError(
              absl::StrCat("feature '", fixed->key, "': only scalar float defaults export")));
          return;
        }
        values = fixed->default_value->floats;  // one value fills the shape
        shape = fixed->shape;
      }
      defaults.push_back(g_.Floats("ParseExample/Const", shape, values));
    } else {
      const auto& var = std::get<data::VarLenFeature>(f);
      sparse_keys.push_back(var.key);
      sparse_types.push_back(ToTfDataType(var.dtype));
    }
  }
  const int64_t s = static_cast<int64_t>(sparse_keys.size());
  const int64_t d = static_cast<int64_t>(dense_keys.size());
  std::vector<std::string> inputs = {
      examples, g_.Strings("ParseExample/ParseExampleV2/names", {0}, {}),
      g_.Strings("ParseExample/ParseExampleV2/sparse_keys", {s}, sparse_keys),
      g_.Strings("ParseExample/ParseExampleV2/dense_keys", {d}, dense_keys),
      g_.Strings("ParseExample/ParseExampleV2/ragged_keys", {0}, {})};
  inputs.insert(inputs.end(), defaults.begin(), defaults.end());
  const std::string parse =
      N("ParseExampleV2", "ParseExample/ParseExampleV2", inputs,
        {{"Tdense", AttrTypes(dense_types)},
         {"num_sparse", AttrInt(s)},
         {"sparse_types", AttrTypes(sparse_types)},
         {"ragged_value_types", AttrTypes({})},
         {"ragged_split_types", AttrTypes({})},
         {"dense_shapes", AttrShapes(dense_shapes)}});
  for (int64_t i = 0; i < s; ++i) {
    RawFeature& f = features_[sparse_keys[i]];
    f.dtype = sparse_types[i];
    f.sparse = Sparse{TfOutput(parse, i), TfOutput(parse, s + i), TfOutput(parse, 2 * s + i),
                      sparse_types[i]};
  }
  for (int64_t j = 0; j < d; ++j) {
    RawFeature& f = features_[dense_keys[j]];
    f.dtype = dense_types[j];
    f.dense = TfOutput(parse, 3 * s + j);
  }
}

void Builder::RawReceiver() {
  absl::StatusOr<std::vector<data::FeatureSpec>> specs = ServingFeatureSpecs(job_);
  if (!specs.ok()) return Fail(specs.status());
  std::string first;
  DataType first_type = DT_FLOAT;
  for (const data::FeatureSpec& f : *specs) {
    std::string key;
    DataType t;
    std::vector<int64_t> shape = {-1};
    if (const auto* fixed = std::get_if<data::FixedLenFeature>(&f)) {
      key = fixed->key;
      t = ToTfDataType(fixed->dtype);
      shape.insert(shape.end(), fixed->shape.begin(), fixed->shape.end());
    } else {
      const auto& var = std::get<data::VarLenFeature>(f);
      key = var.key;
      t = ToTfDataType(var.dtype);
      shape.push_back(-1);
    }
    const std::string p =
        N("Placeholder", key, {}, {{"dtype", AttrType(t)}, {"shape", AttrShape(shape)}});
    receiver_inputs_[key] = {p + ":0", t};
    RawFeature& raw = features_[key];
    raw.dtype = t;
    raw.dense = p;
    if (first.empty()) {
      first = p;
      first_type = t;
    }
  }
  if (first.empty()) return Fail(absl::InvalidArgumentError("the model reads no features"));
  batch_ = Dim0("batch_size", first, first_type);
}

absl::StatusOr<RawFeature*> Builder::Feature(const std::string& key) {
  auto it = features_.find(key);
  if (it == features_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("feature '", key, "' is not parsed"));
  }
  return &it->second;
}

// A dense raw input [batch, L] as a SparseTensor without its missing
// values ("" or -1), as tf.feature_column does for categorical columns.
absl::StatusOr<Sparse> Builder::SparseFeature(const std::string& key) {
  ASSIGN_OR_RETURN(RawFeature * f, Feature(key));
  if (f->sparse.has_value()) return *f->sparse;
  const std::string scope = absl::StrCat("to_sparse_input/", key);
  std::string x = *f->dense;
  const std::string missing = f->dtype == DT_STRING
                                  ? g_.Strings(scope + "/ignore_value", {}, {""})
                                  : g_.Int64s(scope + "/ignore_value", {}, {-1});
  const std::string keep = Binary("NotEqual", scope + "/NotEqual", x, missing, f->dtype);
  Sparse s;
  s.dtype = f->dtype;
  s.indices = N("Where", scope + "/indices", {keep});
  s.values = N("GatherNd", scope + "/values", {x, s.indices},
               {{"Tparams", AttrType(f->dtype)}, {"Tindices", AttrType(DT_INT64)}});
  s.shape = N("Shape", scope + "/dense_shape", {x},
              {{"T", AttrType(f->dtype)}, {"out_type", AttrType(DT_INT64)}});
  f->sparse = s;
  return s;
}

absl::StatusOr<size_t> Builder::ColumnIndex(const std::string& ref) const {
  for (size_t i = 0; i < set_.names().size(); ++i) {
    if (set_.names()[i] == ref) return i;
  }
  return absl::InvalidArgumentError(absl::StrCat("no feature column '", ref, "'"));
}

absl::StatusOr<size_t> Builder::IndexOf(const ColumnPtr& c) const {
  for (size_t i = 0; i < set_.columns().size(); ++i) {
    if (set_.columns()[i].get() == c.get()) return i;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("column '", c->name(), "' is not a feature_columns entry"));
}

absl::StatusOr<std::string> Builder::Numeric(size_t i) {
  const FeatureColumnConfig& c = job_.feature_columns[i];
  ASSIGN_OR_RETURN(RawFeature * f, Feature(c.key));
  if (!f->dense.has_value()) return ColumnError(c, "a numeric column needs a dense input");
  const std::string scope = absl::StrCat("input/", c.name.empty() ? c.key : c.name);
  int64_t width = 1;
  for (int64_t d : c.shape) width *= d;
  std::string x = *f->dense;
  if (f->dtype != DT_FLOAT) x = Cast(scope + "/Cast", x, f->dtype, DT_FLOAT);
  if (c.shape.size() != 1) x = Reshape(scope + "/Reshape", x, DT_FLOAT, {-1, static_cast<int32_t>(width)});
  if (c.normalizer.has_value()) {
    x = Binary("Sub", scope + "/sub", x,
               g_.Floats(scope + "/sub/y", {}, {static_cast<float>(c.normalizer->mean)}), DT_FLOAT);
    x = Binary("RealDiv", scope + "/truediv", x,
               g_.Floats(scope + "/truediv/y", {}, {static_cast<float>(c.normalizer->stddev)}),
               DT_FLOAT);
  }
  return x;
}

absl::StatusOr<std::string> Builder::Dense(size_t i) {
  if (auto it = dense_.find(i); it != dense_.end()) return it->second;
  const FeatureColumnConfig& c = job_.feature_columns[i];
  const ColumnPtr& col = set_.columns()[i];
  const std::string scope = absl::StrCat("input/", col->name());
  std::string out;
  switch (c.kind) {
    case Kind::kNumeric: {
      ASSIGN_OR_RETURN(out, Numeric(i));
      break;
    }
    case Kind::kBucketized: {
      ASSIGN_OR_RETURN(size_t src, ColumnIndex(c.source_column));
      ASSIGN_OR_RETURN(std::string x, Numeric(src));
      const int64_t buckets = static_cast<int64_t>(c.boundaries.size()) + 1;
      const std::string b = N("Bucketize", scope + "/Bucketize", {x},
                              {{"T", AttrType(DT_FLOAT)}, {"boundaries", AttrFloats(c.boundaries)}});
      const std::string one_hot =
          N("OneHot", scope + "/one_hot",
            {b, g_.Int32s(scope + "/one_hot/depth", {}, {static_cast<int32_t>(buckets)}),
             g_.Floats(scope + "/one_hot/on_value", {}, {1.0f}),
             g_.Floats(scope + "/one_hot/off_value", {}, {0.0f})},
            {{"T", AttrType(DT_FLOAT)}, {"TI", AttrType(DT_INT32)}});
      out = Reshape(scope + "/Reshape", one_hot, DT_FLOAT,
                    {-1, static_cast<int32_t>(col->dense_width())});
      break;
    }
    case Kind::kIndicator: {
      ASSIGN_OR_RETURN(size_t cat, ColumnIndex(c.categorical_column));
      ASSIGN_OR_RETURN(Ids ids, ValidIds(cat));
      const int64_t k = set_.columns()[cat]->num_buckets();
      const std::string one_hot =
          N("OneHot", scope + "/one_hot",
            {ids.values, g_.Int32s(scope + "/one_hot/depth", {}, {static_cast<int32_t>(k)}),
             g_.Floats(scope + "/one_hot/on_value", {}, {1.0f}),
             g_.Floats(scope + "/one_hot/off_value", {}, {0.0f})},
            {{"T", AttrType(DT_FLOAT)}});
      out = N("UnsortedSegmentSum", scope + "/counts", {one_hot, ids.rows, batch_},
              {{"T", AttrType(DT_FLOAT)}, {"Tindices", AttrType(DT_INT64)}});
      break;
    }
    case Kind::kEmbedding: {
      if (c.max_norm.has_value()) return ColumnError(c, "embedding max_norm");
      ASSIGN_OR_RETURN(size_t cat, ColumnIndex(c.categorical_column));
      ASSIGN_OR_RETURN(Ids ids, ValidIds(cat));
      const std::string table =
          ReadVariable(absl::StrCat(kInputLayer, col->name(), "/embedding_weights"));
      std::string op = "SparseSegmentMeanWithNumSegments";
      if (c.combiner == "sum") op = "SparseSegmentSumWithNumSegments";
      if (c.combiner == "sqrtn") op = "SparseSegmentSqrtNWithNumSegments";
      out = N(op, scope + "/embedding_lookup_sparse", {table, ids.values, ids.rows, batch_},
              {{"T", AttrType(DT_FLOAT)}, {"Tidx", AttrType(DT_INT64)},
               {"Tsegmentids", AttrType(DT_INT64)}});
      break;
    }
    default:
      return ColumnError(c, absl::StrCat("column '", col->name(), "' is not dense"));
  }
  dense_[i] = out;
  return out;
}

absl::StatusOr<std::string> Builder::VocabularyLookup(size_t i, const Sparse& in) {
  const FeatureColumnConfig& c = job_.feature_columns[i];
  const std::string scope = absl::StrCat("input/", set_.columns()[i]->name(), "_lookup");
  const DataType key_type = c.value_dtype == DType::kInt64 ? DT_INT64 : DT_STRING;
  if (in.dtype != key_type) {
    return ColumnError(c, absl::StrCat("feature '", c.key, "' is not of the vocabulary's dtype"));
  }
  const std::string table = N(
      "HashTableV2", scope + "/hash_table",
      {}, {{"key_dtype", AttrType(key_type)}, {"value_dtype", AttrType(DT_INT64)},
           {"shared_name", AttrString(absl::StrCat("hash_table_", scope))}});
  int64_t vocab_size = 0;
  if (c.kind == Kind::kVocabularyList) {
    std::string keys;
    if (key_type == DT_STRING) {
      vocab_size = static_cast<int64_t>(c.string_vocabulary.size());
      keys = g_.Strings(scope + "/Const", {vocab_size}, c.string_vocabulary);
    } else {
      vocab_size = static_cast<int64_t>(c.int_vocabulary.size());
      keys = g_.Int64s(scope + "/Const", {vocab_size}, c.int_vocabulary);
    }
    std::vector<int64_t> ids(vocab_size);
    for (int64_t k = 0; k < vocab_size; ++k) ids[k] = k;
    table_inits_.push_back(N("LookupTableImportV2", scope + "/table_init/LookupTableImportV2",
                             {table, keys, g_.Int64s(scope + "/ids", {vocab_size}, ids)},
                             {{"Tin", AttrType(key_type)}, {"Tout", AttrType(DT_INT64)}}));
  } else {
    vocab_size = set_.columns()[i]->num_buckets() - c.num_oov_buckets;
    std::string name = io::BaseName(c.vocabulary_file);
    if (auto it = assets_.find(name); it != assets_.end() && it->second != c.vocabulary_file) {
      name = absl::StrCat(i, "_", name);
    }
    assets_[name] = c.vocabulary_file;
    const std::string path = g_.Strings(scope + "/asset_path", {}, {name});
    asset_tensors_.push_back({path + ":0", name});
    table_inits_.push_back(
        N("InitializeTableFromTextFileV2", scope + "/table_init/InitializeTableFromTextFileV2",
          {table, path},
          {{"key_index", AttrInt(-2)}, {"value_index", AttrInt(-1)},
           {"vocab_size", AttrInt(vocab_size)}}));
  }
  const std::string found =
      N("LookupTableFindV2", scope + "/hash_table_Lookup/LookupTableFindV2",
        {table, in.values, g_.Int64s(scope + "/default_value", {}, {c.default_id})},
        {{"Tin", AttrType(key_type)}, {"Tout", AttrType(DT_INT64)}});
  if (c.num_oov_buckets <= 0) return found;
  std::string str = in.values;
  if (key_type == DT_INT64) str = N("AsString", scope + "/to_string", {str}, {{"T", AttrType(DT_INT64)}});
  const std::string hashed = N("StringToHashBucketFast", scope + "/hash_bucket", {str},
                               {{"num_buckets", AttrInt(c.num_oov_buckets)}});
  const std::string oov = Binary("AddV2", scope + "/oov", hashed,
                                 g_.Int64s(scope + "/oov/y", {}, {vocab_size}), DT_INT64);
  const std::string missing = Binary("Equal", scope + "/is_oov", found,
                                     g_.Int64s(scope + "/is_oov/y", {}, {-1}), DT_INT64);
  return N("SelectV2", scope + "/ids", {missing, oov, found}, {{"T", AttrType(DT_INT64)}});
}

absl::StatusOr<Sparse> Builder::CategoricalSparse(size_t i) {
  if (auto it = sparse_.find(i); it != sparse_.end()) return it->second;
  const FeatureColumnConfig& c = job_.feature_columns[i];
  const ColumnPtr& col = set_.columns()[i];
  const std::string scope = absl::StrCat("input/", col->name());
  Sparse out;
  switch (c.kind) {
    case Kind::kVocabularyList:
    case Kind::kVocabularyFile: {
      ASSIGN_OR_RETURN(Sparse in, SparseFeature(c.key));
      out = in;
      ASSIGN_OR_RETURN(out.values, VocabularyLookup(i, in));
      break;
    }
    case Kind::kHashBucket: {
      ASSIGN_OR_RETURN(Sparse in, SparseFeature(c.key));
      out = in;
      std::string str = in.values;
      if (in.dtype == DT_INT64) {
        str = N("AsString", scope + "/to_string", {str}, {{"T", AttrType(DT_INT64)}});
      } else if (in.dtype != DT_STRING) {
        return ColumnError(c, "a hash bucket column needs string or int64 values");
      }
      out.values = N("StringToHashBucketFast", scope + "/hash_bucket", {str},
                     {{"num_buckets", AttrInt(c.hash_bucket_size)}});
      break;
    }
    case Kind::kIdentity: {
      ASSIGN_OR_RETURN(Sparse in, SparseFeature(c.key));
      if (in.dtype != DT_INT64) return ColumnError(c, "an identity column needs int64 values");
      out = in;
      if (c.identity_default.has_value()) {
        const std::string ok = N(
            "LogicalAnd", scope + "/in_range",
            {Binary("GreaterEqual", scope + "/ge", in.values, g_.Int64s(scope + "/zero", {}, {0}),
                    DT_INT64),
             Binary("Less", scope + "/lt", in.values,
                    g_.Int64s(scope + "/num_buckets", {}, {c.num_buckets}), DT_INT64)});
        out.values = N("SelectV2", scope + "/ids",
                       {ok, in.values, g_.Int64s(scope + "/default", {}, {*c.identity_default})},
                       {{"T", AttrType(DT_INT64)}});
      }
      break;
    }
    case Kind::kBucketized: {
      ASSIGN_OR_RETURN(size_t src, ColumnIndex(c.source_column));
      ASSIGN_OR_RETURN(std::string x, Numeric(src));
      const int64_t buckets = static_cast<int64_t>(c.boundaries.size()) + 1;
      const int64_t d = col->num_buckets() / buckets;
      const std::string b = Cast(
          scope + "/Cast",
          N("Bucketize", scope + "/Bucketize", {x},
            {{"T", AttrType(DT_FLOAT)}, {"boundaries", AttrFloats(c.boundaries)}}),
          DT_INT32, DT_INT64);
      std::vector<int64_t> offsets(d);
      for (int64_t j = 0; j < d; ++j) offsets[j] = j * buckets;
      const std::string ids =
          Binary("AddV2", scope + "/add", b, g_.Int64s(scope + "/offsets", {d}, offsets), DT_INT64);
      out.indices = N("Where", scope + "/Where",
                      {Binary("GreaterEqual", scope + "/all", ids,
                              g_.Int64s(scope + "/all/y", {}, {0}), DT_INT64)});
      out.values = Reshape(scope + "/values", ids, DT_INT64, {-1});
      out.shape = N("Shape", scope + "/dense_shape", {ids},
                    {{"T", AttrType(DT_INT64)}, {"out_type", AttrType(DT_INT64)}});
      break;
    }
    case Kind::kCrossed: {
      std::vector<Sparse> sparse;
      std::vector<std::pair<std::string, DataType>> dense;
      RETURN_IF_ERROR(CrossInputs(i, &sparse, &dense));
      // TF's sparse_cross: non-string values become int64 and then the
      // crossing is done on int64s.
      DataType internal = DT_STRING;
      std::vector<std::string> inputs;
      std::vector<DataType> sparse_types, dense_types;
      for (const Sparse& s : sparse) inputs.push_back(s.indices);
      for (const Sparse& s : sparse) {
        inputs.push_back(s.values);
        sparse_types.push_back(s.dtype);
        if (s.dtype != DT_STRING) internal = DT_INT64;
      }
      for (const Sparse& s : sparse) inputs.push_back(s.shape);
      for (const auto& [t, dt] : dense) {
        inputs.push_back(t);
        dense_types.push_back(dt);
        if (dt != DT_STRING) internal = DT_INT64;
      }
      const std::string cross =
          N("SparseCross", scope + "/SparseCross", inputs,
            {{"N", AttrInt(static_cast<int64_t>(sparse.size()))},
             {"hashed_output", AttrBool(true)},
             {"num_buckets", AttrInt(c.hash_bucket_size)},
             {"hash_key", AttrInt(kCrossHashKey)},
             {"sparse_types", AttrTypes(sparse_types)},
             {"dense_types", AttrTypes(dense_types)},
             {"out_type", AttrType(DT_INT64)},
             {"internal_type", AttrType(internal)}});
      out = Sparse{TfOutput(cross, 0), TfOutput(cross, 1), TfOutput(cross, 2), DT_INT64};
      break;
    }
    case Kind::kWeightedCategorical:
      return ColumnError(c, absl::StrCat("column '", col->name(), "': weighted categorical columns"));
    default:
      return ColumnError(c, absl::StrCat("column '", col->name(), "' is not categorical"));
  }
  out.dtype = DT_INT64;
  sparse_[i] = out;
  return out;
}

absl::Status Builder::CrossInputs(size_t i, std::vector<Sparse>* sparse,
                                  std::vector<std::pair<std::string, DataType>>* dense) {
  const FeatureColumnConfig& c = job_.feature_columns[i];
  for (const std::string& ref : c.keys) {
    absl::StatusOr<size_t> j = ColumnIndex(ref);
    const bool is_column =
        j.ok() && (job_.feature_columns[*j].name == ref ||
                   job_.feature_columns[*j].kind == Kind::kBucketized ||
                   job_.feature_columns[*j].kind == Kind::kCrossed);
    if (is_column && job_.feature_columns[*j].kind == Kind::kCrossed) {
      RETURN_IF_ERROR(CrossInputs(*j, sparse, dense));  // a crossed key gives its own keys
    } else if (is_column) {
      ASSIGN_OR_RETURN(Sparse s, CategoricalSparse(*j));
      sparse->push_back(s);
    } else {
      ASSIGN_OR_RETURN(RawFeature * f, Feature(ref));
      if (receiver_ == "raw" && f->dense.has_value()) {
        // A raw key fed a dense tensor is crossed as given (nothing
        // dropped), after the sparse inputs: TF's sparse_cross order.
        dense->push_back({*f->dense, f->dtype});
      } else {
        ASSIGN_OR_RETURN(Sparse s, SparseFeature(ref));
        sparse->push_back(s);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Ids> Builder::ValidIds(size_t i) {
  if (auto it = ids_.find(i); it != ids_.end()) return it->second;
  ASSIGN_OR_RETURN(Sparse s, CategoricalSparse(i));
  const std::string scope = absl::StrCat("input/", set_.columns()[i]->name(), "/valid_ids");
  const int64_t k = set_.columns()[i]->num_buckets();
  const std::string rows = Gather(scope + "/rows", s.indices, g_.Int64s(scope + "/zero", {}, {0}),
                                  DT_INT64, /*axis=*/1);
  const std::string ok =
      N("LogicalAnd", scope + "/in_range",
        {Binary("GreaterEqual", scope + "/ge", s.values, g_.Int64s(scope + "/ge/y", {}, {0}),
                DT_INT64),
         Binary("Less", scope + "/lt", s.values, g_.Int64s(scope + "/lt/y", {}, {k}), DT_INT64)});
  const std::string keep = Reshape(scope + "/keep", N("Where", scope + "/Where", {ok}), DT_INT64, {-1});
  Ids ids{Gather(scope + "/values", s.values, keep, DT_INT64),
          Gather(scope + "/segment_ids", rows, keep, DT_INT64)};
  ids_[i] = ids;
  return ids;
}

absl::StatusOr<std::string> Builder::LinearLogits(const std::vector<ColumnPtr>& columns,
                                                  const std::string& out_name) {
  std::vector<std::string> parts;
  for (const ColumnPtr& col : columns) {
    ASSIGN_OR_RETURN(size_t i, IndexOf(col));
    const std::string scope = absl::StrCat(kLinearScope, col->name());
    const std::string w = ReadVariable(scope + "/weights");
    if (col->is_categorical()) {
      ASSIGN_OR_RETURN(Ids ids, ValidIds(i));
      parts.push_back(N("SparseSegmentSumWithNumSegments", scope + "/weighted_sum",
                        {w, ids.values, ids.rows, batch_},
                        {{"T", AttrType(DT_FLOAT)}, {"Tidx", AttrType(DT_INT64)},
                         {"Tsegmentids", AttrType(DT_INT64)}}));
    } else if (GetEmbeddingSpec(*col) != nullptr) {
      return ColumnError(job_.feature_columns[i],
                         absl::StrCat("column '", col->name(), "': an embedding column in the linear part"));
    } else {
      ASSIGN_OR_RETURN(std::string x, Dense(i));
      parts.push_back(Binary("MatMul", scope + "/weighted_sum", x, w, DT_FLOAT));
    }
  }
  const std::string bias = ReadVariable(absl::StrCat(kLinearScope, "bias_weights"));
  std::string sum;
  if (parts.empty()) {
    return job_.estimator->where.Error("the linear model has no feature columns");
  } else if (parts.size() == 1) {
    sum = parts[0];
  } else {
    sum = N("AddN", std::string(kLinearScope) + "weighted_sum_no_bias", parts,
            {{"N", AttrInt(static_cast<int64_t>(parts.size()))}, {"T", AttrType(DT_FLOAT)}});
  }
  return N("BiasAdd", out_name, {sum, bias}, {{"T", AttrType(DT_FLOAT)}});
}

absl::StatusOr<std::string> Builder::DnnLogits(const std::vector<ColumnPtr>& columns) {
  const EstimatorConfig& est = *job_.estimator;
  std::vector<std::string> pieces;
  for (const ColumnPtr& col : columns) {  // sorted by name: DenseFeatures' order
    ASSIGN_OR_RETURN(size_t i, IndexOf(col));
    ASSIGN_OR_RETURN(std::string x, Dense(i));
    pieces.push_back(x);
  }
  if (pieces.empty()) return est.where.Error("the DNN has no feature columns");
  std::string h = pieces[0];
  if (pieces.size() > 1) {
    pieces.push_back(g_.Int32s("dnn/input_from_feature_columns/input_layer/concat/axis", {}, {1}));
    h = N("ConcatV2", "dnn/input_from_feature_columns/input_layer/concat", pieces,
          {{"N", AttrInt(static_cast<int64_t>(pieces.size() - 1))}, {"T", AttrType(DT_FLOAT)}});
  }
  nn::Activation activation = nn::Activation::kRelu;
  if (est.activation_fn.has_value()) {
    ASSIGN_OR_RETURN(activation, nn::ParseActivation(*est.activation_fn));
  }
  for (size_t l = 0; l < est.hidden_units.size(); ++l) {
    const std::string layer = absl::StrCat("dnn/hiddenlayer_", l);
    h = Binary("MatMul", layer + "/MatMul", h, ReadVariable(layer + "/kernel"), DT_FLOAT);
    h = Binary("BiasAdd", layer + "/BiasAdd", h, ReadVariable(layer + "/bias"), DT_FLOAT);
    std::string op;
    switch (activation) {
      case nn::Activation::kRelu: op = "Relu"; break;
      case nn::Activation::kTanh: op = "Tanh"; break;
      case nn::Activation::kSigmoid: op = "Sigmoid"; break;
      case nn::Activation::kElu: op = "Elu"; break;
      case nn::Activation::kSelu: op = "Selu"; break;
      case nn::Activation::kSoftplus: op = "Softplus"; break;
      case nn::Activation::kLinear: break;
    }
    if (!op.empty()) h = N(op, layer + "/" + op, {h}, {{"T", AttrType(DT_FLOAT)}});
    if (est.batch_norm) {
      const std::string bn = absl::StrCat(layer, "/batchnorm_", l);
      const std::string inv = N(
          "Rsqrt", bn + "/Rsqrt",
          {Binary("AddV2", bn + "/add", ReadVariable(bn + "/moving_variance"),
                  g_.Floats(bn + "/add/y", {}, {kBatchNormEpsilon}), DT_FLOAT)},
          {{"T", AttrType(DT_FLOAT)}});
      const std::string scale = Binary("Mul", bn + "/mul", inv, ReadVariable(bn + "/gamma"), DT_FLOAT);
      const std::string shift =
          Binary("Sub", bn + "/sub", ReadVariable(bn + "/beta"),
                 Binary("Mul", bn + "/mul_2", ReadVariable(bn + "/moving_mean"), scale, DT_FLOAT),
                 DT_FLOAT);
      h = Binary("AddV2", bn + "/add_1", Binary("Mul", bn + "/mul_1", h, scale, DT_FLOAT), shift,
                 DT_FLOAT);
    }
  }
  h = Binary("MatMul", "dnn/logits/MatMul", h, ReadVariable("dnn/logits/kernel"), DT_FLOAT);
  return Binary("BiasAdd", "dnn/logits/BiasAdd", h, ReadVariable("dnn/logits/bias"), DT_FLOAT);
}

absl::Status Builder::Head(const std::string& logits) {
  const EstimatorConfig& est = *job_.estimator;
  if (!est.type.classifier) {
    predictions_["predictions"] = {logits + ":0", DT_FLOAT, {-1, logits_dim_}};
    return absl::OkStatus();
  }
  const int64_t n = est.n_classes;
  const std::string p = "head/predictions/";
  predictions_["logits"] = {logits + ":0", DT_FLOAT, {-1, logits_dim_}};
  std::string scores_from = logits;
  if (logits_dim_ == 1) {
    predictions_["logistic"] = {N("Sigmoid", p + "logistic", {logits}, {{"T", AttrType(DT_FLOAT)}}) + ":0",
                                DT_FLOAT, {-1, 1}};
    const std::string zeros = N("ZerosLike", p + "zeros_like", {logits}, {{"T", AttrType(DT_FLOAT)}});
    scores_from = N("ConcatV2", p + "two_class_logits",
                    {zeros, logits, g_.Int32s(p + "two_class_logits/axis", {}, {-1})},
                    {{"N", AttrInt(2)}, {"T", AttrType(DT_FLOAT)}});
  }
  const std::string probabilities =
      N("Softmax", p + "probabilities", {scores_from}, {{"T", AttrType(DT_FLOAT)}});
  predictions_["probabilities"] = {probabilities + ":0", DT_FLOAT, {-1, n}};
  const std::string class_ids =
      N("ArgMax", p + "class_ids", {scores_from, g_.Int32s(p + "class_ids/dimension", {}, {-1})},
        {{"T", AttrType(DT_FLOAT)}});
  const std::string expanded =
      N("ExpandDims", p + "ExpandDims", {class_ids, g_.Int32s(p + "ExpandDims/dim", {}, {-1})},
        {{"T", AttrType(DT_INT64)}});
  predictions_["class_ids"] = {expanded + ":0", DT_INT64, {-1, 1}};
  std::string vocab;
  if (!est.label_vocabulary.empty()) {
    vocab = g_.Strings(p + "label_vocabulary", {n}, est.label_vocabulary);
    predictions_["classes"] = {Gather(p + "str_classes", vocab, expanded, DT_STRING) + ":0",
                               DT_STRING, {-1, 1}};
  } else {
    predictions_["classes"] = {
        N("AsString", p + "str_classes", {expanded}, {{"T", AttrType(DT_INT64)}}) + ":0",
        DT_STRING, {-1, 1}};
  }
  // [batch, n] tiles of 0..n-1 (int32, as TF) and of the class names.
  auto tile = [&](const std::string& scope, const std::string& row, DataType t) {
    const std::string batch = Dim0(scope + "strided_slice", probabilities, DT_FLOAT);
    const std::string multiples =
        N("Pack", scope + "Tile/multiples", {batch, g_.Int32s(scope + "Tile/multiples/1", {}, {1})},
          {{"N", AttrInt(2)}, {"T", AttrType(DT_INT32)}});
    return N("Tile", scope + "Tile", {row, multiples}, {{"T", AttrType(t)}});
  };
  std::vector<int32_t> range(n);
  for (int64_t k = 0; k < n; ++k) range[k] = static_cast<int32_t>(k);
  const std::string ids_row = g_.Int32s(p + "ExpandDims_1", {1, n}, range);
  predictions_["all_class_ids"] = {tile(p, ids_row, DT_INT32) + ":0", DT_INT32, {-1, n}};
  auto names_row = [&](const std::string& scope) {
    if (!vocab.empty()) {
      return Reshape(scope + "ExpandDims_2", vocab, DT_STRING, {1, static_cast<int32_t>(n)});
    }
    return N("AsString", scope + "AsString", {g_.Int32s(scope + "ExpandDims_2", {1, n}, range)},
             {{"T", AttrType(DT_INT32)}});
  };
  predictions_["all_classes"] = {tile(p, names_row(p), DT_STRING) + ":0", DT_STRING, {-1, n}};
  classify_classes_ = {tile("head/", names_row("head/"), DT_STRING) + ":0", DT_STRING, {-1, n}};
  return absl::OkStatus();
}

absl::Status Builder::Saver(tensorflow::MetaGraphDef* meta) {
  // global_step: restored with the rest (TF's exports carry it).
  auto step = vars_.ints.find("global_step");
  const int64_t global_step = step == vars_.ints.end() ? 0 : step->second;
  MakeVariable("global_step", DT_INT64, {}, /*trainable=*/false);
  out_vars_.ints["global_step"] = global_step;
  std::vector<std::string> names = {"global_step"};
  names.insert(names.end(), variable_order_.begin(), variable_order_.end());
  std::sort(names.begin(), names.end());
  std::vector<DataType> types;
  for (const std::string& n : names) types.push_back(n == "global_step" ? DT_INT64 : DT_FLOAT);
  const int64_t count = static_cast<int64_t>(names.size());
  const std::string filename = N("PlaceholderWithDefault", "save/filename",
                                 {g_.Strings("save/filename/input", {}, {"model"})},
                                 {{"dtype", AttrType(DT_STRING)}, {"shape", AttrShape({})}});
  const std::string prefix = N("PlaceholderWithDefault", "save/Const", {filename},
                               {{"dtype", AttrType(DT_STRING)}, {"shape", AttrShape({})}});
  const std::string tensor_names = g_.Strings("save/SaveV2/tensor_names", {count}, names);
  const std::string slices =
      g_.Strings("save/SaveV2/shape_and_slices", {count}, std::vector<std::string>(count, ""));
  std::vector<std::string> save_inputs = {prefix, tensor_names, slices};
  for (const std::string& n : names) {
    save_inputs.push_back(read_[n]);
  }
  const std::string save = N("SaveV2", "save/SaveV2", save_inputs, {{"dtypes", AttrTypes(types)}});
  const std::string saved = N("Identity", "save/control_dependency", {prefix, "^" + save},
                              {{"T", AttrType(DT_STRING)}});
  const std::string restore = N(
      "RestoreV2", "save/RestoreV2",
      {prefix, g_.Strings("save/RestoreV2/tensor_names", {count}, names),
       g_.Strings("save/RestoreV2/shape_and_slices", {count}, std::vector<std::string>(count, ""))},
      {{"dtypes", AttrTypes(types)}});
  std::vector<std::string> assigns;
  for (int64_t k = 0; k < count; ++k) {
    assigns.push_back("^" + N("AssignVariableOp", "save/AssignVariableOp",
                              {handles_[names[k]], TfOutput(restore, static_cast<int>(k))},
                              {{"dtype", AttrType(types[k])}}));
  }
  const std::string restore_all = N("NoOp", "save/restore_all", assigns);
  tensorflow::SaverDef* s = meta->mutable_saver_def();
  s->set_filename_tensor_name(prefix + ":0");
  s->set_save_tensor_name(saved + ":0");
  s->set_restore_op_name(restore_all);
  s->set_max_to_keep(5);
  s->set_keep_checkpoint_every_n_hours(10000);
  s->set_version(tensorflow::SaverDef::V2);
  return absl::OkStatus();
}

absl::Status Builder::Signatures(tensorflow::MetaGraphDef* meta) {
  ASSIGN_OR_RETURN(std::vector<data::FeatureSpec> features, ServingFeatureSpecs(job_));
  ASSIGN_OR_RETURN(std::vector<SignatureSpec> specs,
                   HeadSignatures(*job_.estimator, receiver_, features));
  const bool has_logistic = predictions_.count("logistic") > 0;
  for (const SignatureSpec& spec : specs) {
    tensorflow::SignatureDef& def = (*meta->mutable_signature_def())[spec.key];
    def.set_method_name(spec.method_name);
    for (const auto& [name, tensor] : spec.inputs) {
      // Every input of the parsing receiver's signatures is the one
      // serialized-examples placeholder.
      const std::string key = receiver_ == "parsing" ? "examples" : name;
      auto it = receiver_inputs_.find(key);
      if (it == receiver_inputs_.end()) {
        return absl::InternalError(absl::StrCat("signature '", spec.key, "': no input '", name, "'"));
      }
      tensorflow::TensorInfo& info = (*def.mutable_inputs())[name];
      info.set_name(it->second.first);
      info.set_dtype(it->second.second);
      *info.mutable_tensor_shape() = TfShape(tensor.shape);
    }
    for (const auto& [name, tensor] : spec.outputs) {
      Output out;
      if (spec.method_name == kClassifyMethod && name == "classes") {
        out = classify_classes_;
      } else {
        const std::string from = PredictionKeyFor(spec.method_name, name, has_logistic);
        auto it = predictions_.find(from);
        if (it == predictions_.end()) {
          return absl::InternalError(
              absl::StrCat("signature '", spec.key, "': no prediction '", from, "'"));
        }
        out = it->second;
      }
      tensorflow::TensorInfo& info = (*def.mutable_outputs())[name];
      info.set_name(out.tensor);
      info.set_dtype(out.dtype);
      *info.mutable_tensor_shape() = TfShape(out.shape);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SavedModelExport> Builder::Build() {
  if (!job_.estimator.has_value()) {
    return JsonPath(job_.source).Key("estimator").Error("is required to export");
  }
  const EstimatorConfig& est = *job_.estimator;
  switch (est.type.family) {
    case ModelFamily::kLinear:
    case ModelFamily::kDnn:
    case ModelFamily::kDnnLinearCombined:
      break;
    default:
      return est.where.Key("type").Error(absl::StrCat(
          "the SavedModel export covers linear, DNN and DNN-linear combined models, not '",
          est.type.name, "'"));
  }
  if (receiver_ != "parsing" && receiver_ != "raw") {
    return absl::InvalidArgumentError(
        absl::StrCat("receiver: '", receiver_, "' is not 'parsing' or 'raw'"));
  }
  ASSIGN_OR_RETURN(set_, BuildFeatureColumns(job_));
  logits_dim_ = est.type.classifier ? (est.n_classes == 2 ? 1 : est.n_classes) : est.label_dimension;
  const ModelFamily family = est.type.family;
  std::vector<ColumnPtr> linear, dnn;
  if (family != ModelFamily::kDnn) {
    ASSIGN_OR_RETURN(linear, set_.Select(est.linear_feature_columns,
                                         est.where.Key("linear_feature_columns"),
                                         set_.LinearColumns()));
  }
  if (family != ModelFamily::kLinear) {
    ASSIGN_OR_RETURN(dnn, set_.Select(est.dnn_feature_columns, est.where.Key("dnn_feature_columns"),
                                      set_.DenseColumns()));
  }
  auto by_name = [](const ColumnPtr& a, const ColumnPtr& b) { return a->name() < b->name(); };
  std::sort(linear.begin(), linear.end(), by_name);
  std::sort(dnn.begin(), dnn.end(), by_name);

  if (receiver_ == "parsing") {
    ParsingReceiver();
  } else {
    RawReceiver();
  }
  RETURN_IF_ERROR(status_);
  std::string logits;
  if (family == ModelFamily::kLinear) {
    ASSIGN_OR_RETURN(logits,
                     LinearLogits(linear,
                                  "linear/linear_model/linear/linear_model/linear/linear_model/"
                                  "weighted_sum"));
  } else if (family == ModelFamily::kDnn) {
    ASSIGN_OR_RETURN(logits, DnnLogits(dnn));
  } else {
    ASSIGN_OR_RETURN(std::string d, DnnLogits(dnn));
    ASSIGN_OR_RETURN(std::string l, LinearLogits(linear, "linear/linear_model/weighted_sum"));
    logits = Binary("AddV2", "add", d, l, DT_FLOAT);
  }
  RETURN_IF_ERROR(status_);
  RETURN_IF_ERROR(Head(logits));

  SavedModelExport out;
  out.saved_model.set_saved_model_schema_version(1);
  tensorflow::MetaGraphDef* meta = out.saved_model.add_meta_graphs();
  meta->mutable_meta_info_def()->add_tags("serve");
  meta->mutable_meta_info_def()->set_stripped_default_attrs(true);
  RETURN_IF_ERROR(Saver(meta));
  const std::string init_tables = N("NoOp", "init_all_tables", [&] {
    std::vector<std::string> deps;
    for (const std::string& t : table_inits_) deps.push_back("^" + t);
    return deps;
  }());
  const std::string main_op = N("NoOp", "group_deps", {"^" + init_tables});
  RETURN_IF_ERROR(status_);
  RETURN_IF_ERROR(Signatures(meta));
  auto& collections = *meta->mutable_collection_def();
  collections["saved_model_main_op"].mutable_node_list()->add_value(main_op);
  // TF1's variable collections: tf.saved_model.load lists these variables
  // and tf.compat.v1 loaders find global_step.
  for (const VariableDefBytes& v : variable_defs_) {
    collections["variables"].mutable_bytes_list()->add_value(v.bytes);
    if (v.trainable) collections["trainable_variables"].mutable_bytes_list()->add_value(v.bytes);
    if (v.name == "global_step") {
      collections["global_step"].mutable_bytes_list()->add_value(v.bytes);
    }
  }
  if (!table_inits_.empty()) {
    for (const std::string& t : table_inits_) {
      collections["table_initializer"].mutable_node_list()->add_value(t);
    }
  }
  for (const auto& [tensor, name] : asset_tensors_) {
    tensorflow::AssetFileDef* a = meta->add_asset_file_def();
    a->mutable_tensor_info()->set_name(tensor);
    a->mutable_tensor_info()->set_dtype(DT_STRING);
    a->mutable_tensor_info()->mutable_tensor_shape();
    a->set_filename(name);
    collections["asset_filepaths"].mutable_node_list()->add_value(tensor);
  }
  *meta->mutable_graph_def() = g_.graph();
  out.assets = assets_;
  out.variables = std::move(out_vars_);
  return out;
}

// The one place the export touches the bundle format: `vars` as a TF V2
// tensor bundle at `prefix` (floats in their TF shapes, int64 scalars).
absl::Status WriteTfVariables(const std::string& prefix, const Variables& vars,
                              const io::Env& env) {
  tf_bundle::BundleWriterOptions options;
  options.env = &env;
  tf_bundle::BundleWriter writer(options);
  for (const auto& [name, m] : vars.floats) {
    RETURN_IF_ERROR(writer.Add(
        name, Tensor::Floats(VariableShape(name, m), std::vector<float>(m.data(), m.data() + m.size()))));
  }
  for (const auto& [name, v] : vars.ints) RETURN_IF_ERROR(writer.Add(name, Tensor::Ints({}, {v})));
  return writer.Finish(prefix);
}

}  // namespace

absl::StatusOr<SavedModelExport> BuildSavedModel(const JobSpec& job, const Variables& vars,
                                                 const std::string& receiver) {
  Builder builder(job, vars, receiver);
  return builder.Build();
}

absl::Status WriteSavedModel(const JobSpec& job, const Variables& vars,
                             const std::string& receiver, const std::string& dir,
                             const io::Env& env) {
  ASSIGN_OR_RETURN(SavedModelExport sm, BuildSavedModel(job, vars, receiver));
  std::string bytes;
  if (!sm.saved_model.SerializeToString(&bytes)) {
    return absl::InternalError("cannot serialize the SavedModel");
  }
  RETURN_IF_ERROR(env.MakeDirs(io::JoinPath(dir, kVariablesDir)));
  RETURN_IF_ERROR(WriteTfVariables(io::JoinPath(dir, kSavedModelVariablesPrefix), sm.variables, env));
  if (!sm.assets.empty()) {
    RETURN_IF_ERROR(env.MakeDirs(io::JoinPath(dir, kAssetsDir)));
    for (const auto& [name, src] : sm.assets) {
      ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(env, src));
      RETURN_IF_ERROR(io::WriteFileDurably(env, io::JoinPath(io::JoinPath(dir, kAssetsDir), name), text));
    }
  }
  return io::WriteFileDurably(env, io::JoinPath(dir, kSavedModelFile), bytes);
}

}  // namespace export_format
}  // namespace estuary
