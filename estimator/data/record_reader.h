// Record sources of the input pipeline: one RecordReader reads the records of
// one input file (a CSV line, an IDX example, a TFRecord payload) in order.
//
// A TFRecord reader with `absl::StatusOr<bool> Next(std::string*)` and an
// offset adapts in a few lines: subclass RecordReader, call the inner Next,
// fill `origin->file`, `offset` and `index`.
#ifndef ESTUARY_ESTIMATOR_DATA_RECORD_READER_H_
#define ESTUARY_ESTIMATOR_DATA_RECORD_READER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace estuary {

// Where a record came from, for error messages. Value type.
struct RecordOrigin {
  std::string file;
  int64_t line = -1;    // 1-based first line of the record (text formats), or -1
  int64_t offset = -1;  // byte offset of the record in the (uncompressed) file, or -1
  int64_t index = -1;   // 0-based record index within the file, or -1

  // "train.csv:17" when the line is known, else "data.idx: record 5" or
  // "data.tfrecord: record 5 at offset 1234".
  std::string ToString() const;
};

// Reads the records of one source in order. Not thread-safe (one reader is
// used by one thread at a time); starts no threads.
class RecordReader {
 public:
  virtual ~RecordReader() = default;

  // Reads the next record into `*record` and its origin into `*origin`.
  // Returns false at the end of the input (the out-parameters are then
  // unspecified); an error names the file (and line/offset). After an error
  // or the end, further calls return the same.
  virtual absl::StatusOr<bool> Next(std::string* record, RecordOrigin* origin) = 0;
};

// Opens a reader for one file (the unit that is sharded and interleaved).
using RecordReaderFactory =
    std::function<absl::StatusOr<std::unique_ptr<RecordReader>>(const std::string& file)>;

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_RECORD_READER_H_
