#include "common/collective/ring/tcp_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace estuary::ring_internal {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

absl::StatusOr<std::unique_ptr<addrinfo, AddrInfoDeleter>> Resolve(const std::string& host,
                                                                   const std::string& port,
                                                                   bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve host '", host, "': ", gai_strerror(rc)));
  }
  return std::unique_ptr<addrinfo, AddrInfoDeleter>(result);
}

// Splits "host:port" (the host may be "[v6]").
absl::Status SplitAddress(const std::string& address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  int port_number = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port_number) || port_number <= 0 ||
      port_number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring address '", address, "' is not host:port"));
  }
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = address.substr(colon + 1);
  return absl::OkStatus();
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

PollTimeout::PollTimeout(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    infinite_ = true;
    return;
  }
  const absl::Duration left = std::max(absl::ZeroDuration(), deadline - absl::Now());
  ts_ = absl::ToTimespec(left);
}

absl::Status ConfigureSocket(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("fcntl(O_NONBLOCK): ", ErrnoText(errno)));
  }
  int one = 1;
  // TCP_NODELAY fails on non-TCP sockets (never here); ignore for safety.
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // Only ever raise the buffers: a smaller explicit size than the kernel's
  // autotuned one would cap the window.
  for (int opt : {SO_SNDBUF, SO_RCVBUF}) {
    int current = 0;
    socklen_t len = sizeof(current);
    if (getsockopt(fd, SOL_SOCKET, opt, &current, &len) == 0 && current < kSocketBufferBytes) {
      const int want = kSocketBufferBytes;
      (void)setsockopt(fd, SOL_SOCKET, opt, &want, sizeof(want));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Fd> Listen(const std::string& host, int* port) {
  auto bind_to = [&](const addrinfo* ai) -> absl::StatusOr<Fd> {
    Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      return absl::UnavailableError(absl::StrCat("socket: ", ErrnoText(errno)));
    }
    int one = 1;
    (void)setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    // Accepted sockets inherit the listener's buffers (and the window scale
    // negotiated from the receive buffer), so configure it before listen.
    if (absl::Status s = ConfigureSocket(fd.get()); !s.ok()) return s;
    if (bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      return absl::UnavailableError(absl::StrCat("bind: ", ErrnoText(errno)));
    }
    if (listen(fd.get(), 128) != 0) {
      return absl::UnavailableError(absl::StrCat("listen: ", ErrnoText(errno)));
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return absl::UnavailableError(absl::StrCat("getsockname: ", ErrnoText(errno)));
    }
    *port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    return fd;
  };
  std::string first_error;
  auto resolved = Resolve(host, "0", /*passive=*/false);
  if (resolved.ok()) {
    for (const addrinfo* ai = resolved->get(); ai != nullptr; ai = ai->ai_next) {
      absl::StatusOr<Fd> fd = bind_to(ai);
      if (fd.ok()) return fd;
      if (first_error.empty()) first_error = std::string(fd.status().message());
    }
  } else {
    first_error = std::string(resolved.status().message());
  }
  // A name that does not resolve to a local address (a Kubernetes service
  // name): listen on every interface instead.
  auto any = Resolve("", "0", /*passive=*/true);
  if (any.ok()) {
    for (const addrinfo* ai = any->get(); ai != nullptr; ai = ai->ai_next) {
      absl::StatusOr<Fd> fd = bind_to(ai);
      if (fd.ok()) return fd;
    }
  }
  return absl::UnavailableError(
      absl::StrCat("cannot listen on ", host, " (", first_error, ")"));
}

absl::StatusOr<Fd> Connect(const std::string& address, absl::Time deadline,
                           const std::string& what) {
  std::string host, port;
  if (absl::Status s = SplitAddress(address, &host, &port); !s.ok()) return s;
  std::string last_error = "no address";
  while (true) {
    auto resolved = Resolve(host, port, /*passive=*/false);
    if (!resolved.ok()) return resolved.status();
    for (const addrinfo* ai = resolved->get(); ai != nullptr; ai = ai->ai_next) {
      Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
      if (!fd.valid()) {
        last_error = absl::StrCat("socket: ", ErrnoText(errno));
        continue;
      }
      if (absl::Status s = ConfigureSocket(fd.get()); !s.ok()) return s;
      int rc = connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
      int err = rc == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        absl::StatusOr<short> ev = PollOne(fd.get(), POLLOUT, deadline);
        if (!ev.ok()) return ev.status();
        if (*ev == 0) {
          return absl::DeadlineExceededError(
              absl::StrCat("connecting to ", what, " at ", address, ": deadline exceeded"));
        }
        socklen_t len = sizeof(err);
        if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
      if (err == 0) return fd;
      last_error = ErrnoText(err);
      if (err != ECONNREFUSED && err != ETIMEDOUT && err != EHOSTUNREACH &&
          err != ENETUNREACH) {
        return absl::UnavailableError(
            absl::StrCat("cannot connect to ", what, " at ", address, ": ", last_error));
      }
    }
    // Refused: the peer may not listen yet (or is restarting). Retry until
    // the deadline with a short pause.
    const absl::Time retry = std::min(deadline, absl::Now() + absl::Milliseconds(50));
    if (absl::Now() >= deadline) break;
    poll(nullptr, 0, static_cast<int>(absl::ToInt64Milliseconds(retry - absl::Now())) + 1);
    if (absl::Now() >= deadline) break;
  }
  return absl::DeadlineExceededError(absl::StrCat("cannot connect to ", what, " at ", address,
                                                  " by the deadline: ", last_error));
}

absl::StatusOr<Fd> Accept(int listen_fd, absl::Time deadline) {
  while (true) {
    Fd fd(accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.valid()) {
      if (absl::Status s = ConfigureSocket(fd.get()); !s.ok()) return s;
      return fd;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat("accept: ", ErrnoText(errno)));
    }
    absl::StatusOr<short> ev = PollOne(listen_fd, POLLIN, deadline);
    if (!ev.ok()) return ev.status();
    if (*ev == 0) return absl::DeadlineExceededError("accept: deadline exceeded");
  }
}

absl::StatusOr<short> PollOne(int fd, short events, absl::Time deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    PollTimeout timeout(deadline);
    const int rc = ppoll(&p, 1, timeout.get(), nullptr);
    if (rc > 0) return p.revents;
    if (rc == 0) {
      if (absl::Now() >= deadline) return 0;
      continue;
    }
    if (errno != EINTR) return absl::InternalError(absl::StrCat("poll: ", ErrnoText(errno)));
  }
}

absl::Status WriteFully(int fd, const void* data, size_t n, absl::Time deadline,
                        const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      absl::StatusOr<short> ev = PollOne(fd, POLLOUT, deadline);
      if (!ev.ok()) return ev.status();
      if (*ev == 0) {
        return absl::DeadlineExceededError(
            absl::StrCat("writing to ", what, ": deadline exceeded"));
      }
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("writing to ", what, ": ", ErrnoText(w < 0 ? errno : EPIPE)));
  }
  return absl::OkStatus();
}

absl::Status ReadFully(int fd, void* data, size_t n, absl::Time deadline,
                       const std::string& what) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (r == 0) {
      return absl::UnavailableError(absl::StrCat(what, " closed the connection"));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      absl::StatusOr<short> ev = PollOne(fd, POLLIN, deadline);
      if (!ev.ok()) return ev.status();
      if (*ev == 0) {
        return absl::DeadlineExceededError(
            absl::StrCat("reading from ", what, ": deadline exceeded"));
      }
      continue;
    }
    return absl::UnavailableError(absl::StrCat("reading from ", what, ": ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

}  // namespace estuary::ring_internal
