// The ring's TCP plumbing: owned non-blocking sockets, listen / connect with
// deadlines, and blocking-with-deadline reads and writes for the rendezvous
// handshake. The collectives' data path drives the sockets itself
// (ring_communicator.cc); this file only sets them up.
//
// Why plain POSIX sockets and not gRPC: the ring is a bulk data plane. It
// wants one copy (bytes go from the caller's tensor into the kernel and
// from the kernel straight into the tensor or a reduction buffer, with no
// message framing, protobuf or slice allocation in between), full-duplex
// pipelining (each rank sends a segment to its next neighbour while it
// receives one from its previous neighbour, on one thread), and a
// small-message path of one write and one read (gRPC's unary round trip
// alone costs more than the 50 us budget of a 4 KiB all-reduce). The
// control plane (rendezvous, stall reports) stays on the coordination
// service's gRPC Store.
#ifndef ESTUARY_COMMON_COLLECTIVE_RING_TCP_SOCKET_H_
#define ESTUARY_COMMON_COLLECTIVE_RING_TCP_SOCKET_H_

#include <time.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace estuary::ring_internal {

// An owned file descriptor (closed on destruction). Movable.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Socket buffer size asked for on every ring connection (the kernel caps
// it at net.core.{w,r}mem_max).
inline constexpr int kSocketBufferBytes = 4 << 20;

// Sets O_NONBLOCK, TCP_NODELAY and the send/receive buffer sizes.
// Errors: Internal (a setsockopt/fcntl failed).
absl::Status ConfigureSocket(int fd);

// Listens on `host` (numeric or resolvable; if the address cannot be bound,
// e.g. a service name, on every interface) at any free port; returns the
// socket (non-blocking) and sets *port.
// Errors: Unavailable (cannot resolve, bind or listen).
absl::StatusOr<Fd> Listen(const std::string& host, int* port);

// Connects to "host:port" before `deadline`, retrying while the peer
// refuses (it may not listen yet). The socket is configured
// (ConfigureSocket).
// Errors: DeadlineExceeded (naming `what`); Unavailable (cannot resolve,
// or another connect error); InvalidArgument (malformed address).
absl::StatusOr<Fd> Connect(const std::string& address, absl::Time deadline,
                           const std::string& what);

// Accepts one connection before `deadline` (configured).
// Errors: DeadlineExceeded; Unavailable.
absl::StatusOr<Fd> Accept(int listen_fd, absl::Time deadline);

// Waits until `fd` reports one of `events` (poll(2) flags) or the deadline
// passes. Returns the revents (0 at the deadline).
// Errors: Internal (poll failed).
absl::StatusOr<short> PollOne(int fd, short events, absl::Time deadline);

// Writes / reads exactly `n` bytes on a non-blocking socket before
// `deadline`. `what` names the peer in errors.
// Errors: DeadlineExceeded; Unavailable (closed by the peer, reset).
absl::Status WriteFully(int fd, const void* data, size_t n, absl::Time deadline,
                        const std::string& what);
absl::Status ReadFully(int fd, void* data, size_t n, absl::Time deadline,
                       const std::string& what);

// A timespec for ppoll: the time left until `deadline` (0 if passed; null
// for an infinite deadline, meaning wait forever).
struct PollTimeout {
  explicit PollTimeout(absl::Time deadline);
  const struct timespec* get() const { return infinite_ ? nullptr : &ts_; }

 private:
  struct timespec ts_ = {0, 0};
  bool infinite_ = false;
};

}  // namespace estuary::ring_internal

#endif  // ESTUARY_COMMON_COLLECTIVE_RING_TCP_SOCKET_H_
