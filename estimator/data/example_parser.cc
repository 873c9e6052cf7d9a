#include "estimator/data/example_parser.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/example.pb.h"

namespace estuary {
namespace data {
namespace {

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

int64_t ValueCount(const Tensor& t) {
  switch (t.dtype) {
    case DType::kFloat: return static_cast<int64_t>(t.floats.size());
    case DType::kInt64: return static_cast<int64_t>(t.ints.size());
    case DType::kString: return static_cast<int64_t>(t.strings.size());
  }
  return 0;
}

// The dtype a Feature's list feeds, or nullopt when no list is set.
std::optional<DType> KindOf(const tensorflow::Feature& f) {
  switch (f.kind_case()) {
    case tensorflow::Feature::kFloatList: return DType::kFloat;
    case tensorflow::Feature::kInt64List: return DType::kInt64;
    case tensorflow::Feature::kBytesList: return DType::kString;
    case tensorflow::Feature::KIND_NOT_SET: return std::nullopt;
  }
  return std::nullopt;
}

int64_t ListSize(const tensorflow::Feature& f) {
  switch (f.kind_case()) {
    case tensorflow::Feature::kFloatList: return f.float_list().value_size();
    case tensorflow::Feature::kInt64List: return f.int64_list().value_size();
    case tensorflow::Feature::kBytesList: return f.bytes_list().value_size();
    case tensorflow::Feature::KIND_NOT_SET: return 0;
  }
  return 0;
}

const char* ValueWord(DType dtype) {
  switch (dtype) {
    case DType::kFloat: return "float";
    case DType::kInt64: return "int64";
    case DType::kString: return "bytes";
  }
  return "?";
}

// Appends the values of `f` (whose kind matches the feature) to the value
// vector of `dtype`.
void AppendList(const tensorflow::Feature& f, std::vector<float>* floats,
                std::vector<int64_t>* ints, std::vector<std::string>* strings) {
  switch (f.kind_case()) {
    case tensorflow::Feature::kFloatList:
      floats->insert(floats->end(), f.float_list().value().begin(), f.float_list().value().end());
      break;
    case tensorflow::Feature::kInt64List:
      ints->insert(ints->end(), f.int64_list().value().begin(), f.int64_list().value().end());
      break;
    case tensorflow::Feature::kBytesList:
      strings->insert(strings->end(), f.bytes_list().value().begin(),
                      f.bytes_list().value().end());
      break;
    case tensorflow::Feature::KIND_NOT_SET:
      break;
  }
}

void AppendTensor(const Tensor& t, Tensor* out) {
  out->floats.insert(out->floats.end(), t.floats.begin(), t.floats.end());
  out->ints.insert(out->ints.end(), t.ints.begin(), t.ints.end());
  out->strings.insert(out->strings.end(), t.strings.begin(), t.strings.end());
}

// Validates a FixedLenFeature and normalizes its default to `shape`.
absl::Status NormalizeFixedLen(FixedLenFeature* f) {
  for (int64_t d : f->shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature '", f->key, "': shape ", ShapeString(f->shape),
                       " has a negative dimension (variable-length features are "
                       "VarLenFeature)"));
    }
  }
  if (!f->default_value.has_value()) return absl::OkStatus();
  Tensor& def = *f->default_value;
  if (def.dtype != f->dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature '", f->key, "': default_value is ", DTypeName(def.dtype),
                     " but the feature is ", DTypeName(f->dtype)));
  }
  const int64_t want = NumElements(f->shape);
  const int64_t have = ValueCount(def);
  if (have != want && have != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("feature '", f->key, "': default_value has ", have, " values; shape ",
                     ShapeString(f->shape), " needs ", want, " (or 1, broadcast)"));
  }
  // Keep only the value vector of the dtype.
  if (def.dtype != DType::kFloat) def.floats.clear();
  if (def.dtype != DType::kInt64) def.ints.clear();
  if (def.dtype != DType::kString) def.strings.clear();
  if (have == 1 && want != 1) {
    def.floats.assign(def.floats.empty() ? 0 : want, def.floats.empty() ? 0.f : def.floats[0]);
    def.ints.assign(def.ints.empty() ? 0 : want, def.ints.empty() ? 0 : def.ints[0]);
    def.strings.assign(def.strings.empty() ? 0 : want,
                       def.strings.empty() ? std::string() : def.strings[0]);
  }
  def.shape = f->shape;
  return absl::OkStatus();
}

std::string ExamplePrefix(size_t i, absl::Span<const std::string> names) {
  if (names.empty()) return absl::StrCat("example ", i);
  return absl::StrCat("example ", i, " (", names[i], ")");
}

}  // namespace

Tensor FloatDefault(float v) { return Tensor::Floats({}, {v}); }
Tensor Int64Default(int64_t v) { return Tensor::Ints({}, {v}); }
Tensor StringDefault(std::string v) { return Tensor::Strings({}, {std::move(v)}); }

const char* FeatureKindName(DType dtype) {
  switch (dtype) {
    case DType::kFloat: return "float_list";
    case DType::kInt64: return "int64_list";
    case DType::kString: return "bytes_list";
  }
  return "?";
}

