// The parse stage of the input pipeline: turns a batch of raw records into
// the Estimator's Batch (features, labels).
#ifndef ESTUARY_ESTIMATOR_DATA_BATCH_PARSER_H_
#define ESTUARY_ESTIMATOR_DATA_BATCH_PARSER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "estimator/data/record_reader.h"

namespace estuary {

// Implementations must be thread-safe: the pipeline calls Parse from several
// threads at once (on different batches).
class BatchParser {
 public:
  virtual ~BatchParser() = default;

  // `origins[i]` is where `records[i]` came from (same size); errors should
  // name it. A parser that skips bad records (see CsvParserOptions) may
  // return fewer rows than records, or none (batch_size 0).
  virtual absl::StatusOr<Batch> Parse(const std::vector<std::string>& records,
                                      const std::vector<RecordOrigin>& origins) = 0;

  // Records skipped so far under a skip policy (0 if the parser never skips).
  virtual int64_t skipped_records() const { return 0; }
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_BATCH_PARSER_H_
