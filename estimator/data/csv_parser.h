// CSV parsing with the semantics of tf.io.decode_csv / CsvDataset:
// - RFC 4180 quoting: a field that starts with '"' is quoted, '""' inside it
//   is a quote, and it may contain the delimiter and newlines; a quote inside
//   an unquoted field, or text after a closing quote, is an error.
// - One default per column; its type gives the column's type (float32,
//   int64 or string). An empty field (also '""') takes the default; a
//   column without a default is required, and an empty field is an error.
// - Numbers may have surrounding spaces (" 3 " is 3) but not a '+' sign;
//   floats accept what strtof does ("nan", "inf", "1e3", "0x10"); a string
//   keeps its spaces.
// Errors are InvalidArgument "<file>:<line>: column '<name>' (<index>): ..."
// with the 0-based column index (TF's "Field <index>").
#ifndef ESTUARY_ESTIMATOR_DATA_CSV_PARSER_H_
#define ESTUARY_ESTIMATOR_DATA_CSV_PARSER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/job_config.h"
#include "common/tensor.h"
#include "estimator/data/batch_parser.h"
#include "nlohmann/json.hpp"

namespace estuary {

struct CsvColumn {
  std::string name;
  DType dtype = DType::kString;
  bool required = false;  // no default: an empty field is an error
  float float_default = 0;
  int64_t int_default = 0;
  std::string string_default;
};

// A column from its parsed default (common/job_config's CsvColumnDefault).
CsvColumn CsvColumnFromDefault(std::string name, const CsvColumnDefault& d);

// A column from its JSON default (ParseCsvColumnDefault; `path` roots the
// errors).
absl::StatusOr<CsvColumn> CsvColumnFromJson(const std::string& name, const nlohmann::json& value,
                                            const std::string& path);

enum class BadRecordPolicy { kFail, kSkip };

struct CsvParserOptions {
  std::vector<CsvColumn> columns;
  char field_delim = ',';
  std::string label_key;  // this column becomes Batch::labels; "" for none
  BadRecordPolicy bad_record_policy = BadRecordPolicy::kFail;
  int max_logged_bad_records = 5;  // under kSkip, the first few are logged
};

// Splits one record into fields (quotes removed, "" unescaped). Errors are
// InvalidArgument "field <i>: ..." (the caller adds the origin).
absl::StatusOr<std::vector<std::string>> SplitCsvRecord(absl::string_view record, char delim);
// The same into *fields, whose strings (and their capacity) it reuses; after
// an error *fields holds no meaningful value.
absl::Status SplitCsvRecordInto(absl::string_view record, char delim,
                                std::vector<std::string>* fields);

// Parses batches of CSV records into one [batch] tensor per column (the
// label column into Batch::labels). Thread-safe; starts no threads.
class CsvBatchParser : public BatchParser {
 public:
  // InvalidArgument if there are no columns, names repeat, or label_key is
  // not a column.
  static absl::StatusOr<std::unique_ptr<CsvBatchParser>> Create(CsvParserOptions options);

  absl::StatusOr<Batch> Parse(const std::vector<std::string>& records,
                              const std::vector<RecordOrigin>& origins) override;

  int64_t skipped_records() const override { return skipped_.load(); }

 private:
  explicit CsvBatchParser(CsvParserOptions options) : options_(std::move(options)) {}

  const CsvParserOptions options_;
  std::atomic<int64_t> skipped_{0};
  absl::Mutex log_mu_;
  int logged_ ABSL_GUARDED_BY(log_mu_) = 0;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_CSV_PARSER_H_
