#include "common/io/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace estuary {
namespace io {
namespace {

constexpr size_t kWriteBufferSize = 256 * 1024;

}  // namespace

absl::Status ErrnoToStatus(int err, absl::string_view context) {
  const std::string msg = absl::StrCat(context, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    case EISDIR:
    case ENOTDIR:
    case EINVAL:
    case EBADF:
      return absl::FailedPreconditionError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EAGAIN:
    case EINTR:
    case EIO:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<std::unique_ptr<FileInputStream>> FileInputStream::Open(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("cannot open '", path, "'"));
  return std::unique_ptr<FileInputStream>(new FileInputStream(path, fd));
}

FileInputStream::~FileInputStream() { ::close(fd_); }

absl::StatusOr<size_t> FileInputStream::Read(char* buf, size_t n) {
  while (true) {
    const ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return ErrnoToStatus(errno, absl::StrCat("cannot read '", path_, "'"));
  }
}

absl::StatusOr<std::unique_ptr<FileOutputStream>> FileOutputStream::Create(const std::string& path,
                                                                           bool fsync_on_close) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("cannot create '", path, "'"));
  return std::unique_ptr<FileOutputStream>(new FileOutputStream(path, fd, fsync_on_close));
}

FileOutputStream::FileOutputStream(std::string path, int fd, bool fsync_on_close)
    : path_(std::move(path)), fd_(fd), fsync_on_close_(fsync_on_close) {
  buffer_.reserve(kWriteBufferSize);
}

FileOutputStream::~FileOutputStream() { Close().IgnoreError(); }

absl::Status FileOutputStream::WriteAll(const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      status_ = ErrnoToStatus(errno, absl::StrCat("cannot write '", path_, "'"));
      return status_;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status FileOutputStream::Append(absl::string_view data) {
  if (!status_.ok()) return status_;
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat("'", path_, "' is closed"));
  if (buffer_.size() + data.size() <= kWriteBufferSize) {
    buffer_.append(data.data(), data.size());
    return absl::OkStatus();
  }
  if (absl::Status s = Flush(); !s.ok()) return s;
  if (data.size() >= kWriteBufferSize) return WriteAll(data.data(), data.size());
  buffer_.append(data.data(), data.size());
  return absl::OkStatus();
}

absl::Status FileOutputStream::Flush() {
  if (!status_.ok()) return status_;
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat("'", path_, "' is closed"));
  absl::Status s = WriteAll(buffer_.data(), buffer_.size());
  buffer_.clear();
  return s;
}

absl::Status FileOutputStream::Close() {
  if (fd_ < 0) return status_;
  absl::Status s = Flush();
  if (s.ok() && fsync_on_close_ && ::fsync(fd_) != 0) {
    s = ErrnoToStatus(errno, absl::StrCat("cannot fsync '", path_, "'"));
  }
  if (::close(fd_) != 0 && s.ok()) {
    s = ErrnoToStatus(errno, absl::StrCat("cannot close '", path_, "'"));
  }
  fd_ = -1;
  if (status_.ok()) status_ = s;
  return s;
}

}  // namespace io
}  // namespace estuary
