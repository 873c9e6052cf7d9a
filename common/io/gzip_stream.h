// gzip (RFC 1952) compression layered over an InputStream/OutputStream, via
// zlib's inflate/deflate with windowBits 15+16. This is the format TF writes
// for TFRecordOptions(compression_type="GZIP") and reads for
// TFRecordDataset(compression_type="GZIP").
//
// Thread-compatible, like the streams they wrap.
#ifndef ESTUARY_COMMON_IO_GZIP_STREAM_H_
#define ESTUARY_COMMON_IO_GZIP_STREAM_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/io/file.h"

namespace estuary {
namespace io {

// Decompresses a gzip stream. Concatenated gzip members are read as one
// stream (as gunzip does). Corrupt compressed data and a stream that ends
// inside a member are DataLossError naming the stream.
class GzipInputStream : public InputStream {
 public:
  static absl::StatusOr<std::unique_ptr<GzipInputStream>> Create(
      std::unique_ptr<InputStream> compressed);
  ~GzipInputStream() override;
  GzipInputStream(const GzipInputStream&) = delete;
  GzipInputStream& operator=(const GzipInputStream&) = delete;

  absl::StatusOr<size_t> Read(char* buf, size_t n) override;
  const std::string& name() const override { return in_->name(); }
  // Compressed bytes consumed so far (for error messages).
  int64_t compressed_offset() const { return compressed_consumed_; }

 private:
  explicit GzipInputStream(std::unique_ptr<InputStream> in);
  absl::Status Refill();

  std::unique_ptr<InputStream> in_;
  struct State;
  std::unique_ptr<State> state_;
  std::string inbuf_;
  bool input_eof_ = false;
  bool member_done_ = false;  // the last inflate() call ended a member
  bool any_member_ = false;
  int64_t compressed_consumed_ = 0;
  absl::Status status_;  // sticky
};

// Compresses into a gzip stream. `level` is zlib's 0..9 or -1 (zlib's
// default, 6, which TF also uses). Close() finishes the stream and closes the
// wrapped stream.
class GzipOutputStream : public OutputStream {
 public:
  static absl::StatusOr<std::unique_ptr<GzipOutputStream>> Create(
      std::unique_ptr<OutputStream> out, int level = -1);
  ~GzipOutputStream() override;
  GzipOutputStream(const GzipOutputStream&) = delete;
  GzipOutputStream& operator=(const GzipOutputStream&) = delete;

  absl::Status Append(absl::string_view data) override;
  // Z_SYNC_FLUSH, then flushes the wrapped stream: everything appended so far
  // can be decompressed by a reader.
  absl::Status Flush() override;
  absl::Status Close() override;
  const std::string& name() const override { return out_->name(); }

 private:
  explicit GzipOutputStream(std::unique_ptr<OutputStream> out);
  absl::Status Deflate(const char* data, size_t n, int flush);

  std::unique_ptr<OutputStream> out_;
  struct State;
  std::unique_ptr<State> state_;
  std::string outbuf_;
  bool closed_ = false;
  absl::Status status_;  // sticky
};

// `in` decompressed if it starts with the gzip magic (1f 8b), else `in`
// itself (its first bytes re-delivered), as zlib's gzread reads both: the
// readers of CSV and IDX files accept either. Errors of reading the first
// two bytes.
absl::StatusOr<std::unique_ptr<InputStream>> MaybeDecompressGzip(std::unique_ptr<InputStream> in);

}  // namespace io
}  // namespace estuary

#endif  // ESTUARY_COMMON_IO_GZIP_STREAM_H_
