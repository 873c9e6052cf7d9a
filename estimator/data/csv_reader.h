// CSV record reader: splits a CSV file into records (one per line, except
// that a quoted field may contain newlines, so a record can span lines) like
// tf.data.experimental.CsvDataset. Reads plain or gzip-compressed files
// (gzip detected by its magic: io::MaybeDecompressGzip), through an io::Env.
#ifndef ESTUARY_ESTIMATOR_DATA_CSV_READER_H_
#define ESTUARY_ESTIMATOR_DATA_CSV_READER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "estimator/data/record_reader.h"

namespace estuary {

struct CsvReaderOptions {
  bool header = false;   // skip the first record of the file
  char field_delim = ',';  // only used to track quotes at field starts
  // Opens the file; not owned, never null.
  const io::Env* env = &io::Env::Default();
};

// Opens `file` (NotFound if absent; the Env's errors). The record excludes its line terminator ("\n" or "\r\n");
// its origin carries the 1-based line where it starts. A quote left open at
// the end of the file is an InvalidArgument naming the line where the
// record started.
absl::StatusOr<std::unique_ptr<RecordReader>> OpenCsvReader(const std::string& file,
                                                            const CsvReaderOptions& options);

// Reads the first record of `file` (the header line), without its line
// terminator. NotFound/InvalidArgument if the file is missing or empty.
absl::StatusOr<std::string> ReadCsvHeader(const std::string& file, char field_delim,
                                          const io::Env& env = io::Env::Default());

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_CSV_READER_H_
