// gRPC helpers shared by every client and server: the one way to make a
// unary call (deadline, wait-for-ready, cancellation, status conversion),
// channel and server settings, deadlines, and a plain TCP reachability probe.
#ifndef ESTUARY_COMMON_RPC_H_
#define ESTUARY_COMMON_RPC_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/transport_security.h"
#include "grpcpp/grpcpp.h"

namespace estuary {

absl::Status FromGrpcStatus(const grpc::Status& s);
grpc::Status ToGrpcStatus(const absl::Status& s);

// Prefixes an RPC failure with what was being done and to whom:
// "RegisterTask to chief:0 at localhost:2222: ...". Keeps the code.
absl::Status AnnotateRpcError(const grpc::Status& s, absl::string_view what);

// Calls in flight that can be cancelled together (e.g. every blocking call
// of a client when its task receives SIGTERM). Thread-safe.
class CallCanceller {
 public:
  // Cancels the calls in flight (they end with Cancelled) and makes every
  // later call made with this canceller fail with Cancelled at once.
  void CancelAll();
  bool cancelled() const;

 private:
  friend class ScopedCall;
  // False if already cancelled (the call must not start).
  bool Add(grpc::ClientContext* ctx);
  void Remove(grpc::ClientContext* ctx);

  mutable absl::Mutex mu_;
  std::set<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

struct CallOptions {
  // The RPC fails with DeadlineExceeded after this. InfiniteFuture: none.
  absl::Time deadline = absl::InfiniteFuture();
  // Queue the call while the server is unreachable (until the deadline)
  // instead of failing with Unavailable at once.
  bool wait_for_ready = false;
  // For error messages: "RegisterTask to chief:0 at host:port".
  std::string what;
  // If set, CancelAll() on it ends this call with Cancelled.
  CallCanceller* canceller = nullptr;
};

namespace rpc_internal {
absl::Status CallWithContext(const CallOptions& options,
                             absl::FunctionRef<grpc::Status(grpc::ClientContext*)> invoke);
}  // namespace rpc_internal

// Makes one unary call through a generated stub:
//   CallUnary(stub.get(), &Service::Stub::Method, request, &response, options)
// Returns OK, or the call's gRPC status as an absl::Status (same code) with
// the message prefixed by `options.what`: DeadlineExceeded at the
// deadline, Unavailable when the server cannot be reached, Cancelled after
// `options.canceller->CancelAll()`, or whatever the server returned.
template <typename Stub, typename Request, typename Response>
absl::Status CallUnary(Stub* stub,
                       grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                    Response*),
                       const Request& request, Response* response, const CallOptions& options) {
  return rpc_internal::CallWithContext(options, [&](grpc::ClientContext* ctx) {
    return (stub->*method)(ctx, request, response);
  });
}

// The bound on every gRPC message between tasks, either way (a PS's part of
// a large dense variable travels in one message).
inline constexpr int kMaxMessageBytes = 1 << 30;

struct ChannelOptions {
  // Reconnect quickly while a cluster starts. These arguments do not govern
  // the first connect to a server that is not up yet (gRPC 1.51 still waits
  // ~100 ms or more): wait for the port with TcpProbe before the first call.
  absl::Duration initial_reconnect_backoff = absl::Milliseconds(10);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // gRPC's "min reconnect backoff" is really the shortest connect timeout.
  absl::Duration min_connect_timeout = absl::Seconds(2);
  int max_message_bytes = kMaxMessageBytes;
  // TLS and the job token (transport_security.h); null: neither.
  SecurityPtr security;
};

// A channel to "host:port" with the options above: TLS with the job's CA
// and this task's certificate when `options.security` has them, the job
// token on every call when it has one, plain otherwise. Does not connect
// until the first call. Every channel between tasks is made here.
std::shared_ptr<grpc::Channel> CreateChannel(const std::string& address,
                                             const ChannelOptions& options = {});

struct ServerOptions {
  // Where to listen ("host:port"; port 0: any free one).
  std::string listen_address = "127.0.0.1:0";
  // TLS and the job token; null: neither (and a loud warning when the
  // address is not loopback).
  SecurityPtr security;
  int max_receive_message_bytes = kMaxMessageBytes;
  int max_send_message_bytes = kMaxMessageBytes;
  // Names the server in the insecure-listener warning.
  std::string what = "gRPC server";
  // When set, the listening port's credentials instead of `security`'s
  // (the model server's --ssl_config_file).
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Warn when listening beyond loopback without TLS or token (servers
  // between a job's tasks; not the serving API, which is for clients).
  bool warn_if_insecure = true;
};

// Prepares `builder` the one way every server is built: message-size
// limits, the listening port with the credentials of `options.security`
// (mutual TLS when it has a CA), and the job-token interceptor (services
// call CheckCallAuthenticated). *port receives the bound port at
// BuildAndStart (0 if it could not bind).
void ConfigureServerBuilder(grpc::ServerBuilder* builder, const ServerOptions& options,
                            int* port);

// "host" of "host:port", "[v6]:port" -> "v6" (for getaddrinfo / bind).
std::string HostOf(const std::string& address);
// "host:port", bracketing an IPv6 host ("[v6]:port").
std::string JoinHostPort(const std::string& host, int port);

// The address a task binds for the address other tasks dial: an IP literal
// binds itself; a host name binds every interface ("[::]:port").
std::string ListenAddressFor(const std::string& cluster_address);

// Plain TCP connects to "host:port" (host name, IPv4 or [IPv6] literal),
// closed at once: tells whether a server listens there, e.g. before a
// channel's first call. Resolves the host at most once a second (a name
// may start resolving, or change, while a cluster starts), so probing often
// costs only the connects. Thread-compatible.
class TcpProbe {
 public:
  explicit TcpProbe(std::string address) : address_(std::move(address)) {}

  // OK if a connection was made within `timeout`. Errors: Unavailable (it
  // was refused, the host is unknown or unreachable, or `timeout` passed);
  // InvalidArgument (no port). Name resolution (getaddrinfo) is not bounded
  // by `timeout`.
  absl::Status Probe(absl::Duration timeout);

 private:
  struct Endpoint {
    int family = 0;
    int protocol = 0;
    std::string sockaddr;  // the raw sockaddr bytes
  };
  absl::Status Resolve();

  const std::string address_;
  std::vector<Endpoint> endpoints_;
  absl::Time resolved_ = absl::InfinitePast();
};

// The deadline the client set on a call (InfiniteFuture if none).
absl::Time ServerDeadline(const grpc::ServerContext* ctx);

}  // namespace estuary

#endif  // ESTUARY_COMMON_RPC_H_
