// IDX files (the MNIST / Fashion-MNIST format): a big-endian header
// (magic 0x000008NN: 0x08 = uint8 data, NN = number of dimensions; then one
// int32 per dimension) followed by the data. Files may be gzip-compressed
// (detected by the gzip magic). Only uint8 data is supported. Files are read
// through an io::Env.
#ifndef ESTUARY_ESTIMATOR_DATA_IDX_READER_H_
#define ESTUARY_ESTIMATOR_DATA_IDX_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "estimator/data/batch_parser.h"
#include "estimator/data/record_reader.h"

namespace estuary {

// A whole IDX file in memory. Value type.
struct IdxFile {
  std::string path;
  std::vector<int64_t> dims;  // dims[0] is the number of examples
  std::string data;           // uint8 values, row-major, size = product(dims)
  int64_t header_size = 0;    // bytes before the data
  int64_t example_size() const;  // product(dims[1:]) (1 for a label file)
};

// Reads and validates `path`: magic, dimensions, and the data size against
// the (decompressed) file size. Errors name the file: NotFound if missing,
// InvalidArgument for a bad magic, truncated or oversized data, or corrupt
// gzip data; the Env's other errors.
absl::StatusOr<IdxFile> ReadIdxFile(const std::string& path,
                                    const io::Env& env = io::Env::Default());

// Reads an images file (magic 0x00000803: [n, rows, cols]) and a labels file
// (0x00000801: [n]) with the same n. Records are one label byte followed by
// the rows*cols pixel bytes; origins name the images file and the example
// index. Not thread-safe; starts no threads.
absl::StatusOr<std::unique_ptr<RecordReader>> OpenIdxReader(
    const std::string& images, const std::string& labels,
    const io::Env& env = io::Env::Default());

struct IdxParserOptions {
  std::string pixels_key = "pixels";
  bool scale = true;  // pixels / 255 in [0, 1]; false keeps 0..255 (as float)
};

// Parses IdxReader records into features {pixels_key: float [batch, rows*cols]}
// and int64 labels [batch]. Thread-safe (stateless).
class IdxBatchParser : public BatchParser {
 public:
  explicit IdxBatchParser(IdxParserOptions options) : options_(std::move(options)) {}
  absl::StatusOr<Batch> Parse(const std::vector<std::string>& records,
                              const std::vector<RecordOrigin>& origins) override;

 private:
  const IdxParserOptions options_;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_IDX_READER_H_
