#include "estimator/export/tf_graph.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace estuary {
namespace export_format {
namespace {

// TF 2.15's definitions of the ops Estuary's graphs use (from
// tensorflow/core/ops/*.cc, as op_def_registry reports them). inputs: one
// word per input argument; "name*N" is a list sized by int attribute N,
// "name*T" a list sized by list attribute T. attrs: "name" required,
// "name=" with a default.
struct OpDefinition {
  const char* op;
  const char* inputs;
  const char* attrs;
};

constexpr OpDefinition kOps[] = {
    {"AddN", "inputs*N", "N T"},
    {"AddV2", "x y", "T"},
    {"ArgMax", "input dimension", "T Tidx= output_type="},
    {"AsString", "input", "T precision= scientific= shortest= width= fill="},
    {"AssignVariableOp", "resource value", "dtype validate_shape="},
    {"BiasAdd", "value bias", "T data_format="},
    {"Bucketize", "input", "T boundaries"},
    {"Cast", "x", "SrcT DstT Truncate="},
    {"ConcatV2", "values*N axis", "N T Tidx="},
    {"Const", "", "value dtype"},
    {"Elu", "features", "T"},
    {"Equal", "x y", "T incompatible_shape_error="},
    {"ExpandDims", "input dim", "T Tdim="},
    {"GatherNd", "params indices", "Tparams Tindices"},
    {"GatherV2", "params indices axis", "batch_dims= Tparams Tindices Taxis"},
    {"GreaterEqual", "x y", "T"},
    {"HashTableV2", "", "container= shared_name= use_node_name_sharing= key_dtype value_dtype"},
    {"Identity", "input", "T"},
    {"InitializeTableFromTextFileV2", "table_handle filename",
     "key_index value_index vocab_size= delimiter= offset="},
    {"Less", "x y", "T"},
    {"LogicalAnd", "x y", ""},
    {"LookupTableFindV2", "table_handle keys default_value", "Tin Tout"},
    {"LookupTableImportV2", "table_handle keys values", "Tin Tout"},
    {"MatMul", "a b", "transpose_a= transpose_b= T"},
    {"Mul", "x y", "T"},
    {"NoOp", "", ""},
    {"NotEqual", "x y", "T incompatible_shape_error="},
    {"OneHot", "indices depth on_value off_value", "axis= T TI="},
    {"Pack", "values*N", "N T axis="},
    {"ParseExampleV2", "serialized names sparse_keys dense_keys ragged_keys dense_defaults*Tdense",
     "Tdense num_sparse sparse_types ragged_value_types ragged_split_types dense_shapes"},
    {"Placeholder", "", "dtype shape="},
    {"PlaceholderWithDefault", "input", "dtype shape"},
    {"Range", "start limit delta", "Tidx="},
    {"ReadVariableOp", "resource", "dtype"},
    {"RealDiv", "x y", "T"},
    {"Relu", "features", "T"},
    {"Reshape", "tensor shape", "T Tshape="},
    {"RestoreV2", "prefix tensor_names shape_and_slices", "dtypes"},
    {"Rsqrt", "x", "T"},
    {"SaveV2", "prefix tensor_names shape_and_slices tensors*dtypes", "dtypes"},
    {"SelectV2", "condition t e", "T"},
    {"Selu", "features", "T"},
    {"Shape", "input", "T out_type="},
    {"Sigmoid", "x", "T"},
    {"Size", "input", "T out_type="},
    {"Softmax", "logits", "T"},
    {"Softplus", "features", "T"},
    {"SparseCross", "indices*N values*sparse_types shapes*N dense_inputs*dense_types",
     "N hashed_output num_buckets hash_key sparse_types dense_types out_type internal_type"},
    {"SparseSegmentMeanWithNumSegments", "data indices segment_ids num_segments",
     "T Tidx= Tnumsegments= Tsegmentids= sparse_gradient="},
    {"SparseSegmentSqrtNWithNumSegments", "data indices segment_ids num_segments",
     "T Tidx= Tnumsegments= Tsegmentids= sparse_gradient="},
    {"SparseSegmentSumWithNumSegments", "data indices segment_ids num_segments",
     "T Tidx= Tnumsegments= Tsegmentids= sparse_gradient="},
    {"StridedSlice", "input begin end strides",
     "T Index begin_mask= end_mask= ellipsis_mask= new_axis_mask= shrink_axis_mask="},
    {"StringToHashBucketFast", "input", "num_buckets"},
    {"Sub", "x y", "T"},
    {"Tanh", "x", "T"},
    {"Tile", "input multiples", "T Tmultiples="},
    {"UnsortedSegmentSum", "data segment_ids num_segments", "T Tindices Tnumsegments="},
    {"VarHandleOp", "", "container= shared_name= debug_name= dtype shape allowed_devices="},
    {"Where", "input", "T="},
    {"ZerosLike", "x", "T"},
};

const OpDefinition* FindOp(const std::string& op) {
  for (const OpDefinition& d : kOps) {
    if (op == d.op) return &d;
  }
  return nullptr;
}

tensorflow::TensorProto Tensor(tensorflow::DataType dtype, const std::vector<int64_t>& shape) {
  tensorflow::TensorProto t;
  t.set_dtype(dtype);
  *t.mutable_tensor_shape() = TfShape(shape);
  return t;
}

}  // namespace

tensorflow::AttrValue AttrType(tensorflow::DataType t) {
  tensorflow::AttrValue a;
  a.set_type(t);
  return a;
}
tensorflow::AttrValue AttrInt(int64_t i) {
  tensorflow::AttrValue a;
  a.set_i(i);
  return a;
}
tensorflow::AttrValue AttrBool(bool b) {
  tensorflow::AttrValue a;
  a.set_b(b);
  return a;
}
tensorflow::AttrValue AttrString(const std::string& s) {
  tensorflow::AttrValue a;
  a.set_s(s);
  return a;
}
tensorflow::AttrValue AttrShape(const std::vector<int64_t>& dims) {
  tensorflow::AttrValue a;
  *a.mutable_shape() = TfShape(dims);
  return a;
}
tensorflow::AttrValue AttrTypes(const std::vector<tensorflow::DataType>& types) {
  tensorflow::AttrValue a;
  a.mutable_list();  // an empty list is still a list
  for (tensorflow::DataType t : types) a.mutable_list()->add_type(t);
  return a;
}
tensorflow::AttrValue AttrShapes(const std::vector<std::vector<int64_t>>& shapes) {
  tensorflow::AttrValue a;
  a.mutable_list();
  for (const auto& s : shapes) *a.mutable_list()->add_shape() = TfShape(s);
  return a;
}
tensorflow::AttrValue AttrFloats(const std::vector<float>& values) {
  tensorflow::AttrValue a;
  a.mutable_list();
  for (float f : values) a.mutable_list()->add_f(f);
  return a;
}
tensorflow::AttrValue AttrTensor(const tensorflow::TensorProto& t) {
  tensorflow::AttrValue a;
  *a.mutable_tensor() = t;
  return a;
}

tensorflow::TensorShapeProto TfShape(const std::vector<int64_t>& dims) {
  tensorflow::TensorShapeProto s;
  for (int64_t d : dims) s.add_dim()->set_size(d);
  return s;
}

std::string TfOutput(const std::string& node, int index) {
  return index == 0 ? node : absl::StrCat(node, ":", index);
}

TfGraph::TfGraph() {
  // TF 2.15's GraphDef version (tensorflow/core/public/version.h): the
  // graph uses that release's op set.
  graph_.mutable_versions()->set_producer(1645);
  graph_.mutable_versions()->set_min_consumer(12);
}

std::string TfGraph::Unique(const std::string& name) {
  if (names_.insert(name).second) return name;
  int& n = counters_[name];
  std::string out;
  do {
    out = absl::StrCat(name, "_", ++n);
  } while (!names_.insert(out).second);
  return out;
}

absl::StatusOr<std::string> TfGraph::Add(const std::string& op, const std::string& name,
                                         const std::vector<std::string>& inputs,
                                         const std::vector<TfAttr>& attrs) {
  const std::string node_name = Unique(name);
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("graph node '", node_name, "' (", op, "): ", what));
  };
  const OpDefinition* def = FindOp(op);
  if (def == nullptr) return error("not an op this exporter knows");
  std::map<std::string, bool> known;  // attr -> has a default
  for (absl::string_view a : absl::StrSplit(def->attrs, ' ', absl::SkipEmpty())) {
    const bool has_default = absl::EndsWith(a, "=");
    if (has_default) a.remove_suffix(1);
    known[std::string(a)] = has_default;
  }
  std::map<std::string, const tensorflow::AttrValue*> given;
  for (const auto& [key, value] : attrs) {
    if (known.count(key) == 0) return error(absl::StrCat("no attribute '", key, "'"));
    given[key] = &value;
  }
  for (const auto& [key, has_default] : known) {
    if (!has_default && given.count(key) == 0) {
      return error(absl::StrCat("attribute '", key, "' is required"));
    }
  }
  size_t expected = 0;
  for (absl::string_view arg : absl::StrSplit(def->inputs, ' ', absl::SkipEmpty())) {
    const size_t star = arg.find('*');
    if (star == absl::string_view::npos) {
      ++expected;
      continue;
    }
    const std::string sized_by(arg.substr(star + 1));
    auto it = given.find(sized_by);
    if (it == given.end()) return error(absl::StrCat("attribute '", sized_by, "' is required"));
    expected += it->second->has_list() ? it->second->list().type_size() : it->second->i();
  }
  size_t data_inputs = 0;
  for (const std::string& in : inputs) {
    if (in.empty() || in[0] != '^') ++data_inputs;
  }
  if (data_inputs != expected) {
    return error(absl::StrCat("takes ", expected, " inputs, given ", data_inputs));
  }
  tensorflow::NodeDef* node = graph_.add_node();
  node->set_name(node_name);
  node->set_op(op);
  // TF wants data inputs before control inputs.
  for (const std::string& in : inputs) {
    if (in.empty() || in[0] != '^') node->add_input(in);
  }
  for (const std::string& in : inputs) {
    if (!in.empty() && in[0] == '^') node->add_input(in);
  }
  for (const auto& [key, value] : attrs) (*node->mutable_attr())[key] = value;
  return node_name;
}

