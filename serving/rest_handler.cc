#include "serving/rest_handler.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "serving/tensor_convert.h"

namespace estuary {
namespace serving {
namespace {

using json = nlohmann::json;
using tensorflow::TensorProto;

std::string Dump(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* JsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "Null";
    case json::value_t::boolean:
      return v.get<bool>() ? "True" : "False";
    case json::value_t::object:
      return "Object";
    case json::value_t::array:
      return "Array";
    case json::value_t::string:
      return "String";
    default:
      return "Number";
  }
}

std::string TypeString(tensorflow::DataType dtype) {
  std::string s = DataTypeName(dtype);
  if (absl::StartsWith(s, "DT_")) s = absl::AsciiStrToLower(s.substr(3));
  return s;
}

absl::Status TypeError(const json& v, tensorflow::DataType dtype) {
  return absl::InvalidArgumentError(absl::StrCat("JSON Value: ", Dump(v), " Type: ",
                                                 JsonTypeName(v), " is not of expected type: ",
                                                 TypeString(dtype)));
}

bool IsBase64Object(const json& v) {
  return v.is_object() && v.size() == 1 && v.contains("b64") && v["b64"].is_string();
}

absl::Status DecodeBase64(const json& v, std::string* out) {
  if (!IsBase64Object(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON Value: ", Dump(v), " not formatted correctly for base64 data"));
  }
  if (!absl::Base64Unescape(v["b64"].get<std::string>(), out)) {
    return absl::InvalidArgumentError("Unable to base64 decode");
  }
  return absl::OkStatus();
}

// Whether a JSON number converts to T without losing precision.
template <typename T>
bool IsLossless(const json& v) {
  constexpr int64_t kMaxInt = (int64_t{1} << std::numeric_limits<T>::digits) - 1;
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(kMaxInt);
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    return i <= kMaxInt && i >= -kMaxInt;
  }
  const double d = v.get<double>();
  return !std::isfinite(d) || (d <= std::numeric_limits<T>::max() &&
                               d >= std::numeric_limits<T>::lowest());
}

absl::Status AddValue(const json& v, tensorflow::DataType dtype, TensorProto* t) {
  switch (dtype) {
    case tensorflow::DT_FLOAT:
      if (!v.is_number()) return TypeError(v, dtype);
      if (!IsLossless<float>(v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Cannot convert JSON value: ", Dump(v), " to float without loss of precision."));
      }
      t->add_float_val(v.get<float>());
      return absl::OkStatus();
    case tensorflow::DT_DOUBLE:
      if (!v.is_number()) return TypeError(v, dtype);
      t->add_double_val(v.get<double>());
      return absl::OkStatus();
    case tensorflow::DT_INT32:
      if (!v.is_number_integer() || v.get<int64_t>() > std::numeric_limits<int32_t>::max() ||
          v.get<int64_t>() < std::numeric_limits<int32_t>::min()) {
        return TypeError(v, dtype);
      }
      t->add_int_val(static_cast<int32_t>(v.get<int64_t>()));
      return absl::OkStatus();
    case tensorflow::DT_INT64:
      if (!v.is_number_integer() ||
          (v.is_number_unsigned() &&
           v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
        return TypeError(v, dtype);
      }
      t->add_int64_val(v.get<int64_t>());
      return absl::OkStatus();
    case tensorflow::DT_STRING:
      if (v.is_object()) return DecodeBase64(v, t->add_string_val());
      if (!v.is_string()) return TypeError(v, dtype);
      t->add_string_val(v.get<std::string>());
      return absl::OkStatus();
    case tensorflow::DT_BOOL:
      if (!v.is_boolean()) return TypeError(v, dtype);
      t->add_bool_val(v.get<bool>());
      return absl::OkStatus();
    default:
      return absl::UnimplementedError(absl::StrCat("Conversion of JSON Value: ", Dump(v),
                                                   " to type: ", TypeString(dtype)));
  }
}

// The shape of a (nested list) value, from its first elements.
void DenseShape(const json& v, tensorflow::TensorShapeProto* shape) {
  if (!v.is_array()) return;
  shape->add_dim()->set_size(static_cast<int64_t>(v.size()));
  if (!v.empty()) DenseShape(v[0], shape);
}

absl::Status FillTensor(const json& v, int level, tensorflow::DataType dtype, int* count,
                        TensorProto* t) {
  const int rank = t->tensor_shape().dim_size();
  if (!v.is_array()) {
    if (level != rank) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON Value: ", Dump(v), " found at incorrect level: ", level + 1,
                       " in the JSON DOM. Expected at level: ", rank));
    }
    if (v.is_object() && dtype != tensorflow::DT_STRING) return TypeError(v, dtype);
    absl::Status st = AddValue(v, dtype, t);
    if (st.ok()) ++*count;
    return st;
  }
  if (level >= rank) {
    return absl::InvalidArgumentError(
        absl::StrCat("Encountered list at unexpected level: ", level, " expected < ", rank));
  }
  if (static_cast<int64_t>(v.size()) != t->tensor_shape().dim(level).size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Encountered list at unexpected size: ", v.size(), " at level: ", level,
        " expected size: ", t->tensor_shape().dim(level).size()));
  }
  for (const json& e : v) {
    absl::Status st = FillTensor(e, level + 1, dtype, count, t);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status ValueToTensor(const json& v, tensorflow::DataType dtype, TensorProto* t) {
  t->set_dtype(dtype);
  t->mutable_tensor_shape()->Clear();
  DenseShape(v, t->mutable_tensor_shape());
  int count = 0;
  return FillTensor(v, 0, dtype, &count, t);
}

bool IsNamedObject(const json& v) { return v.is_object() && !IsBase64Object(v); }

// Row format: every instance is one row of every input.
absl::Status InstancesToTensors(const json& instances, const SignatureSpec& sig,
                                google::protobuf::Map<std::string, TensorProto>* out) {
  if (!IsNamedObject(instances[0]) && sig.inputs.size() > 1) {
    return absl::InvalidArgumentError(
        "instances is a plain list, but expecting list of objects as multiple input tensors "
        "required as per tensorinfo_map");
  }
  const bool objects = IsNamedObject(instances[0]);
  std::map<std::string, tensorflow::TensorShapeProto> item_shape;
  int row = 0;
  auto add = [&](const json& item, const std::string& name) -> absl::Status {
    auto it = sig.inputs.find(name);
    if (it == sig.inputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON object: does not have named input: ", name));
    }
    TensorProto one;
    absl::Status st = ValueToTensor(item, ToTfDataType(it->second.dtype), &one);
    if (!st.ok()) return st;
    auto sit = item_shape.find(name);
    if (sit == item_shape.end()) {
      item_shape[name] = one.tensor_shape();
    } else if (sit->second.SerializeAsString() != one.tensor_shape().SerializeAsString()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Expecting tensor size/shape of element 0 but element ", row, " differs"));
    }
    TensorProto& acc = (*out)[name];
    one.clear_tensor_shape();
    acc.MergeFrom(one);
    return absl::OkStatus();
  };
  for (const json& elem : instances) {
    if (objects) {
      if (!IsNamedObject(elem)) {
        return absl::InvalidArgumentError(
            absl::StrCat("Expecting object but got list at item ", row, " of input list"));
      }
      for (const auto& [name, item] : elem.items()) {
        absl::Status st = add(item, name);
        if (!st.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("Failed to process element: ", row,
                                                         " key: ", name,
                                                         " of 'instances' list. Error: ",
                                                         st.message()));
        }
      }
      if (elem.size() != sig.inputs.size()) {
        std::vector<std::string> names;
        for (const auto& [n, s] : sig.inputs) names.push_back(n);
        return absl::InvalidArgumentError(absl::StrCat(
            "Failed to process element: ", row, " of 'instances' list. JSON object: ", Dump(elem),
            " keys must be equal to: ", absl::StrJoin(names, ",")));
      }
    } else {
      if (IsNamedObject(elem)) {
        return absl::InvalidArgumentError(
            absl::StrCat("Expecting value/list but got object at item ", row, " of input list"));
      }
      absl::Status st = add(elem, sig.inputs.begin()->first);
      if (!st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Failed to process element: ", row, " of 'instances' list. Error: ", st.message()));
      }
    }
    ++row;
  }
  for (auto& [name, t] : *out) {
    auto* shape = t.mutable_tensor_shape();
    shape->add_dim()->set_size(row);
    for (const auto& d : item_shape[name].dim()) shape->add_dim()->set_size(d.size());
  }
  return absl::OkStatus();
}

