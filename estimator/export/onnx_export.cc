#include "estimator/export/onnx_export.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "estimator/export/onnx.pb.h"
#include "estimator/feature_column_builder.h"
#include "estimator/nn/activation.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace export_format {
namespace {

using json = nlohmann::json;

constexpr char kLinearScope[] = "linear/linear_model/";
constexpr char kInputLayer[] = "dnn/input_from_feature_columns/input_layer/";
constexpr float kBatchNormEpsilon = 1e-3f;  // estimator/nn/layers.h

// What the graph reads, derived from the job exactly as EstimatorFromJob
// builds the model (estimator_factory.cc).
struct OnnxPlan {
  bool has_linear = false, has_dnn = false;
  std::vector<ColumnPtr> linear;  // sorted by name
  std::vector<ColumnPtr> dnn;     // sorted by name (DenseFeatures order)
  // The "dense" input: columns and their offsets.
  std::vector<ColumnPtr> dense;
  std::map<std::string, int64_t> dense_offset;
  int64_t dense_width = 0;
  // The ids inputs: categorical columns by name.
  std::map<std::string, ColumnPtr> ids;
  std::map<std::string, size_t> config_index;  // reference name -> feature_columns[i]
  FeatureColumnSet set;
};

std::string IdsInput(const std::string& column) { return column + "_ids"; }

std::vector<ColumnPtr> SortedByName(std::vector<ColumnPtr> cols) {
  std::sort(cols.begin(), cols.end(),
            [](const ColumnPtr& a, const ColumnPtr& b) { return a->name() < b->name(); });
  return cols;
}

absl::StatusOr<OnnxPlan> Plan(const JobSpec& job) {
  if (!job.estimator.has_value()) {
    return JsonPath(job.source).Key("estimator").Error("is required to export");
  }
  const EstimatorConfig& est = *job.estimator;
  OnnxPlan plan;
  ASSIGN_OR_RETURN(plan.set, BuildFeatureColumns(job));
  const FeatureColumnSet& set = plan.set;
  for (size_t i = 0; i < set.names().size(); ++i) plan.config_index[set.names()[i]] = i;
  const JsonPath linear_where = est.where.Key("linear_feature_columns");
  const JsonPath dnn_where = est.where.Key("dnn_feature_columns");
  switch (est.type.family) {
    case ModelFamily::kLinear:
    case ModelFamily::kDnnLinearCombined:
    case ModelFamily::kDnn:
      break;
    default:
      return est.where.Key("type").Error(
          absl::StrCat("the ONNX export covers linear, DNN and DNN-linear combined models, not '",
                       est.type.name, "'"));
  }
  const ModelFamily family = est.type.family;
  plan.has_linear = family == ModelFamily::kLinear || family == ModelFamily::kDnnLinearCombined;
  plan.has_dnn = family == ModelFamily::kDnn || family == ModelFamily::kDnnLinearCombined;
  if (plan.has_linear) {
    ASSIGN_OR_RETURN(plan.linear,
                     set.Select(est.linear_feature_columns, linear_where, set.LinearColumns()));
  }
  if (plan.has_dnn) {
    ASSIGN_OR_RETURN(plan.dnn, set.Select(est.dnn_feature_columns, dnn_where, set.DenseColumns()));
  }
  plan.linear = SortedByName(plan.linear);
  plan.dnn = SortedByName(plan.dnn);
  std::map<std::string, ColumnPtr> dense;
  auto check_ids = [&](const ColumnPtr& c) -> absl::Status {
    if (c->type() == ColumnType::kWeightedCategorical) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column '", c->name(), "': weighted categorical columns are not in the ONNX export"));
    }
    plan.ids[c->name()] = c;
    return absl::OkStatus();
  };
  for (const ColumnPtr& c : plan.linear) {
    if (c->is_categorical()) {
      RETURN_IF_ERROR(check_ids(c));
    } else if (GetEmbeddingSpec(*c) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column '", c->name(), "': an embedding column in the linear part is not exportable"));
    } else {
      dense[c->name()] = c;
    }
  }
  for (const ColumnPtr& c : plan.dnn) {
    if (const EmbeddingSpec* e = GetEmbeddingSpec(*c)) {
      if (e->max_norm.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "column '", c->name(), "': embedding max_norm is not in the ONNX export"));
      }
      RETURN_IF_ERROR(check_ids(e->categorical));
    } else {
      dense[c->name()] = c;
    }
  }
  for (const auto& [name, c] : dense) {
    plan.dense.push_back(c);
    plan.dense_offset[name] = plan.dense_width;
    plan.dense_width += c->dense_width();
  }
  return plan;
}

