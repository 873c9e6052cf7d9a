#include "common/rpc.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace estuary {

absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status AnnotateRpcError(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

// Registers a call's context with its canceller for the call's lifetime.
class ScopedCall {
 public:
  ScopedCall(CallCanceller* canceller, grpc::ClientContext* ctx)
      : canceller_(canceller), ctx_(ctx) {
    started_ = canceller_ == nullptr || canceller_->Add(ctx_);
  }
  ~ScopedCall() {
    if (canceller_ != nullptr && started_) canceller_->Remove(ctx_);
  }
  bool started() const { return started_; }

 private:
  CallCanceller* const canceller_;
  grpc::ClientContext* const ctx_;
  bool started_;
};

void CallCanceller::CancelAll() {
  absl::MutexLock l(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
}

bool CallCanceller::cancelled() const {
  absl::MutexLock l(&mu_);
  return cancelled_;
}

bool CallCanceller::Add(grpc::ClientContext* ctx) {
  absl::MutexLock l(&mu_);
  if (cancelled_) return false;
  active_.insert(ctx);
  return true;
}

void CallCanceller::Remove(grpc::ClientContext* ctx) {
  absl::MutexLock l(&mu_);
  active_.erase(ctx);
}

namespace rpc_internal {

absl::Status CallWithContext(const CallOptions& options,
                             absl::FunctionRef<grpc::Status(grpc::ClientContext*)> invoke) {
  grpc::ClientContext ctx;
  if (options.deadline != absl::InfiniteFuture()) {
    ctx.set_deadline(absl::ToChronoTime(options.deadline));
  }
  ctx.set_wait_for_ready(options.wait_for_ready);
  ScopedCall call(options.canceller, &ctx);
  if (!call.started()) {
    return absl::CancelledError(absl::StrCat(options.what, ": cancelled (shutting down)"));
  }
  return AnnotateRpcError(invoke(&ctx), options.what);
}

}  // namespace rpc_internal

std::shared_ptr<grpc::Channel> CreateChannel(const std::string& address,
                                             const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.min_connect_timeout)));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.initial_reconnect_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.max_reconnect_backoff)));
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Each task talks to each peer over its own connection (no sharing of
  // subchannels between unrelated clients in one process).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, ChannelCredentialsFor(options.security), args,
      ClientInterceptorsFor(options.security));
}

void ConfigureServerBuilder(grpc::ServerBuilder* builder, const ServerOptions& options,
                            int* port) {
  builder->SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder->SetMaxSendMessageSize(options.max_send_message_bytes);
  builder->AddListeningPort(options.listen_address,
                            options.credentials != nullptr ? options.credentials
                                                           : ServerCredentialsFor(options.security),
                            port);
  builder->experimental().SetInterceptorCreators(ServerInterceptorsFor(options.security));
  if (options.warn_if_insecure) {
    WarnIfInsecure(options.what, options.listen_address, options.security);
  }
}

std::string HostOf(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    return address.substr(1, address.find(']') - 1);
  }
  return address.substr(0, address.rfind(':'));
}

std::string JoinHostPort(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

std::string ListenAddressFor(const std::string& cluster_address) {
  const size_t colon = cluster_address.rfind(':');
  if (colon == std::string::npos) return cluster_address;
  std::string host = cluster_address.substr(0, colon);
  const std::string port = cluster_address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return cluster_address;  // IPv6 literal
  }
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return cluster_address;
  return absl::StrCat("[::]:", port);
}

absl::Status TcpProbe::Resolve() {
  const size_t colon = address_.rfind(':');
  if (colon == std::string::npos || colon + 1 == address_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address_, "' has no port"));
  }
  std::string host = address_.substr(0, colon);
  const std::string port = address_.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve '", host, "': ", gai_strerror(rc)));
  }
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    endpoints_.push_back({ai->ai_family, ai->ai_protocol,
                          std::string(reinterpret_cast<const char*>(ai->ai_addr), ai->ai_addrlen)});
  }
  freeaddrinfo(found);
  return absl::OkStatus();
}

absl::Status TcpProbe::Probe(absl::Duration timeout) {
  if (absl::Now() - resolved_ > absl::Seconds(1)) {
    endpoints_.clear();
    resolved_ = absl::Now();
    if (absl::Status st = Resolve(); !st.ok()) return st;
  }
  const absl::Time deadline = absl::Now() + timeout;
  std::string last_error = "no address";
  for (const Endpoint& e : endpoints_) {
    const int fd = socket(e.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, e.protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const auto* addr = reinterpret_cast<const sockaddr*>(e.sockaddr.data());
    int err = connect(fd, addr, static_cast<socklen_t>(e.sockaddr.size())) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const int64_t ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
      const int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
      socklen_t len = sizeof(err);
      if (ready == 1) {
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ready == 0 ? ETIMEDOUT : errno;
      }
    }
    close(fd);
    if (err == 0) return absl::OkStatus();
    last_error = std::strerror(err);
  }
  return absl::UnavailableError(absl::StrCat("cannot connect to ", address_, ": ", last_error));
}

absl::Time ServerDeadline(const grpc::ServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace estuary