// Columnar format: one value per input.
absl::Status InputsToTensors(const json& inputs, const SignatureSpec& sig,
                             google::protobuf::Map<std::string, TensorProto>* out) {
  if (!inputs.is_object() || IsBase64Object(inputs)) {
    if (sig.inputs.size() > 1) {
      return absl::InvalidArgumentError(
          "inputs is a plain value/list, but expecting an object as multiple input tensors "
          "required as per tensorinfo_map");
    }
    const auto& [name, spec] = *sig.inputs.begin();
    return ValueToTensor(inputs, ToTfDataType(spec.dtype), &(*out)[name]);
  }
  for (const auto& [name, spec] : sig.inputs) {
    if (!inputs.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Missing named input: ", name, " in 'inputs' object."));
    }
    absl::Status st = ValueToTensor(inputs[name], ToTfDataType(spec.dtype), &(*out)[name]);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

// TF Serving's decimal text: the shortest %g that reads back, whole numbers
// with ".0", NaN and +-Infinity spelled out.
std::string FormatDecimal(double v, bool single) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  std::string s = absl::StrFormat("%g", v);
  bool same;
  if (single) {
    float back;
    same = absl::SimpleAtof(s, &back) && back == static_cast<float>(v);
  } else {
    double back;
    same = absl::SimpleAtod(s, &back) && back == v;
  }
  if (!same) s = absl::StrFormat("%.*g", single ? 9 : 17, v);
  if (s.find('.') == std::string::npos && s.find('e') == std::string::npos) s += ".0";
  return s;
}

absl::Status WriteScalar(const TensorProto& t, bool bytes, int64_t* offset, std::string* out) {
  const int64_t i = (*offset)++;
  switch (t.dtype()) {
    case tensorflow::DT_FLOAT:
      if (i >= t.float_val_size()) break;
      out->append(FormatDecimal(t.float_val(i), true));
      return absl::OkStatus();
    case tensorflow::DT_DOUBLE:
      if (i >= t.double_val_size()) break;
      out->append(FormatDecimal(t.double_val(i), false));
      return absl::OkStatus();
    case tensorflow::DT_INT64:
      if (i >= t.int64_val_size()) break;
      absl::StrAppend(out, t.int64_val(i));
      return absl::OkStatus();
    case tensorflow::DT_INT32:
      if (i >= t.int_val_size()) break;
      absl::StrAppend(out, t.int_val(i));
      return absl::OkStatus();
    case tensorflow::DT_BOOL:
      if (i >= t.bool_val_size()) break;
      out->append(t.bool_val(i) ? "true" : "false");
      return absl::OkStatus();
    case tensorflow::DT_STRING:
      if (i >= t.string_val_size()) break;
      if (bytes) {
        absl::StrAppend(out, "{\"b64\": \"", absl::Base64Escape(t.string_val(i)), "\"}");
      } else {
        out->append(Dump(json(t.string_val(i))));
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("Failed to write JSON value for tensor type: ", TypeString(t.dtype())));
  }
  return absl::InternalError("tensor has fewer values than its shape");
}

absl::Status WriteTensor(const TensorProto& t, bool bytes, int dim, int64_t* offset,
                         std::string* out) {
  if (dim >= t.tensor_shape().dim_size()) return WriteScalar(t, bytes, offset, out);
  out->push_back('[');
  for (int64_t i = 0; i < t.tensor_shape().dim(dim).size(); ++i) {
    if (i > 0) out->append(", ");
    absl::Status st = WriteTensor(t, bytes, dim + 1, offset, out);
    if (!st.ok()) return st;
  }
  out->push_back(']');
  return absl::OkStatus();
}

bool IsBytes(const std::string& name, const TensorProto& t) {
  return t.dtype() == tensorflow::DT_STRING && absl::EndsWith(name, "_bytes");
}

absl::Status RowJson(const google::protobuf::Map<std::string, TensorProto>& outputs,
                     std::string* out) {
  std::map<std::string, const TensorProto*> sorted;
  int64_t batch = -1;
  for (const auto& [name, t] : outputs) {
    if (t.tensor_shape().dim_size() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Tensor name: ", name, " has no shape information "));
    }
    const int64_t b = t.tensor_shape().dim(0).size();
    if (batch >= 0 && b != batch) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Tensor name: ", name, " has inconsistent batch size: ", b, " expecting: ", batch));
    }
    batch = b;
    sorted[name] = &t;
  }
  std::map<std::string, int64_t> offsets;
  const bool objects = sorted.size() > 1;
  out->append("{\n    \"predictions\": [");
  for (int64_t row = 0; row < batch; ++row) {
    out->append(row > 0 ? ",\n        " : "\n        ");
    if (objects) out->push_back('{');
    bool first = true;
    for (const auto& [name, t] : sorted) {
      if (objects) {
        absl::StrAppend(out, first ? "" : ", ", Dump(json(name)), ": ");
        first = false;
      }
      absl::Status st = WriteTensor(*t, IsBytes(name, *t), 1, &offsets[name], out);
      if (!st.ok()) return st;
    }
    if (objects) out->push_back('}');
  }
  out->append("\n    ]\n}");
  return absl::OkStatus();
}

