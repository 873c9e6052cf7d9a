// gRPC helpers shared by every client and server: status conversion, channel
// and server settings, deadlines.
#ifndef ESTUARY_COMMON_RPC_H_
#define ESTUARY_COMMON_RPC_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace estuary {

absl::Status FromGrpcStatus(const grpc::Status& s);
grpc::Status ToGrpcStatus(const absl::Status& s);

// Prefixes an RPC failure with what was being done and to whom:
// "RegisterTask to chief:0 at localhost:2222: UNAVAILABLE: ...".
absl::Status AnnotateRpcError(const grpc::Status& s, absl::string_view what);

struct ChannelOptions {
  // Reconnect quickly while a cluster starts (gRPC's default first backoff
  // is 1 s, which would dominate start-up).
  absl::Duration initial_reconnect_backoff = absl::Milliseconds(10);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // gRPC's "min reconnect backoff" is really the shortest connect timeout.
  absl::Duration min_connect_timeout = absl::Seconds(2);
  int max_message_bytes = 1 << 30;
};

// An insecure channel to "host:port" with the options above. Does not
// connect until the first call.
std::shared_ptr<grpc::Channel> CreateChannel(const std::string& address,
                                             const ChannelOptions& options = {});

// Applies server-side message-size limits.
void ConfigureServerBuilder(grpc::ServerBuilder* builder);

// The address a task binds for the address other tasks dial: an IP literal
// binds itself; a host name binds every interface ("[::]:port").
std::string ListenAddressFor(const std::string& cluster_address);

// Sets the context deadline `timeout` from now.
void SetTimeout(grpc::ClientContext* ctx, absl::Duration timeout);

// Time left until the server-side context's deadline (InfiniteDuration if
// the client set none).
absl::Duration TimeLeft(const grpc::ServerContext* ctx);

}  // namespace estuary

#endif  // ESTUARY_COMMON_RPC_H_
