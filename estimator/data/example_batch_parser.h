// TFRecord files of tf.train.Example in the input pipeline: a RecordReader
// over common/io/tfrecord and a BatchParser over ParseExamples.
#ifndef ESTUARY_ESTIMATOR_DATA_EXAMPLE_BATCH_PARSER_H_
#define ESTUARY_ESTIMATOR_DATA_EXAMPLE_BATCH_PARSER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/io/tfrecord.h"
#include "common/job_config.h"
#include "common/json_schema.h"
#include "estimator/data/batch_parser.h"
#include "estimator/data/csv_parser.h"  // BadRecordPolicy
#include "estimator/data/example_parser.h"
#include "estimator/data/record_reader.h"
#include "nlohmann/json.hpp"

namespace estuary {

// Reads the payloads of one TFRecord file; origins carry the record index
// and byte offset.
absl::StatusOr<std::unique_ptr<RecordReader>> OpenTFRecordRecordReader(
    const std::string& file, const io::TFRecordOptions& options);

// The parser spec of an input section's parsed "features"
// (common/job_config's ParseExampleFeatures). InvalidArgument from `where`
// on what ExampleParserSpec::Create rejects (a default whose size is
// neither 1 nor the shape's).
absl::StatusOr<data::ExampleParserSpec> ExampleSpecFromConfig(
    const std::vector<ExampleFeatureConfig>& features, const JsonPath& where);

// ParseExampleFeatures (errors rooted at `json_path`, e.g.
// "$.train_input.features.age.dtype: ..."), then ExampleSpecFromConfig.
absl::StatusOr<data::ExampleParserSpec> ExampleSpecFromJson(const nlohmann::json& features,
                                                            const std::string& json_path);

// Parses a batch of serialized Examples; the feature named `label_key`
// (if not empty) becomes Batch::labels. Under BadRecordPolicy::kSkip a
// record that does not parse (bad protobuf, missing required feature, wrong
// kind or length) is dropped and counted, the first few logged. (Framing
// errors of the TFRecord file itself are not skippable: the reader cannot
// resynchronise after a corrupt length.) Thread-safe.
class ExampleBatchParser : public BatchParser {
 public:
  ExampleBatchParser(data::ExampleParserSpec spec, std::string label_key,
                     BadRecordPolicy policy = BadRecordPolicy::kFail)
      : spec_(std::move(spec)), label_key_(std::move(label_key)), policy_(policy) {}
  absl::StatusOr<Batch> Parse(const std::vector<std::string>& records,
                              const std::vector<RecordOrigin>& origins) override;
  int64_t skipped_records() const override { return skipped_.load(); }

 private:
  const data::ExampleParserSpec spec_;
  const std::string label_key_;
  const BadRecordPolicy policy_;
  std::atomic<int64_t> skipped_{0};
  static constexpr int kMaxLogged = 5;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_EXAMPLE_BATCH_PARSER_H_