absl::Status ColumnarJson(const google::protobuf::Map<std::string, TensorProto>& outputs,
                          std::string* out) {
  std::map<std::string, const TensorProto*> sorted;
  for (const auto& [name, t] : outputs) sorted[name] = &t;
  const bool objects = sorted.size() > 1;
  out->append("{\n    \"outputs\": ");
  if (objects) out->append("{\n        ");
  bool first = true;
  for (const auto& [name, t] : sorted) {
    if (objects) {
      absl::StrAppend(out, first ? "" : ",\n        ", Dump(json(name)), ": ");
      first = false;
    }
    int64_t offset = 0;
    absl::Status st = WriteTensor(*t, IsBytes(name, *t), 0, &offset, out);
    if (!st.ok()) return st;
  }
  if (objects) out->append("\n    }");
  out->append("\n}");
  return absl::OkStatus();
}

absl::Status ParseJson(absl::string_view body, json* doc) {
  if (body.empty()) {
    return absl::InvalidArgumentError("JSON Parse error: The document is empty");
  }
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    // Parse again for the parser's message (the error path only).
    try {
      json reparsed = json::parse(body.begin(), body.end());
      static_cast<void>(reparsed);
    } catch (const json::exception& e) {
      // parse_error, or out_of_range for a number beyond double's range
      // ("1e309"; found by fuzz/rest_handler_fuzzer).
      return absl::InvalidArgumentError(absl::StrCat("JSON Parse error: ", e.what()));
    }
    return absl::InvalidArgumentError("JSON Parse error: invalid JSON");
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("JSON Value: ", Dump(parsed), " Is not object"));
  }
  *doc = std::move(parsed);
  return absl::OkStatus();
}

