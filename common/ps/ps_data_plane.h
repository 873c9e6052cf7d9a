// The parameter server's bulk data plane: Push (with its PushPull pull) and
// Pull over one plain TCP connection per client and PS, beside the PS's
// gRPC service, which keeps every other method (Initialize, Describe,
// GlobalStep, Pause, Save) and stays the fallback for Push and Pull.
//
// Why not gRPC for these two: they run on every training step's critical
// path, ~1 MB each way for the click-log model, and gRPC 1.51's unary
// round trip (HTTP/2 framing, completion-queue thread hand-offs) costs
// ~0.7 ms of wall time per step there on top of the handler
// (bench/RESULTS.md, "PS transport"); a socket read by the thread that
// handles it costs a fraction of that. The request and response bodies are
// exactly the gRPC methods' bodies (ps_wire frames) and the handler is the
// same PsGrpcService code, so both paths give the same answers and errors.
//
// Wire format (little-endian), one request then one response at a time on a
// connection:
//   request:  u32 magic "EPSD" | u32 method (kPush, kPull) | u64 body length
//             | body
//   response: u32 magic | u32 status code (grpc::StatusCode) | u32 message
//             length | u32 0 | u64 body length | message | body
//
// Security: the data plane neither encrypts nor authenticates, so a PS
// offers it only when its job has no `security` (no TLS, no job token),
// i.e. when its gRPC port is just as open; a secured job keeps Push and
// Pull on gRPC (TLS, token, task certificate).
//
// Deadlines: every read and write of a call has the call's deadline; the
// server gives a request's body and its answer `io_timeout`. A connection
// that fails in any way is closed (the stream state is unknown); the client
// connects again on its next call.
#ifndef ESTUARY_COMMON_PS_PS_DATA_PLANE_H_
#define ESTUARY_COMMON_PS_PS_DATA_PLANE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace estuary {

namespace ps_data {
inline constexpr uint32_t kMagic = 0x44535045;  // "EPSD"
inline constexpr uint32_t kPush = 1;
inline constexpr uint32_t kPull = 2;
}  // namespace ps_data

struct PsDataServerOptions {
  // A request's body and its answer must move within this.
  absl::Duration io_timeout = absl::Seconds(60);
  // Larger request bodies are refused (InvalidArgument) and the connection
  // closed.
  uint64_t max_body_bytes = uint64_t{1} << 30;
};

class PsDataServer {
 public:
  // Answers one request: `method` is ps_data::kPush or kPull (others are
  // refused before the handler is called).
  using Handler =
      std::function<grpc::Status(uint32_t method, const grpc::ByteBuffer& in, grpc::ByteBuffer* out)>;

  // Listens on `host` (any free port) and serves each connection on a
  // thread of its own until destroyed. Errors: Unavailable (cannot listen).
  static absl::StatusOr<std::unique_ptr<PsDataServer>> Start(const std::string& host,
                                                             Handler handler,
                                                             PsDataServerOptions options = {});
  // Stops accepting, closes every connection and joins the threads.
  ~PsDataServer();
  PsDataServer(const PsDataServer&) = delete;
  PsDataServer& operator=(const PsDataServer&) = delete;

  int port() const { return port_; }

 private:
  PsDataServer(int listen_fd, int port, Handler handler, PsDataServerOptions options);
  void AcceptLoop();
  void Serve(int fd);

  const int listen_fd_;
  const int port_;
  const Handler handler_;
  const PsDataServerOptions options_;
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
};

// The client side: one connection to one PS's data plane. Thread-safe
// (calls are serialised).
class PsDataConnection {
 public:
  // `address` is "host:port" of the PS's data plane; `name` ("ps:0") is
  // for messages.
  PsDataConnection(std::string address, std::string name);
  ~PsDataConnection();

  const std::string& address() const { return address_; }

  // Connects if not connected (within `connect_timeout`, at most until
  // `deadline`). Errors: Unavailable / DeadlineExceeded (cannot connect:
  // the caller may take another path).
  absl::Status EnsureConnected(absl::Time deadline, absl::Duration connect_timeout);

  // Sends `request` and reads the answer before `deadline` (connecting
  // first if needed). Errors: Unavailable (not connected, closed or reset:
  // the PS died), DeadlineExceeded (no answer in time: the PS is stalled),
  // DataLoss (a malformed answer), or the status the PS answered with;
  // messages start with `what`.
  absl::Status Call(uint32_t method, const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                    absl::Time deadline, const std::string& what);

 private:
  void CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string address_;
  const std::string name_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_PS_PS_DATA_PLANE_H_