std::string TfGraph::Constant(const std::string& name, const tensorflow::TensorProto& value) {
  tensorflow::NodeDef* node = graph_.add_node();
  node->set_name(Unique(name));
  node->set_op("Const");
  (*node->mutable_attr())["value"] = AttrTensor(value);
  (*node->mutable_attr())["dtype"] = AttrType(value.dtype());
  return node->name();
}

std::string TfGraph::Floats(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<float>& values) {
  tensorflow::TensorProto t = Tensor(tensorflow::DT_FLOAT, shape);
  for (float v : values) t.add_float_val(v);
  return Constant(name, t);
}
std::string TfGraph::Int32s(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<int32_t>& values) {
  tensorflow::TensorProto t = Tensor(tensorflow::DT_INT32, shape);
  for (int32_t v : values) t.add_int_val(v);
  return Constant(name, t);
}
std::string TfGraph::Int64s(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<int64_t>& values) {
  tensorflow::TensorProto t = Tensor(tensorflow::DT_INT64, shape);
  for (int64_t v : values) t.add_int64_val(v);
  return Constant(name, t);
}
std::string TfGraph::Strings(const std::string& name, const std::vector<int64_t>& shape,
                             const std::vector<std::string>& values) {
  tensorflow::TensorProto t = Tensor(tensorflow::DT_STRING, shape);
  for (const std::string& v : values) t.add_string_val(v);
  return Constant(name, t);
}

}  // namespace export_format
}  // namespace estuary