// ---------------------------------------------------------------- graph

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  std::string Fresh(const std::string& hint) { return absl::StrCat(hint, "_", counter_++); }

  // A float initializer holding `m` ([rows, cols], or [cols] when `vector`).
  std::string Floats(const std::string& name, const RowMatrixXf& m, bool vector = false) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    if (!vector) t->add_dims(m.rows());
    t->add_dims(vector ? m.size() : m.cols());
    for (Eigen::Index i = 0; i < m.size(); ++i) t->add_float_data(m.data()[i]);
    return name;
  }
  std::string Scalar(const std::string& name, float v) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_float_data(v);
    return name;
  }
  std::string Int64s(const std::string& name, const std::vector<int64_t>& v) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
    return name;
  }
  std::string Int64Scalar(const std::string& name, int64_t v) {
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_int64_data(v);
    return name;
  }

  // A node with one output (named `out`, or a fresh name).
  std::string Node(const std::string& op, const std::vector<std::string>& inputs,
                   std::string out = "", std::vector<onnx::AttributeProto> attrs = {}) {
    if (out.empty()) out = Fresh(op);
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(out + "/" + op);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(out);
    for (onnx::AttributeProto& a : attrs) *n->add_attribute() = std::move(a);
    return out;
  }

  static onnx::AttributeProto Int(const std::string& name, int64_t v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(v);
    return a;
  }
  static onnx::AttributeProto Float(const std::string& name, float v) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(v);
    return a;
  }

  void Value(onnx::ValueInfoProto* v, const std::string& name, int elem_type,
             const std::vector<std::string>& dims) {
    v->set_name(name);
    onnx::TypeProto::Tensor* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem_type);
    for (const std::string& d : dims) {
      onnx::TensorShapeProto::Dimension* dim = t->mutable_shape()->add_dim();
      int64_t n = 0;
      if (absl::SimpleAtoi(d, &n)) {
        dim->set_dim_value(n);
      } else {
        dim->set_dim_param(d);
      }
    }
  }
  void Input(const std::string& name, int elem_type, const std::vector<std::string>& dims) {
    Value(graph_->add_input(), name, elem_type, dims);
  }
  void Output(const std::string& name, int elem_type, const std::vector<std::string>& dims) {
    Value(graph_->add_output(), name, elem_type, dims);
  }

 private:
  onnx::GraphProto* graph_;
  int counter_ = 0;
};

absl::StatusOr<const RowMatrixXf*> Var(const Variables& vars, const std::string& name) {
  auto it = vars.floats.find(name);
  if (it == vars.floats.end()) {
    return absl::InvalidArgumentError(absl::StrCat("the checkpoint has no variable '", name, "'"));
  }
  return &it->second;
}

// `table` with a zero row appended (the padding id -1 reads it).
RowMatrixXf Padded(const RowMatrixXf& table) {
  RowMatrixXf t = RowMatrixXf::Zero(table.rows() + 1, table.cols());
  t.topRows(table.rows()) = table;
  return t;
}

