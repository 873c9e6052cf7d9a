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

}  // namespace

absl::StatusOr<std::unique_ptr<RecordReader>> OpenTFRecordRecordReader(
    const std::string& file, const io::TFRecordOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<io::TFRecordReader> reader,
                   io::TFRecordReader::Open(file, options));
  return std::unique_ptr<RecordReader>(new TFRecordRecordReader(file, std::move(reader)));
}

absl::StatusOr<data::ExampleParserSpec> ExampleSpecFromConfig(
    const std::vector<ExampleFeatureConfig>& features, const JsonPath& where) {
  std::vector<data::FeatureSpec> specs;
  for (const ExampleFeatureConfig& f : features) {
    if (f.var_len) {
      specs.push_back(data::VarLenFeature{f.key, f.dtype});
      continue;
    }
    data::FixedLenFeature fixed;
    fixed.key = f.key;
    fixed.dtype = f.dtype;
    fixed.shape = f.shape;
    fixed.default_value = f.default_value;
    specs.push_back(std::move(fixed));
  }
  absl::StatusOr<data::ExampleParserSpec> spec = data::ExampleParserSpec::Create(std::move(specs));
  if (!spec.ok()) return where.Error(spec.status().message());
  return spec;
}

absl::StatusOr<data::ExampleParserSpec> ExampleSpecFromJson(const json& features,
                                                            const std::string& path) {
  const JsonPath where("", path);
  ASSIGN_OR_RETURN(std::vector<ExampleFeatureConfig> parsed, ParseExampleFeatures(features, where));
  return ExampleSpecFromConfig(parsed, where);
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
