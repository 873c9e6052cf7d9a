#include "serving/tensor_convert.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace estuary {
namespace serving {
namespace {

// Copies `n` little-endian values of type T from tensor_content.
template <typename T, typename Out>
absl::Status FromContent(const std::string& content, int64_t n, std::vector<Out>* out) {
  if (content.size() != static_cast<size_t>(n) * sizeof(T)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor_content holds ", content.size(),
                                                   " bytes; the shape needs ", n * sizeof(T)));
  }
  out->resize(n);
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, content.data() + i * sizeof(T), sizeof(T));
    (*out)[i] = static_cast<Out>(v);
  }
  return absl::OkStatus();
}

// Fills `out` with `n` values from a repeated field (or broadcasts one).
template <typename Field, typename Out>
absl::Status FromField(const Field& field, int64_t n, std::vector<Out>* out) {
  const int64_t have = field.size();
  if (have == n) {
    out->assign(field.begin(), field.end());
    return absl::OkStatus();
  }
  if (have == 1 && n > 1) {
    out->assign(n, static_cast<Out>(field.Get(0)));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("tensor has ", have, " values but its shape needs ", n));
}

}  // namespace

std::string DataTypeName(tensorflow::DataType dtype) {
  if (tensorflow::DataType_IsValid(dtype)) return tensorflow::DataType_Name(dtype);
  return absl::StrCat("DataType(", static_cast<int>(dtype), ")");
}

absl::StatusOr<Tensor> FromTensorProto(const tensorflow::TensorProto& proto) {
  Tensor t;
  if (proto.tensor_shape().unknown_rank()) {
    return absl::InvalidArgumentError("tensor has an unknown rank");
  }
  int64_t n = 1;
  for (const auto& d : proto.tensor_shape().dim()) {
    if (d.size() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor has a dimension of size ", d.size()));
    }
    t.shape.push_back(d.size());
    n *= d.size();
  }
  const std::string& content = proto.tensor_content();
  const bool raw = !content.empty();
  absl::Status st;
  switch (proto.dtype()) {
    case tensorflow::DT_FLOAT:
      t.dtype = DType::kFloat;
      st = raw ? FromContent<float>(content, n, &t.floats) : FromField(proto.float_val(), n, &t.floats);
      break;
    case tensorflow::DT_DOUBLE:
      t.dtype = DType::kFloat;
      st = raw ? FromContent<double>(content, n, &t.floats)
               : FromField(proto.double_val(), n, &t.floats);
      break;
    case tensorflow::DT_INT64:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<int64_t>(content, n, &t.ints)
               : FromField(proto.int64_val(), n, &t.ints);
      break;
    case tensorflow::DT_INT32:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<int32_t>(content, n, &t.ints) : FromField(proto.int_val(), n, &t.ints);
      break;
    case tensorflow::DT_INT16:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<int16_t>(content, n, &t.ints) : FromField(proto.int_val(), n, &t.ints);
      break;
    case tensorflow::DT_INT8:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<int8_t>(content, n, &t.ints) : FromField(proto.int_val(), n, &t.ints);
      break;
    case tensorflow::DT_UINT8:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<uint8_t>(content, n, &t.ints) : FromField(proto.int_val(), n, &t.ints);
      break;
    case tensorflow::DT_UINT16:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<uint16_t>(content, n, &t.ints) : FromField(proto.int_val(), n, &t.ints);
      break;
    case tensorflow::DT_UINT32:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<uint32_t>(content, n, &t.ints)
               : FromField(proto.uint32_val(), n, &t.ints);
      break;
    case tensorflow::DT_BOOL:
      t.dtype = DType::kInt64;
      st = raw ? FromContent<bool>(content, n, &t.ints) : FromField(proto.bool_val(), n, &t.ints);
      break;
    case tensorflow::DT_STRING:
      t.dtype = DType::kString;
      st = FromField(proto.string_val(), n, &t.strings);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tensors of dtype ", DataTypeName(proto.dtype()), " are not supported"));
  }
  if (!st.ok()) return st;
  return t;
}

void ToTensorProto(const Tensor& tensor, tensorflow::TensorProto* proto) {
  proto->set_dtype(ToTfDataType(tensor.dtype));
  auto* shape = proto->mutable_tensor_shape();
  for (int64_t d : tensor.shape) shape->add_dim()->set_size(d);
  switch (tensor.dtype) {
    case DType::kFloat:
      proto->mutable_float_val()->Add(tensor.floats.begin(), tensor.floats.end());
      break;
    case DType::kInt64:
      proto->mutable_int64_val()->Add(tensor.ints.begin(), tensor.ints.end());
      break;
    case DType::kString:
      for (const std::string& s : tensor.strings) proto->add_string_val(s);
      break;
  }
}

tensorflow::SignatureDef ToSignatureDef(const SignatureSpec& spec) {
  tensorflow::SignatureDef def;
  def.set_method_name(spec.method_name);
  auto fill = [](const std::map<std::string, TensorSpec>& specs,
                 google::protobuf::Map<std::string, tensorflow::TensorInfo>* out) {
    for (const auto& [key, ts] : specs) {
      tensorflow::TensorInfo& info = (*out)[key];
      info.set_name(absl::StrCat(key, ":0"));
      info.set_dtype(ToTfDataType(ts.dtype));
      auto* shape = info.mutable_tensor_shape();
      for (int64_t d : ts.shape) shape->add_dim()->set_size(d);
    }
  };
  fill(spec.inputs, def.mutable_inputs());
  fill(spec.outputs, def.mutable_outputs());
  return def;
}

}  // namespace serving
}  // namespace estuary