// Gather + ReduceSum (+ the combiner's division) over ids input `ids`.
std::string Lookup(GraphBuilder& g, const std::string& table, const std::string& ids,
                   Combiner combiner) {
  const std::string axes = g.Int64s(g.Fresh("axis1"), {1});
  const std::string gathered = g.Node("Gather", {table, ids}, "", {GraphBuilder::Int("axis", 0)});
  const std::string sum =
      g.Node("ReduceSum", {gathered, axes}, "", {GraphBuilder::Int("keepdims", 0)});
  if (combiner == Combiner::kSum) return sum;
  const std::string zero = g.Int64Scalar(g.Fresh("zero"), 0);
  const std::string real = g.Node("GreaterOrEqual", {ids, zero});
  const std::string mask = g.Node("Cast", {real}, "", {GraphBuilder::Int("to", onnx::TensorProto::FLOAT)});
  const std::string count = g.Node("ReduceSum", {mask, axes}, "", {GraphBuilder::Int("keepdims", 1)});
  std::string denom = g.Node("Max", {count, g.Scalar(g.Fresh("one"), 1.0f)});
  if (combiner == Combiner::kSqrtn) denom = g.Node("Sqrt", {denom});
  return g.Node("Div", {sum, denom});
}

absl::StatusOr<std::string> Activate(GraphBuilder& g, nn::Activation a, const std::string& x) {
  switch (a) {
    case nn::Activation::kRelu: return g.Node("Relu", {x});
    case nn::Activation::kTanh: return g.Node("Tanh", {x});
    case nn::Activation::kSigmoid: return g.Node("Sigmoid", {x});
    case nn::Activation::kElu: return g.Node("Elu", {x}, "", {GraphBuilder::Float("alpha", 1.0f)});
    case nn::Activation::kSelu: return g.Node("Selu", {x});
    case nn::Activation::kSoftplus: return g.Node("Softplus", {x});
    case nn::Activation::kLinear: return x;
  }
  return absl::InvalidArgumentError("unknown activation");
}

// The job's feature_columns with vocabulary files inlined.
absl::StatusOr<json> ColumnsJson(const JobSpec& job, const io::Env& env) {
  json cols = job.document.is_object() ? job.document.value("feature_columns", json::array())
                                       : json::array();
  for (size_t i = 0; i < job.feature_columns.size() && i < cols.size(); ++i) {
    const FeatureColumnConfig& c = job.feature_columns[i];
    if (c.kind != FeatureColumnKind::kVocabularyFile) continue;
    ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(env, c.vocabulary_file));
    json vocab = json::array();
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (c.vocabulary_size.has_value() &&
          static_cast<int64_t>(vocab.size()) >= *c.vocabulary_size) {
        break;
      }
      vocab.push_back(std::string(line));
    }
    cols[i]["vocabulary"] = vocab;
  }
  return cols;
}

}  // namespace

