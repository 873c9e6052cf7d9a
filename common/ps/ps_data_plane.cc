#include "common/ps/ps_data_plane.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/collective/ring/tcp_socket.h"
#include "common/logging.h"
#include "common/rpc.h"

namespace estuary {
namespace {

using ring_internal::PollOne;
using ring_internal::ReadFully;

constexpr size_t kRequestHeader = 16;
constexpr size_t kResponseHeader = 24;
constexpr uint32_t kMaxMessage = 64 << 10;  // an error message's length

void PutU32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutU64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Takes a connected socket out of its Fd (which closes its own copy).
int Keep(const ring_internal::Fd& fd) { return dup(fd.get()); }

// Writes `header` then every slice of `body` (gather writes, no copies)
// before `deadline`. Errors as ring_internal::WriteFully.
absl::Status WriteMessage(int fd, const std::string& header, const grpc::ByteBuffer* body,
                          absl::Time deadline, const std::string& what) {
  std::vector<grpc::Slice> slices;
  if (body != nullptr && body->Valid()) {
    if (!body->Dump(&slices).ok()) return absl::InternalError(what + ": cannot read the body");
  }
  std::vector<iovec> iov;
  iov.reserve(slices.size() + 1);
  iov.push_back({const_cast<char*>(header.data()), header.size()});
  for (const grpc::Slice& s : slices) {
    if (s.size() > 0) iov.push_back({const_cast<uint8_t*>(s.begin()), s.size()});
  }
  size_t first = 0;
  while (first < iov.size()) {
    msghdr msg{};
    msg.msg_iov = iov.data() + first;
    msg.msg_iovlen = std::min<size_t>(iov.size() - first, IOV_MAX);
    const ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      absl::StatusOr<short> ev = PollOne(fd, POLLOUT, deadline);
      if (!ev.ok()) return ev.status();
      if (*ev == 0) return absl::DeadlineExceededError(absl::StrCat(what, ": deadline exceeded"));
      continue;
    }
    if (w <= 0) {
      return absl::UnavailableError(
          absl::StrCat(what, ": connection lost (", std::strerror(w < 0 ? errno : EPIPE), ")"));
    }
    size_t left = static_cast<size_t>(w);
    while (left > 0 && first < iov.size()) {
      if (left >= iov[first].iov_len) {
        left -= iov[first].iov_len;
        ++first;
      } else {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
        left = 0;
      }
    }
  }
  return absl::OkStatus();
}

// Reads `n` bytes into one gRPC slice (the ByteBuffer's only one: no copy).
absl::Status ReadBody(int fd, uint64_t n, absl::Time deadline, const std::string& what,
                      grpc::ByteBuffer* out) {
  grpc_slice raw = grpc_slice_malloc(static_cast<size_t>(n));
  grpc::Slice slice(raw, grpc::Slice::STEAL_REF);
  if (n > 0) {
    absl::Status s =
        ReadFully(fd, const_cast<uint8_t*>(slice.begin()), static_cast<size_t>(n), deadline, what);
    if (!s.ok()) return s;
  }
  *out = grpc::ByteBuffer(&slice, 1);
  return absl::OkStatus();
}

std::string ResponseHeader(const grpc::Status& status, uint64_t body) {
  std::string h(kResponseHeader, '\0');
  PutU32(&h[0], ps_data::kMagic);
  PutU32(&h[4], static_cast<uint32_t>(status.error_code()));
  const std::string& message = status.error_message();
  const uint32_t len = static_cast<uint32_t>(std::min<size_t>(message.size(), kMaxMessage));
  PutU32(&h[8], len);
  PutU64(&h[16], body);
  h.append(message, 0, len);
  return h;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PsDataServer>> PsDataServer::Start(const std::string& host,
                                                                  Handler handler,
                                                                  PsDataServerOptions options) {
  int port = 0;
  absl::StatusOr<ring_internal::Fd> listen = ring_internal::Listen(host, &port);
  if (!listen.ok()) return listen.status();
  const int fd = Keep(*listen);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("PS data plane: dup: ", std::strerror(errno)));
  return std::unique_ptr<PsDataServer>(
      new PsDataServer(fd, port, std::move(handler), std::move(options)));
}

PsDataServer::PsDataServer(int listen_fd, int port, Handler handler, PsDataServerOptions options)
    : listen_fd_(listen_fd), port_(port), handler_(std::move(handler)), options_(options) {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

PsDataServer::~PsDataServer() {
  stopping_ = true;
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    // Wakes every connection's thread out of its reads and writes.
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
  close(listen_fd_);
}

void PsDataServer::AcceptLoop() {
  while (!stopping_) {
    // Wakes up now and then to see whether the server is stopping.
    absl::StatusOr<short> ev = PollOne(listen_fd_, POLLIN, absl::Now() + absl::Milliseconds(200));
    if (!ev.ok() || *ev == 0) continue;
    absl::StatusOr<ring_internal::Fd> conn = ring_internal::Accept(listen_fd_, absl::Now());
    if (!conn.ok()) continue;  // the client went away already
    const int fd = Keep(*conn);
    if (fd < 0) continue;
    absl::MutexLock l(&mu_);
    if (stopping_) {
      close(fd);
      break;
    }
    open_fds_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void PsDataServer::Serve(int fd) {
  const std::string what = "PS data plane client";
  while (!stopping_) {
    // Idle between requests: no deadline, but look at stopping_ now and then.
    absl::StatusOr<short> ev = PollOne(fd, POLLIN, absl::Now() + absl::Milliseconds(200));
    if (!ev.ok()) break;
    if (*ev == 0) continue;
    char header[kRequestHeader];
    const absl::Time deadline = absl::Now() + options_.io_timeout;
    if (!ReadFully(fd, header, sizeof(header), deadline, what).ok()) break;  // closed
    const uint32_t method = GetU32(header + 4);
    const uint64_t length = GetU64(header + 8);
    grpc::Status status;
    if (GetU32(header) != ps_data::kMagic) {
      status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "PS data plane: not an Estuary PS request (bad magic)");
    } else if (method != ps_data::kPush && method != ps_data::kPull) {
      status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("PS data plane: unknown method ", method));
    } else if (length > options_.max_body_bytes) {
      status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("PS data plane: a request of ", length,
                                         " bytes (the limit is ", options_.max_body_bytes, ")"));
    }
    if (!status.ok()) {
      // The rest of the stream cannot be trusted: answer, then close.
      spdlog::warn("{}", status.error_message());
      (void)WriteMessage(fd, ResponseHeader(status, 0), nullptr, deadline, what);
      break;
    }
    grpc::ByteBuffer in, out;
    if (!ReadBody(fd, length, deadline, what, &in).ok()) break;
    status = handler_(method, in, &out);
    uint64_t body = 0;
    if (status.ok()) {
      body = out.Length();
    }
    if (!WriteMessage(fd, ResponseHeader(status, body), status.ok() ? &out : nullptr,
                      absl::Now() + options_.io_timeout, what)
             .ok()) {
      break;
    }
  }
  absl::MutexLock l(&mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  close(fd);
}

PsDataConnection::PsDataConnection(std::string address, std::string name)
    : address_(std::move(address)), name_(std::move(name)) {}

PsDataConnection::~PsDataConnection() {
  absl::MutexLock l(&mu_);
  CloseLocked();
}

void PsDataConnection::CloseLocked() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

absl::Status PsDataConnection::EnsureConnected(absl::Time deadline,
                                               absl::Duration connect_timeout) {
  absl::MutexLock l(&mu_);
  if (fd_ >= 0) return absl::OkStatus();
  absl::StatusOr<ring_internal::Fd> fd =
      ring_internal::Connect(address_, std::min(deadline, absl::Now() + connect_timeout),
                             absl::StrCat(name_, "'s data plane at ", address_));
  if (!fd.ok()) return fd.status();
  fd_ = Keep(*fd);
  if (fd_ < 0) return absl::UnavailableError(absl::StrCat("dup: ", std::strerror(errno)));
  return absl::OkStatus();
}

absl::Status PsDataConnection::Call(uint32_t method, const grpc::ByteBuffer& request,
                                    grpc::ByteBuffer* response, absl::Time deadline,
                                    const std::string& what) {
  absl::MutexLock l(&mu_);
  if (fd_ < 0) return absl::UnavailableError(absl::StrCat(what, ": not connected"));
  std::string header(kRequestHeader, '\0');
  PutU32(&header[0], ps_data::kMagic);
  PutU32(&header[4], method);
  PutU64(&header[8], request.Length());
  absl::Status s = WriteMessage(fd_, header, &request, deadline, what);
  char h[kResponseHeader];
  if (s.ok()) s = ReadFully(fd_, h, sizeof(h), deadline, what);
  if (s.ok() && GetU32(h) != ps_data::kMagic) {
    s = absl::DataLossError(absl::StrCat(what, ": a malformed answer (bad magic)"));
  }
  const uint32_t code = s.ok() ? GetU32(h + 4) : 0;
  const uint32_t message_len = s.ok() ? GetU32(h + 8) : 0;
  const uint64_t body = s.ok() ? GetU64(h + 16) : 0;
  if (s.ok() && (message_len > kMaxMessage || body > (uint64_t{1} << 31) || code > 16)) {
    s = absl::DataLossError(absl::StrCat(what, ": a malformed answer"));
  }
  std::string message(message_len, '\0');
  if (s.ok() && message_len > 0) s = ReadFully(fd_, message.data(), message_len, deadline, what);
  if (s.ok()) s = ReadBody(fd_, body, deadline, what, response);
  if (!s.ok()) {
    CloseLocked();  // the stream's state is unknown
    return s;
  }
  if (code != 0) {
    return AnnotateRpcError(grpc::Status(static_cast<grpc::StatusCode>(code), message), what);
  }
  return absl::OkStatus();
}

}  // namespace estuary
