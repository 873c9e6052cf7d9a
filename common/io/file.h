// Sequential byte streams over local files: the seam the record formats
// (TFRecord, later CSV and IDX) read and write through, so that compression
// (gzip_stream.h) and fault injection can be layered underneath them.
//
// Streams are thread-compatible: one thread uses a stream at a time.
#ifndef ESTUARY_COMMON_IO_FILE_H_
#define ESTUARY_COMMON_IO_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace estuary {
namespace io {

// `context: strerror(err)` with a code chosen from errno (ENOENT -> NotFound,
// EACCES/EPERM -> PermissionDenied, ENOSPC/EDQUOT -> ResourceExhausted,
// EISDIR/ENOTDIR/EINVAL -> FailedPrecondition, otherwise Unavailable/Internal).
absl::Status ErrnoToStatus(int err, absl::string_view context);

// A source of bytes read front to back.
class InputStream {
 public:
  virtual ~InputStream() = default;
  // Reads up to `n` bytes into `buf`; returns how many were read, 0 only at
  // the end of the stream. May return fewer than `n` before the end.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
  // Name used in error messages (usually the file path).
  virtual const std::string& name() const = 0;
};

// A sink of bytes written front to back. Close() flushes and releases the
// resource; the destructor closes too but drops any error, so call Close()
// where the data matters.
class OutputStream {
 public:
  virtual ~OutputStream() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Pushes buffered bytes to the layer below (for files: the kernel).
  virtual absl::Status Flush() = 0;
  virtual absl::Status Close() = 0;
  virtual const std::string& name() const = 0;
};

// Reads a local file with read(2), retrying EINTR.
class FileInputStream : public InputStream {
 public:
  // NotFound / PermissionDenied / ... naming `path`.
  static absl::StatusOr<std::unique_ptr<FileInputStream>> Open(const std::string& path);
  ~FileInputStream() override;
  FileInputStream(const FileInputStream&) = delete;
  FileInputStream& operator=(const FileInputStream&) = delete;

  absl::StatusOr<size_t> Read(char* buf, size_t n) override;
  const std::string& name() const override { return path_; }

 private:
  FileInputStream(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

// Writes a local file (created or truncated, mode 0644) through a 256 KiB
// buffer. With `fsync_on_close`, Close() fsyncs before closing.
class FileOutputStream : public OutputStream {
 public:
  static absl::StatusOr<std::unique_ptr<FileOutputStream>> Create(const std::string& path,
                                                                  bool fsync_on_close = false);
  ~FileOutputStream() override;
  FileOutputStream(const FileOutputStream&) = delete;
  FileOutputStream& operator=(const FileOutputStream&) = delete;

  absl::Status Append(absl::string_view data) override;
  absl::Status Flush() override;
  absl::Status Close() override;
  const std::string& name() const override { return path_; }

 private:
  FileOutputStream(std::string path, int fd, bool fsync_on_close);
  absl::Status WriteAll(const char* data, size_t n);

  std::string path_;
  int fd_;
  bool fsync_on_close_;
  std::string buffer_;
  absl::Status status_;  // first write error; sticky
};

}  // namespace io
}  // namespace estuary

#endif  // ESTUARY_COMMON_IO_FILE_H_