absl::Status WriteOnnxModel(const JobSpec& job, const Variables& vars, const std::string& dir,
                            const io::Env& env) {
  ASSIGN_OR_RETURN(OnnxPlan plan, Plan(job));
  const EstimatorConfig& est = *job.estimator;
  const bool classifier = est.type.classifier;
  const int64_t logits_dim =
      classifier ? (est.n_classes == 2 ? 1 : est.n_classes) : est.label_dimension;

  onnx::ModelProto model;
  model.set_ir_version(kOnnxIrVersion);
  model.set_producer_name("estuary");
  model.set_producer_version("1");
  model.set_doc_string(absl::StrCat(est.type.name, " exported by Estuary; raw features -> inputs: ",
                                    kOnnxTransformFile));
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  onnx::StringStringEntryProto* meta = model.add_metadata_props();
  meta->set_key("estuary.transform");
  meta->set_value(kOnnxTransformFile);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(est.type.name);
  GraphBuilder g(graph);

  json inputs = json::object();
  if (plan.dense_width > 0) {
    g.Input("dense", onnx::TensorProto::FLOAT, {"batch", absl::StrCat(plan.dense_width)});
    json cols = json::array();
    for (const ColumnPtr& c : plan.dense) {
      cols.push_back({{"name", c->name()},
                      {"offset", plan.dense_offset[c->name()]},
                      {"width", c->dense_width()}});
    }
    inputs["dense"] = {{"dtype", "float32"}, {"shape", {-1, plan.dense_width}}, {"columns", cols}};
  }
  for (const auto& [name, c] : plan.ids) {
    g.Input(IdsInput(name), onnx::TensorProto::INT64, {"batch", name + "_len"});
    inputs[IdsInput(name)] = {{"dtype", "int64"},
                              {"shape", {-1, -1}},
                              {"column", name},
                              {"num_buckets", c->num_buckets()},
                              {"padding", -1}};
  }

  std::vector<std::string> logit_parts;
  if (plan.has_linear) {
    std::vector<std::string> parts;
    RowMatrixXf dense_w = RowMatrixXf::Zero(plan.dense_width, logits_dim);
    bool any_dense = false;
    for (const ColumnPtr& c : plan.linear) {
      ASSIGN_OR_RETURN(const RowMatrixXf* w, Var(vars, absl::StrCat(kLinearScope, c->name(), "/weights")));
      if (c->is_categorical()) {
        const std::string table =
            g.Floats(absl::StrCat("linear/", c->name(), "/weights_padded"), Padded(*w));
        parts.push_back(Lookup(g, table, IdsInput(c->name()), Combiner::kSum));
      } else {
        dense_w.middleRows(plan.dense_offset[c->name()], c->dense_width()) = *w;
        any_dense = true;
      }
    }
    if (any_dense) {
      parts.push_back(g.Node("MatMul", {"dense", g.Floats("linear/dense_weights", dense_w)}));
    }
    ASSIGN_OR_RETURN(const RowMatrixXf* bias, Var(vars, absl::StrCat(kLinearScope, "bias_weights")));
    parts.push_back(g.Floats("linear/bias_weights", *bias, /*vector=*/true));
    logit_parts.push_back(g.Node("Sum", parts, "linear_logits"));
  }
  if (plan.has_dnn) {
    // The DNN's input: [dense, embedding_1, ...]; its first kernel's rows
    // permuted from DenseFeatures' order (sorted dnn columns) to that.
    ASSIGN_OR_RETURN(const RowMatrixXf* k0, Var(vars, "dnn/hiddenlayer_0/kernel"));
    int64_t emb_width = 0;
    for (const ColumnPtr& c : plan.dnn) {
      if (GetEmbeddingSpec(*c) != nullptr) emb_width += c->dense_width();
    }
    RowMatrixXf kernel = RowMatrixXf::Zero(plan.dense_width + emb_width, k0->cols());
    std::vector<std::string> pieces;
    if (plan.dense_width > 0) pieces.push_back("dense");
    int64_t from = 0, emb_offset = plan.dense_width;
    for (const ColumnPtr& c : plan.dnn) {
      const int64_t w = c->dense_width();
      if (from + w > k0->rows()) {
        return absl::InvalidArgumentError("dnn/hiddenlayer_0/kernel is narrower than the columns");
      }
      if (const EmbeddingSpec* e = GetEmbeddingSpec(*c)) {
        ASSIGN_OR_RETURN(const RowMatrixXf* table,
                         Var(vars, absl::StrCat(kInputLayer, c->name(), "/embedding_weights")));
        const std::string t = g.Floats(absl::StrCat("dnn/", c->name(), "/embedding_weights_padded"),
                                       Padded(*table));
        pieces.push_back(Lookup(g, t, IdsInput(e->categorical->name()), e->combiner));
        kernel.middleRows(emb_offset, w) = k0->middleRows(from, w);
        emb_offset += w;
      } else {
        kernel.middleRows(plan.dense_offset[c->name()], w) = k0->middleRows(from, w);
      }
      from += w;
    }
    std::string h = pieces.size() == 1 ? pieces[0]
                                       : g.Node("Concat", pieces, "dnn_input",
                                                {GraphBuilder::Int("axis", 1)});
    nn::Activation activation = nn::Activation::kRelu;
    if (est.activation_fn.has_value()) {
      ASSIGN_OR_RETURN(activation, nn::ParseActivation(*est.activation_fn));
    }
    for (size_t i = 0; i < est.hidden_units.size(); ++i) {
      const std::string layer = absl::StrCat("dnn/hiddenlayer_", i);
      const RowMatrixXf* k = &kernel;
      if (i > 0) {
        ASSIGN_OR_RETURN(k, Var(vars, layer + "/kernel"));
      }
      ASSIGN_OR_RETURN(const RowMatrixXf* b, Var(vars, layer + "/bias"));
      h = g.Node("MatMul", {h, g.Floats(layer + "/kernel", *k)});
      h = g.Node("Add", {h, g.Floats(layer + "/bias", *b, true)});
      ASSIGN_OR_RETURN(h, Activate(g, activation, h));
      if (est.batch_norm) {
        const std::string bn = absl::StrCat(layer, "/batchnorm_", i);
        ASSIGN_OR_RETURN(const RowMatrixXf* gamma, Var(vars, bn + "/gamma"));
        ASSIGN_OR_RETURN(const RowMatrixXf* beta, Var(vars, bn + "/beta"));
        ASSIGN_OR_RETURN(const RowMatrixXf* mean, Var(vars, bn + "/moving_mean"));
        ASSIGN_OR_RETURN(const RowMatrixXf* var, Var(vars, bn + "/moving_variance"));
        RowMatrixXf scale(1, gamma->cols()), shift(1, gamma->cols());
        for (Eigen::Index j = 0; j < gamma->cols(); ++j) {
          scale(0, j) = (*gamma)(0, j) / std::sqrt((*var)(0, j) + kBatchNormEpsilon);
          shift(0, j) = (*beta)(0, j) - (*mean)(0, j) * scale(0, j);
        }
        h = g.Node("Mul", {h, g.Floats(bn + "/scale", scale, true)});
        h = g.Node("Add", {h, g.Floats(bn + "/shift", shift, true)});
      }
    }
    ASSIGN_OR_RETURN(const RowMatrixXf* lk, Var(vars, "dnn/logits/kernel"));
    ASSIGN_OR_RETURN(const RowMatrixXf* lb, Var(vars, "dnn/logits/bias"));
    h = g.Node("MatMul", {h, g.Floats("dnn/logits/kernel", *lk)});
    logit_parts.push_back(g.Node("Add", {h, g.Floats("dnn/logits/bias", *lb, true)}, "dnn_logits"));
  }
  const std::string logits = logit_parts.size() == 1
                                 ? g.Node("Identity", logit_parts, "logits")
                                 : g.Node("Add", logit_parts, "logits");
  const std::string n = absl::StrCat(logits_dim);
  g.Output("logits", onnx::TensorProto::FLOAT, {"batch", n});
  json outputs = {{"logits", {{"dtype", "float32"}, {"shape", {-1, logits_dim}}}}};
  if (classifier && logits_dim == 1) {
    g.Node("Sigmoid", {logits}, "logistic");
    const std::string one_minus = g.Node("Sub", {g.Scalar("one_f", 1.0f), "logistic"});
    g.Node("Concat", {one_minus, "logistic"}, "probabilities", {GraphBuilder::Int("axis", 1)});
    const std::string positive = g.Node("Greater", {logits, g.Scalar("zero_f", 0.0f)});
    g.Node("Cast", {positive}, "class_ids", {GraphBuilder::Int("to", onnx::TensorProto::INT64)});
    g.Output("logistic", onnx::TensorProto::FLOAT, {"batch", "1"});
    g.Output("probabilities", onnx::TensorProto::FLOAT, {"batch", "2"});
    g.Output("class_ids", onnx::TensorProto::INT64, {"batch", "1"});
    outputs["logistic"] = {{"dtype", "float32"}, {"shape", {-1, 1}}};
    outputs["probabilities"] = {{"dtype", "float32"}, {"shape", {-1, 2}}};
    outputs["class_ids"] = {{"dtype", "int64"}, {"shape", {-1, 1}}};
  } else if (classifier) {
    g.Node("Softmax", {logits}, "probabilities", {GraphBuilder::Int("axis", 1)});
    g.Node("ArgMax", {logits}, "class_ids",
           {GraphBuilder::Int("axis", 1), GraphBuilder::Int("keepdims", 1)});
    g.Output("probabilities", onnx::TensorProto::FLOAT, {"batch", n});
    g.Output("class_ids", onnx::TensorProto::INT64, {"batch", "1"});
    outputs["probabilities"] = {{"dtype", "float32"}, {"shape", {-1, logits_dim}}};
    outputs["class_ids"] = {{"dtype", "int64"}, {"shape", {-1, 1}}};
  } else {
    g.Node("Identity", {logits}, "predictions");
    g.Output("predictions", onnx::TensorProto::FLOAT, {"batch", n});
    outputs["predictions"] = {{"dtype", "float32"}, {"shape", {-1, logits_dim}}};
  }

  std::string bytes;
  if (!model.SerializeToString(&bytes)) return absl::InternalError("cannot serialize the ONNX model");
  RETURN_IF_ERROR(io::WriteFileDurably(env, io::JoinPath(dir, kOnnxModelFile), bytes));
  ASSIGN_OR_RETURN(json columns, ColumnsJson(job, env));
  json transform = {
      {"model", kOnnxModelFile},
      {"ir_version", kOnnxIrVersion},
      {"opset", kOnnxOpset},
      {"inputs", inputs},
      {"outputs", outputs},
      {"feature_columns", columns},
      {"hashing",
       "hash buckets: FarmHash Fingerprint64 of the value's bytes (int64 values as decimal "
       "strings) modulo hash_bucket_size, as TF's string_to_hash_bucket_fast; vocabulary "
       "out-of-vocabulary buckets the same, offset by the vocabulary size; crossed columns: "
       "TF's SparseCrossHashed (FarmHash Fingerprint64 / FingerprintCat64, hash key "
       "0xDECAFCAFFE) modulo hash_bucket_size. Dense values and ids of each column are its "
       "tf.feature_column values; estuary::export_format::OnnxFeeds computes them."}};
  return io::WriteFileDurably(env, io::JoinPath(dir, kOnnxTransformFile), transform.dump(2) + "\n");
}