absl::Status FillSignatureName(const json& doc, tensorflow::serving::ModelSpec* spec) {
  if (!doc.contains("signature_name")) return absl::OkStatus();
  if (!doc["signature_name"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JSON Value: ", Dump(doc),
        " not formatted correctly. 'signature_name' key must be a string value."));
  }
  spec->set_signature_name(doc["signature_name"].get<std::string>());
  return absl::OkStatus();
}

absl::Status AddFeatureValue(const json& v, const std::string& name, tensorflow::Feature* f) {
  auto kind_error = [&]() {
    const char* kind = f->has_bytes_list()   ? "bytes"
                       : f->has_float_list() ? "float"
                       : f->has_int64_list() ? "int64"
                                             : "UNKNOWN";
    return absl::InvalidArgumentError(absl::StrCat("Unexpected element type in feature: ", name,
                                                   " expecting type: ", kind));
  };
  auto unexpected = [&]() {
    return absl::InvalidArgumentError(absl::StrCat(
        "Feature: ", name, " has element with unexpected JSON type: ", JsonTypeName(v)));
  };
  using Kind = tensorflow::Feature::KindCase;
  auto of_kind = [&](Kind k) { return f->kind_case() == Kind::KIND_NOT_SET || f->kind_case() == k; };
  if (v.is_null() || v.is_array()) return unexpected();
  if (v.is_boolean()) {
    if (!of_kind(Kind::kInt64List)) return kind_error();
    f->mutable_int64_list()->add_value(v.get<bool>() ? 1 : 0);
  } else if (v.is_object()) {
    if (!IsBase64Object(v)) return unexpected();
    if (!of_kind(Kind::kBytesList)) return kind_error();
    return DecodeBase64(v, f->mutable_bytes_list()->add_value());
  } else if (v.is_string()) {
    if (!of_kind(Kind::kBytesList)) return kind_error();
    f->mutable_bytes_list()->add_value(v.get<std::string>());
  } else if (v.is_number_float()) {
    if (!of_kind(Kind::kFloatList)) return kind_error();
    if (!IsLossless<float>(v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Cannot convert JSON value: ", Dump(v), " to float without loss of precision."));
    }
    f->mutable_float_list()->add_value(v.get<float>());
  } else {
    if (!of_kind(Kind::kInt64List)) return kind_error();
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(
          absl::StrCat("Feature: ", name, " has uint64 element. Only int64 is supported."));
    }
    f->mutable_int64_list()->add_value(v.get<int64_t>());
  }
  return absl::OkStatus();
}

