#include "common/coordination_client.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/rpc.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

// Extra RPC deadline over a server-side wait, so the service's own
// DEADLINE_EXCEEDED (which names what was missing) arrives first.
constexpr absl::Duration kWaitMargin = absl::Seconds(2);

int64_t Ms(absl::Duration d) {
  return d == absl::InfiniteDuration() ? 0 : absl::ToInt64Milliseconds(d);
}

}  // namespace

class CoordinationClient::ActiveCall {
 public:
  ActiveCall(CoordinationClient* client, grpc::ClientContext* ctx) : client_(client), ctx_(ctx) {
    absl::MutexLock l(&client_->mu_);
    cancelled_ = client_->cancelled_;
    if (!cancelled_) client_->active_.insert(ctx_);
  }
  ~ActiveCall() {
    absl::MutexLock l(&client_->mu_);
    client_->active_.erase(ctx_);
  }
  // Cancelled if the client was cancelled before the call started.
  absl::Status status() const {
    return cancelled_ ? absl::CancelledError("coordination client is shutting down")
                      : absl::OkStatus();
  }

 private:
  CoordinationClient* client_;
  grpc::ClientContext* ctx_;
  bool cancelled_;
};

void CoordinationClient::CancelBlockingCalls() {
  absl::MutexLock l(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : active_) ctx->TryCancel();
}

coordination::TaskId ToProto(const TaskId& t) {
  coordination::TaskId p;
  p.set_type(t.type);
  p.set_index(t.index);
  return p;
}

TaskId FromProto(const coordination::TaskId& t) { return TaskId{t.type(), t.index()}; }

std::string TaskStateName(coordination::TaskState s) {
  switch (s) {
    case coordination::TASK_UNREGISTERED: return "UNREGISTERED";
    case coordination::TASK_ALIVE: return "ALIVE";
    case coordination::TASK_DEAD: return "DEAD";
    case coordination::TASK_DISCONNECTED: return "DISCONNECTED";
    default: return "UNKNOWN";
  }
}

uint64_t NewIncarnation() {
  absl::BitGen gen;
  uint64_t v = 0;
  while (v == 0) v = absl::Uniform<uint64_t>(gen);
  return v;
}

CoordinationClient::CoordinationClient(std::shared_ptr<grpc::Channel> channel, TaskId self,
                                       uint64_t incarnation, std::string coordinator)
    : stub_(coordination::CoordinationService::NewStub(channel)),
      self_(std::move(self)),
      incarnation_(incarnation),
      coordinator_(std::move(coordinator)) {}

std::string CoordinationClient::What(absl::string_view rpc) const {
  return absl::StrCat(rpc, " to ", coordinator_);
}

absl::StatusOr<coordination::RegisterTaskResponse> CoordinationClient::Register(
    const std::string& own_address, absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout);
  ctx.set_wait_for_ready(true);  // the chief may not be up yet
  ActiveCall call(this, &ctx);
  if (!call.status().ok()) return call.status();
  coordination::RegisterTaskRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  req.set_address(own_address);
  coordination::RegisterTaskResponse resp;
  grpc::Status s = stub_->RegisterTask(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::UnavailableError(absl::StrCat("cannot reach the chief ", coordinator_,
                                               " within ", absl::FormatDuration(timeout),
                                               " (is it running, and is the address right?)"));
  }
  if (!s.ok()) return AnnotateRpcError(s, What("RegisterTask"));
  return resp;
}

absl::StatusOr<coordination::HeartbeatResponse> CoordinationClient::Heartbeat(
    absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout);
  coordination::HeartbeatRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  coordination::HeartbeatResponse resp;
  grpc::Status s = stub_->Heartbeat(&ctx, req, &resp);
  if (!s.ok()) return AnnotateRpcError(s, What("Heartbeat"));
  return resp;
}

absl::Status CoordinationClient::Set(const std::string& key, const std::string& value,
                                     bool allow_overwrite, absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout);
  coordination::KeyValueSetRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_allow_overwrite(allow_overwrite);
  coordination::KeyValueSetResponse resp;
  return AnnotateRpcError(stub_->KeyValueSet(&ctx, req, &resp), What("KeyValueSet"));
}

absl::StatusOr<std::string> CoordinationClient::Get(const std::string& key,
                                                    absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout);
  coordination::KeyValueGetRequest req;
  req.set_key(key);
  coordination::KeyValueGetResponse resp;
  grpc::Status s = stub_->KeyValueGet(&ctx, req, &resp);
  if (!s.ok()) return AnnotateRpcError(s, What("KeyValueGet"));
  return resp.value();
}

absl::StatusOr<std::string> CoordinationClient::WaitForKey(const std::string& key,
                                                           absl::Duration timeout,
                                                           std::optional<TaskId> producer) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout + kWaitMargin);
  ctx.set_wait_for_ready(true);  // a wait may start before the chief is up
  ActiveCall call(this, &ctx);
  if (!call.status().ok()) return call.status();
  coordination::WaitForKeyRequest req;
  req.set_key(key);
  req.set_timeout_ms(Ms(timeout));
  if (producer) *req.mutable_producer() = ToProto(*producer);
  coordination::WaitForKeyResponse resp;
  grpc::Status s = stub_->WaitForKey(&ctx, req, &resp);
  if (!s.ok()) return AnnotateRpcError(s, What("WaitForKey"));
  return resp.value();
}

absl::Status CoordinationClient::Barrier(const std::string& id, absl::Duration timeout,
                                         const std::vector<TaskId>& participants) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout + kWaitMargin);
  ActiveCall call(this, &ctx);
  RETURN_IF_ERROR(call.status());
  coordination::BarrierRequest req;
  req.set_barrier_id(id);
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  req.set_timeout_ms(Ms(timeout));
  for (const TaskId& t : participants) *req.add_participants() = ToProto(t);
  coordination::BarrierResponse resp;
  return AnnotateRpcError(stub_->Barrier(&ctx, req, &resp), What("Barrier"));
}

absl::StatusOr<coordination::ClusterState> CoordinationClient::WatchCluster(
    uint64_t known_version, absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout + kWaitMargin);
  ActiveCall call(this, &ctx);
  if (!call.status().ok()) return call.status();
  coordination::WatchClusterRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_known_version(known_version);
  req.set_timeout_ms(Ms(timeout));
  coordination::ClusterState resp;
  grpc::Status s = stub_->WatchCluster(&ctx, req, &resp);
  if (!s.ok()) return AnnotateRpcError(s, What("WatchCluster"));
  return resp;
}

absl::StatusOr<coordination::ClusterState> CoordinationClient::GetClusterState(
    absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout);
  coordination::GetClusterStateRequest req;
  coordination::ClusterState resp;
  grpc::Status s = stub_->GetClusterState(&ctx, req, &resp);
  if (!s.ok()) return AnnotateRpcError(s, What("GetClusterState"));
  return resp;
}

absl::Status CoordinationClient::RequestShutdown(const std::string& reason, bool job_failed,
                                                 absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout);
  coordination::RequestShutdownRequest req;
  req.set_reason(reason);
  req.set_job_failed(job_failed);
  coordination::RequestShutdownResponse resp;
  return AnnotateRpcError(stub_->RequestShutdown(&ctx, req, &resp), What("RequestShutdown"));
}

absl::Status CoordinationClient::Disconnect(const std::string& reason,
                                            absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout);
  coordination::DisconnectRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  req.set_reason(reason);
  coordination::DisconnectResponse resp;
  return AnnotateRpcError(stub_->Disconnect(&ctx, req, &resp), What("Disconnect"));
}

}  // namespace estuary