absl::StatusOr<std::map<std::string, Tensor>> OnnxFeeds(const JobSpec& job,
                                                        const FeatureMap& features) {
  ASSIGN_OR_RETURN(OnnxPlan plan, Plan(job));
  std::map<std::string, Tensor> out;
  int64_t batch = -1;
  if (plan.dense_width > 0) {
    std::vector<RowMatrixXf> parts;
    for (const ColumnPtr& c : plan.dense) {
      ASSIGN_OR_RETURN(RowMatrixXf m, c->Dense(features));
      batch = m.rows();
      parts.push_back(std::move(m));
    }
    Tensor t;
    t.dtype = DType::kFloat;
    t.shape = {batch, plan.dense_width};
    t.floats.resize(batch * plan.dense_width);
    for (size_t i = 0; i < parts.size(); ++i) {
      const int64_t off = plan.dense_offset[plan.dense[i]->name()];
      for (int64_t r = 0; r < batch; ++r) {
        for (int64_t j = 0; j < parts[i].cols(); ++j) {
          t.floats[r * plan.dense_width + off + j] = parts[i](r, j);
        }
      }
    }
    out["dense"] = std::move(t);
  }
  for (const auto& [name, c] : plan.ids) {
    ASSIGN_OR_RETURN(CategoricalIds ids, c->Ids(features));
    std::vector<std::vector<int64_t>> rows(ids.batch_size);
    for (int64_t k = 0; k < ids.size(); ++k) {
      if (ids.ids[k] >= 0 && ids.ids[k] < c->num_buckets()) rows[ids.rows[k]].push_back(ids.ids[k]);
    }
    size_t len = 1;
    for (const auto& r : rows) len = std::max(len, r.size());
    Tensor t;
    t.dtype = DType::kInt64;
    t.shape = {ids.batch_size, static_cast<int64_t>(len)};
    t.ints.assign(ids.batch_size * len, -1);
    for (size_t r = 0; r < rows.size(); ++r) {
      std::copy(rows[r].begin(), rows[r].end(), t.ints.begin() + r * len);
    }
    out[IdsInput(name)] = std::move(t);
  }
  return out;
}

}  // namespace export_format
}  // namespace estuary