absl::Status JsonToExample(const json& v, tensorflow::Example* example) {
  if (!v.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Example must be JSON object but got JSON ", JsonTypeName(v)));
  }
  auto* features = example->mutable_features()->mutable_feature();
  for (const auto& [name, content] : v.items()) {
    tensorflow::Feature f;
    if (content.is_array()) {
      for (const json& e : content) {
        absl::Status st = AddFeatureValue(e, name, &f);
        if (!st.ok()) return st;
      }
    } else {
      absl::Status st = AddFeatureValue(content, name, &f);
      if (!st.ok()) return st;
    }
    (*features)[name] = std::move(f);
  }
  return absl::OkStatus();
}

absl::Status JsonToInput(const json& doc, const char* method, tensorflow::serving::Input* input) {
  bool has_context = false;
  if (doc.contains("context")) {
    absl::Status st = JsonToExample(
        doc["context"], input->mutable_example_list_with_context()->mutable_context());
    if (!st.ok()) return st;
    has_context = true;
  }
  if (!doc.contains("examples")) {
    return absl::InvalidArgumentError(absl::StrCat("JSON Value: ", Dump(doc), " When method is ",
                                                   method,
                                                   ", key 'examples' is expected and was not found"));
  }
  const json& examples = doc["examples"];
  if (!examples.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON Value: ", Dump(doc), " Expecting 'examples' value to be an list/array"));
  }
  if (examples.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON Value: ", Dump(doc), " 'examples' value is an empty array"));
  }
  for (const json& e : examples) {
    absl::Status st = JsonToExample(e, has_context
                                           ? input->mutable_example_list_with_context()->add_examples()
                                           : input->mutable_example_list()->add_examples());
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status ProtoJson(const google::protobuf::Message& m, std::string* out) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  auto st = google::protobuf::util::MessageToJsonString(m, out, opts);
  if (!st.ok()) {
    return absl::InternalError(absl::StrCat("Failed to convert proto to json. Error: ",
                                            st.ToString()));
  }
  return absl::OkStatus();
}

// Parsed path: /v1/models/NAME[/versions/V][/metadata | :verb].
struct Route {
  std::string name;
  std::optional<int64_t> version;
  std::string verb;  // "", "metadata", "predict", "classify", "regress"
};

absl::StatusOr<Route> ParsePath(absl::string_view method, absl::string_view path) {
  const absl::Status malformed =
      absl::InvalidArgumentError(absl::StrCat("Malformed request: ", method, " ", path));
  constexpr absl::string_view kPrefix = "/v1/models/";
  if (!absl::StartsWithIgnoreCase(path, kPrefix)) return malformed;
  absl::string_view rest = path.substr(kPrefix.size());
  Route r;
  const size_t colon = rest.find(':');
  if (colon != absl::string_view::npos) {
    r.verb = absl::AsciiStrToLower(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (method != "POST" || (r.verb != "predict" && r.verb != "classify" && r.verb != "regress")) {
      return malformed;
    }
  } else if (method != "GET") {
    return malformed;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  if (r.verb.empty() && parts.size() > 1 && absl::EqualsIgnoreCase(parts.back(), "metadata")) {
    r.verb = "metadata";
    parts.pop_back();
  }
  if (parts.empty() || parts[0].empty()) return malformed;
  r.name = std::string(parts[0]);
  if (parts.size() == 3 && absl::EqualsIgnoreCase(parts[1], "versions")) {
    int64_t v;
    if (!absl::SimpleAtoi(parts[2], &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Failed to convert version: ", parts[2], " to numeric."));
    }
    r.version = v;
  } else if (parts.size() != 1) {
    return malformed;
  }
  return r;
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    default:
      return 500;
  }
}

std::string JsonError(absl::string_view message) {
  return absl::StrCat("{ \"error\": ", Dump(json(std::string(message))), " }");
}

HttpReply RestHandler::Handle(absl::string_view method, absl::string_view path,
                              absl::string_view body) const {
  HttpReply reply;
  const size_t q = path.find('?');
  if (q != absl::string_view::npos) path = path.substr(0, q);
  absl::Status st = Dispatch(method, path, body, &reply.body);
  if (!st.ok()) {
    reply.status = HttpStatusFor(st.code());
    reply.body = JsonError(st.message());
  }
  return reply;
}

absl::Status RestHandler::Dispatch(absl::string_view method, absl::string_view path,
                                   absl::string_view body, std::string* out) const {
  absl::StatusOr<Route> route = ParsePath(method, path);
  if (!route.ok()) return route.status();
  tensorflow::serving::ModelSpec spec;
  spec.set_name(route->name);
  if (route->version) spec.mutable_version()->set_value(*route->version);

  if (route->verb.empty()) {
    tensorflow::serving::GetModelStatusRequest req;
    *req.mutable_model_spec() = spec;
    tensorflow::serving::GetModelStatusResponse resp;
    absl::Status st = api_->GetModelStatus(req, &resp);
    if (!st.ok()) return st;
    return ProtoJson(resp, out);
  }
  if (route->verb == "metadata") {
    tensorflow::serving::GetModelMetadataRequest req;
    *req.mutable_model_spec() = spec;
    req.add_metadata_field("signature_def");
    tensorflow::serving::GetModelMetadataResponse resp;
    absl::Status st = api_->GetModelMetadata(req, &resp);
    if (!st.ok()) return st;
    tensorflow::serving::SignatureDefMap map;
    if (!resp.metadata().at("signature_def").UnpackTo(&map)) {
      return absl::InternalError("cannot unpack the signature_def metadata");
    }
    std::string spec_json, map_json;
    st = ProtoJson(resp.model_spec(), &spec_json);
    if (st.ok()) st = ProtoJson(map, &map_json);
    if (!st.ok()) return st;
    *out = absl::StrCat("{\n\"model_spec\":", spec_json, ",\n\"metadata\": {\"signature_def\": ",
                        map_json, "\n}\n}\n");
    return absl::OkStatus();
  }

  json doc;
  absl::Status st = ParseJson(body, &doc);
  if (!st.ok()) return st;
  st = FillSignatureName(doc, &spec);
  if (!st.ok()) return st;

  if (route->verb == "predict") {
    absl::StatusOr<SignatureSpec> sig = api_->GetSignature(spec);
    if (!sig.ok()) return sig.status();
    if (sig->inputs.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Failed to get input map for signature: ",
          spec.signature_name().empty() ? "DEFAULT" : spec.signature_name()));
    }
    tensorflow::serving::PredictRequest req;
    *req.mutable_model_spec() = spec;
    const bool rows = doc.contains("instances");
    if (rows && doc.contains("inputs")) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON Value: ", Dump(doc),
                       " Not formatted correctly expecting only one of 'inputs' or 'instances' "
                       "keys to exist "));
    }
    if (rows) {
      const json& instances = doc["instances"];
      if (!instances.is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat("JSON Value: ", Dump(doc), " Excepting 'instances' to be an list/array"));
      }
      if (instances.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("JSON Value: ", Dump(doc), " No values in 'instances' array"));
      }
      st = InstancesToTensors(instances, *sig, req.mutable_inputs());
    } else if (doc.contains("inputs")) {
      st = InputsToTensors(doc["inputs"], *sig, req.mutable_inputs());
    } else {
      st = absl::InvalidArgumentError("Missing 'inputs' or 'instances' key");
    }
    if (!st.ok()) return st;
    tensorflow::serving::PredictResponse resp;
    st = api_->Predict(req, &resp);
    if (!st.ok()) return st;
    if (resp.outputs().empty()) {
      return absl::InvalidArgumentError("Cannot convert empty tensor map to JSON");
    }
    return rows ? RowJson(resp.outputs(), out) : ColumnarJson(resp.outputs(), out);
  }
  if (route->verb == "classify") {
    tensorflow::serving::ClassificationRequest req;
    *req.mutable_model_spec() = spec;
    st = JsonToInput(doc, "classify", req.mutable_input());
    if (!st.ok()) return st;
    tensorflow::serving::ClassificationResponse resp;
    st = api_->Classify(req, &resp);
    if (!st.ok()) return st;
    out->append("{\n    \"results\": [");
    bool first_row = true;
    for (const auto& c : resp.result().classifications()) {
      out->append(first_row ? "\n        [" : ",\n        [");
      first_row = false;
      bool first = true;
      for (const auto& cls : c.classes()) {
        absl::StrAppend(out, first ? "" : ", ", "[", Dump(json(cls.label())), ", ",
                        FormatDecimal(cls.score(), true), "]");
        first = false;
      }
      out->push_back(']');
    }
    out->append("\n    ]\n}");
    return absl::OkStatus();
  }
  // regress
  tensorflow::serving::RegressionRequest req;
  *req.mutable_model_spec() = spec;
  st = JsonToInput(doc, "regress", req.mutable_input());
  if (!st.ok()) return st;
  tensorflow::serving::RegressionResponse resp;
  st = api_->Regress(req, &resp);
  if (!st.ok()) return st;
  out->append("{\n    \"results\": [");
  bool first = true;
  for (const auto& r : resp.result().regressions()) {
    absl::StrAppend(out, first ? "" : ", ", FormatDecimal(r.value(), true));
    first = false;
  }
  out->append("]\n}");
  return absl::OkStatus();
}

}  // namespace serving
}  // namespace estuary