absl::StatusOr<ExampleParserSpec> ExampleParserSpec::Create(std::vector<FeatureSpec> features) {
  absl::flat_hash_set<std::string> keys;
  for (FeatureSpec& spec : features) {
    const std::string& key = std::visit([](const auto& f) -> const std::string& { return f.key; },
                                        spec);
    if (key.empty()) return absl::InvalidArgumentError("feature spec with an empty key");
    if (!keys.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat("feature '", key, "' is specified twice"));
    }
    if (auto* fixed = std::get_if<FixedLenFeature>(&spec)) {
      if (absl::Status s = NormalizeFixedLen(fixed); !s.ok()) return s;
    }
  }
  return ExampleParserSpec(std::move(features));
}

absl::StatusOr<FeatureMap> ParseExamples(const ExampleParserSpec& spec,
                                         absl::Span<const std::string> serialized,
                                         absl::Span<const std::string> names) {
  if (!names.empty() && names.size() != serialized.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ParseExamples: ", names.size(),
                                                   " names for ", serialized.size(),
                                                   " serialized examples"));
  }
  const int64_t batch = static_cast<int64_t>(serialized.size());
  const std::vector<FeatureSpec>& features = spec.features();

  // Output builders, one per spec feature.
  std::vector<FeatureValue> outputs;
  outputs.reserve(features.size());
  for (const FeatureSpec& f : features) {
    if (const auto* fixed = std::get_if<FixedLenFeature>(&f)) {
      Tensor t;
      t.dtype = fixed->dtype;
      t.shape.push_back(batch);
      t.shape.insert(t.shape.end(), fixed->shape.begin(), fixed->shape.end());
      const size_t n = static_cast<size_t>(t.num_elements());
      switch (t.dtype) {
        case DType::kFloat: t.floats.reserve(n); break;
        case DType::kInt64: t.ints.reserve(n); break;
        case DType::kString: t.strings.reserve(n); break;
      }
      outputs.emplace_back(std::move(t));
    } else {
      SparseTensor st;
      st.dtype = std::get<VarLenFeature>(f).dtype;
      st.batch_size = batch;
      outputs.emplace_back(std::move(st));
    }
  }

  tensorflow::Example example;
  for (int64_t i = 0; i < batch; ++i) {
    const std::string& bytes = serialized[i];
    if (!example.ParseFromString(bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(ExamplePrefix(i, names),
                                                     ": not a serialized tf.train.Example (",
                                                     bytes.size(), " bytes)"));
    }
    const auto& map = example.features().feature();
    for (size_t k = 0; k < features.size(); ++k) {
      const FeatureSpec& fspec = features[k];
      const std::string& key =
          std::visit([](const auto& f) -> const std::string& { return f.key; }, fspec);
      const DType dtype = std::visit([](const auto& f) { return f.dtype; }, fspec);
      auto it = map.find(key);
      const tensorflow::Feature* feature = nullptr;
      std::optional<DType> kind;
      if (it != map.end()) {
        kind = KindOf(it->second);
        if (kind.has_value()) feature = &it->second;
      }
      if (feature != nullptr && *kind != dtype) {
        return absl::InvalidArgumentError(absl::StrCat(
            ExamplePrefix(i, names), ": feature '", key, "': expected ", FeatureKindName(dtype),
            ", got ", FeatureKindName(*kind)));
      }

      if (const auto* fixed = std::get_if<FixedLenFeature>(&fspec)) {
        Tensor& out = std::get<Tensor>(outputs[k]);
        if (feature == nullptr) {
          if (!fixed->default_value.has_value()) {
            return absl::InvalidArgumentError(absl::StrCat(
                ExamplePrefix(i, names), ": feature '", key, "': required feature is missing (",
                DTypeName(dtype), ", shape ", ShapeString(fixed->shape), ", no default_value)"));
          }
          AppendTensor(*fixed->default_value, &out);
          continue;
        }
        const int64_t want = NumElements(fixed->shape);
        const int64_t have = ListSize(*feature);
        if (have != want) {
          return absl::InvalidArgumentError(absl::StrCat(
              ExamplePrefix(i, names), ": feature '", key, "': expected ", want, " ",
              ValueWord(dtype), " values for shape ", ShapeString(fixed->shape), ", got ", have));
        }
        AppendList(*feature, &out.floats, &out.ints, &out.strings);
      } else {
        if (feature == nullptr) continue;
        SparseTensor& out = std::get<SparseTensor>(outputs[k]);
        const int64_t n = ListSize(*feature);
        for (int64_t j = 0; j < n; ++j) {
          out.rows.push_back(i);
          out.cols.push_back(j);
        }
        if (n > out.max_len) out.max_len = n;
        AppendList(*feature, &out.floats, &out.ints, &out.strings);
      }
    }
  }

  FeatureMap result;
  for (size_t k = 0; k < features.size(); ++k) {
    const std::string& key =
        std::visit([](const auto& f) -> const std::string& { return f.key; }, features[k]);
    result.emplace(key, std::move(outputs[k]));
  }
  return result;
}

}  // namespace data
}  // namespace estuary
