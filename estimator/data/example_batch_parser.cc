#include "estimator/data/example_batch_parser.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

using json = nlohmann::json;

class TFRecordRecordReader : public RecordReader {
 public:
  TFRecordRecordReader(std::string file, std::unique_ptr<io::TFRecordReader> reader)
      : file_(std::move(file)), reader_(std::move(reader)) {}

  absl::StatusOr<bool> Next(std::string* record, RecordOrigin* origin) override {
    ASSIGN_OR_RETURN(bool more, reader_->Next(record));
    if (!more) return false;
    origin->file = file_;
    origin->line = -1;
    origin->offset = reader_->record_offset();
    origin->index = reader_->records_read() - 1;
    return true;
  }

 private:
  const std::string file_;
  std::unique_ptr<io::TFRecordReader> reader_;
};

absl::Status Error(const std::string& path, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", msg));
}

absl::StatusOr<DType> ParseDType(const json& v, const std::string& path) {
  if (!v.is_string()) return Error(path, "expected \"float32\", \"int64\" or \"string\"");
  const std::string s = v.get<std::string>();
  if (s == "float32") return DType::kFloat;
  if (s == "int64") return DType::kInt64;
  if (s == "string") return DType::kString;
  return Error(path, absl::StrCat("'", s, "' is not one of float32, int64, string"));
}

absl::StatusOr<Tensor> ParseDefault(const json& v, DType dtype, const std::string& path) {
  const std::vector<json> values = v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v};
  Tensor t;
  t.dtype = dtype;
  t.shape = {static_cast<int64_t>(values.size())};
  for (const json& e : values) {
    if (dtype == DType::kString) {
      if (!e.is_string()) return Error(path, "expected a string default");
      t.strings.push_back(e.get<std::string>());
    } else if (dtype == DType::kInt64) {
      if (!e.is_number_integer()) return Error(path, "expected an integer default");
      t.ints.push_back(e.get<int64_t>());
    } else {
      if (!e.is_number()) return Error(path, "expected a number default");
      t.floats.push_back(e.get<float>());
    }
  }
  return t;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RecordReader>> OpenTFRecordRecordReader(
    const std::string& file, const io::TFRecordOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<io::TFRecordReader> reader,
                   io::TFRecordReader::Open(file, options));
  return std::unique_ptr<RecordReader>(new TFRecordRecordReader(file, std::move(reader)));
}

absl::StatusOr<data::ExampleParserSpec> ExampleSpecFromJson(const json& features,
                                                            const std::string& path) {
  if (!features.is_object() || features.empty()) {
    return Error(path, "expected an object mapping feature keys to {\"dtype\", \"shape\", "
                       "\"default\", \"var_len\"}");
  }
  std::vector<data::FeatureSpec> specs;
  for (auto it = features.begin(); it != features.end(); ++it) {
    const std::string p = absl::StrCat(path, ".", it.key());
    const json& f = it.value();
    if (!f.is_object()) return Error(p, "expected an object");
    for (auto k = f.begin(); k != f.end(); ++k) {
      if (k.key() != "dtype" && k.key() != "shape" && k.key() != "default" &&
          k.key() != "var_len") {
        return Error(absl::StrCat(p, ".", k.key()),
                     "unknown key (expected dtype, shape, default, var_len)");
      }
    }
    if (!f.contains("dtype")) return Error(p + ".dtype", "is required");
    ASSIGN_OR_RETURN(DType dtype, ParseDType(f["dtype"], p + ".dtype"));
    if (f.value("var_len", false)) {
      specs.push_back(data::VarLenFeature{it.key(), dtype});
      continue;
    }
    data::FixedLenFeature fixed;
    fixed.key = it.key();
    fixed.dtype = dtype;
    if (f.contains("shape")) {
      if (!f["shape"].is_array()) return Error(p + ".shape", "expected an array of integers");
      for (const json& d : f["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0) {
          return Error(p + ".shape", "expected non-negative integers");
        }
        fixed.shape.push_back(d.get<int64_t>());
      }
    }
    if (f.contains("default")) {
      ASSIGN_OR_RETURN(fixed.default_value, ParseDefault(f["default"], dtype, p + ".default"));
    }
    specs.push_back(std::move(fixed));
  }
  absl::StatusOr<data::ExampleParserSpec> spec = data::ExampleParserSpec::Create(std::move(specs));
  if (!spec.ok()) return Error(path, spec.status().message());
  return spec;
}

absl::StatusOr<Batch> ExampleBatchParser::Parse(const std::vector<std::string>& records,
                                                const std::vector<RecordOrigin>& origins) {
  std::vector<std::string> names;
  names.reserve(origins.size());
  for (const RecordOrigin& o : origins) names.push_back(o.ToString());
  absl::StatusOr<FeatureMap> parsed = data::ParseExamples(spec_, records, names);
  int64_t kept = static_cast<int64_t>(records.size());
  if (!parsed.ok() && policy_ == BadRecordPolicy::kSkip) {
    // Find the bad records one by one and parse the rest as a batch.
    std::vector<std::string> good, good_names;
    for (size_t i = 0; i < records.size(); ++i) {
      absl::StatusOr<FeatureMap> one = data::ParseExamples(
          spec_, absl::MakeConstSpan(&records[i], 1), absl::MakeConstSpan(&names[i], 1));
      if (one.ok()) {
        good.push_back(records[i]);
        good_names.push_back(names[i]);
        continue;
      }
      const int64_t n = ++skipped_;
      if (n <= kMaxLogged) {
        spdlog::warn("skipping bad Example ({} skipped so far): {}", n, one.status().message());
      }
    }
    kept = static_cast<int64_t>(good.size());
    parsed = data::ParseExamples(spec_, good, good_names);
  }
  if (!parsed.ok()) return parsed.status();
  FeatureMap features = *std::move(parsed);
  Batch batch;
  batch.batch_size = kept;
  if (!label_key_.empty()) {
    auto it = features.find(label_key_);
    if (it == features.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("label_key '", label_key_, "' is not among the parsed features"));
    }
    if (!std::holds_alternative<Tensor>(it->second)) {
      return absl::InvalidArgumentError(
          absl::StrCat("label_key '", label_key_, "' must be a fixed-length feature"));
    }
    batch.labels = std::get<Tensor>(std::move(it->second));
    batch.has_labels = true;
    features.erase(it);
  }
  batch.features = std::move(features);
  return batch;
}

}  // namespace estuary
