// TFRecord files, bit-compatible with tf.io.TFRecordWriter and
// tf.data.TFRecordDataset.
//
// A file is a sequence of records, each framed as
//   uint64  length          little endian
//   uint32  masked_crc32c(length bytes)
//   byte    data[length]
//   uint32  masked_crc32c(data)
// (masking: common/crc32c.h MaskCrc). With GZIP compression the whole
// sequence is one gzip stream (TF's compression_type="GZIP"); offsets below
// are then positions in the uncompressed stream, as in TF.
//
// Writers and readers are thread-compatible: one thread uses one at a time.
#ifndef ESTUARY_COMMON_IO_TFRECORD_H_
#define ESTUARY_COMMON_IO_TFRECORD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/io/env.h"
#include "common/io/file.h"

namespace estuary {
namespace io {

enum class Compression { kNone, kGzip };

// TF's compression_type strings: "" or "NONE" -> kNone, "GZIP" -> kGzip
// (case-insensitive). "ZLIB" (raw zlib streams) is not supported:
// InvalidArgument.
absl::StatusOr<Compression> ParseCompression(absl::string_view name);
const char* CompressionName(Compression c);  // "NONE", "GZIP"

struct TFRecordOptions {
  Compression compression = Compression::kNone;
  // Writer only: zlib level -1 (default, 6) .. 9.
  int gzip_level = -1;
  // Writer only: fsync the file in Close().
  bool fsync_on_close = false;
  // Opens the file (by path); not owned, never null.
  const Env* env = &Env::Default();
};

// Size of the framing around each record: 8 + 4 + 4 bytes.
inline constexpr int64_t kTFRecordOverhead = 16;

// Appends records to a new file (an existing file is truncated).
class TFRecordWriter {
 public:
  static absl::StatusOr<std::unique_ptr<TFRecordWriter>> Create(
      const std::string& path, const TFRecordOptions& options = {});
  // Writes through `out` (which the writer owns and closes), e.g. for tests
  // that inject faults.
  static absl::StatusOr<std::unique_ptr<TFRecordWriter>> Create(
      std::unique_ptr<OutputStream> out, const TFRecordOptions& options = {});
  // Closes, dropping any error: call Close() where the data matters.
  ~TFRecordWriter();
  TFRecordWriter(const TFRecordWriter&) = delete;
  TFRecordWriter& operator=(const TFRecordWriter&) = delete;

  absl::Status Write(absl::string_view record);
  // Everything written so far reaches the file (and, with gzip, can be
  // decompressed from it).
  absl::Status Flush();
  // Finishes the file. Idempotent; Write after Close is FailedPrecondition.
  absl::Status Close();

  int64_t records_written() const { return records_; }
  // Uncompressed bytes written, framing included.
  int64_t bytes_written() const { return bytes_; }
  const std::string& path() const { return out_->name(); }

 private:
  explicit TFRecordWriter(std::unique_ptr<OutputStream> out) : out_(std::move(out)) {}
  std::unique_ptr<OutputStream> out_;
  int64_t records_ = 0;
  int64_t bytes_ = 0;
  bool closed_ = false;
};

// Reads records front to back, verifying both checksums of each.
//
// Errors (sticky: every later Next returns the same error):
//   DataLossError "<path>: corrupt record at offset N: length checksum
//     mismatch" / "...: data checksum mismatch"
//   DataLossError "<path>: truncated record at offset N (file ends after M
//     bytes)"
//   DataLossError from corrupt or truncated gzip data.
// Differences from TF 2.15's reader, which says "corrupted record at N" (N:
// the record's offset for a bad length, the data's offset for bad data) and
// "truncated record at N": a file that ends inside a record's 12-byte header
// is a clean end of file for TF, and a truncation here. Offsets here are
// always the start of the record.
class TFRecordReader {
 public:
  static absl::StatusOr<std::unique_ptr<TFRecordReader>> Open(const std::string& path,
                                                              const TFRecordOptions& options = {});
  // Reads from `in` (owned), named by in->name() in errors.
  static absl::StatusOr<std::unique_ptr<TFRecordReader>> Open(std::unique_ptr<InputStream> in,
                                                              const TFRecordOptions& options = {});
  TFRecordReader(const TFRecordReader&) = delete;
  TFRecordReader& operator=(const TFRecordReader&) = delete;

  // Reads the next record into `*record`: true if one was read, false at a
  // clean end of file (after the last complete record).
  absl::StatusOr<bool> Next(std::string* record);

  // Offset of the record last returned by Next (-1 before the first).
  int64_t record_offset() const { return record_offset_; }
  // Offset where the next record starts (after the last one returned).
  int64_t offset() const { return offset_; }
  // Records returned so far; the last one returned has index
  // records_read() - 1.
  int64_t records_read() const { return records_; }
  const std::string& path() const { return in_->name(); }

 private:
  explicit TFRecordReader(std::unique_ptr<InputStream> in);
  // Reads up to n bytes (appending to *out); returns how many were read,
  // fewer than n only at the end of the stream.
  absl::StatusOr<size_t> ReadUpTo(size_t n, std::string* out);
  absl::Status Truncated(size_t got_in_record);
  absl::Status Corrupt(absl::string_view what);

  std::unique_ptr<InputStream> in_;
  std::string buf_;
  size_t buf_pos_ = 0;
  int64_t record_offset_ = -1;
  int64_t offset_ = 0;
  int64_t records_ = 0;
  absl::Status status_;
};

// Every record of a file, for tests and small files.
absl::StatusOr<std::vector<std::string>> ReadTFRecordFile(const std::string& path,
                                                          const TFRecordOptions& options = {});
// Writes `records` to a new file and closes it.
absl::Status WriteTFRecordFile(const std::string& path, const std::vector<std::string>& records,
                               const TFRecordOptions& options = {});

}  // namespace io
}  // namespace estuary

#endif  // ESTUARY_COMMON_IO_TFRECORD_H_
