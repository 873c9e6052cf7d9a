#include "common/coordination/grpc_service.h"

#include <algorithm>

#include "common/coordination/types.h"
#include "common/rpc.h"

namespace estuary {
namespace {

// A request's own wait (timeout_ms > 0) as an absolute time.
absl::Time RequestDeadline(int64_t timeout_ms) {
  return timeout_ms > 0 ? absl::Now() + absl::Milliseconds(timeout_ms) : absl::InfiniteFuture();
}

// The RPC's deadline, tightened by the request's own timeout; the wait also
// ends when the client cancels.
WaitLimits Limits(grpc::ServerContext* ctx, int64_t timeout_ms) {
  WaitLimits limits;
  limits.deadline = std::min(ServerDeadline(ctx), RequestDeadline(timeout_ms));
  limits.cancelled = [ctx] { return ctx->IsCancelled(); };
  return limits;
}

// Copies an OK result into the response.
template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* resp) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *resp = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status GrpcCoordinationService::RegisterTask(grpc::ServerContext* ctx,
                                                   const coordination::RegisterTaskRequest* req,
                                                   coordination::RegisterTaskResponse* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (grpc::Status id = CheckCallerIsTask(ctx, "RegisterTask", FromProto(req->task()).ToString());
      !id.ok()) {
    return id;
  }
  return Reply(service_->RegisterTask(FromProto(req->task()), req->incarnation(), req->address()),
               resp);
}

grpc::Status GrpcCoordinationService::Heartbeat(grpc::ServerContext* ctx,
                                                const coordination::HeartbeatRequest* req,
                                                coordination::HeartbeatResponse* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (grpc::Status id = CheckCallerIsTask(ctx, "Heartbeat", FromProto(req->task()).ToString());
      !id.ok()) {
    return id;
  }
  absl::StatusOr<coordination::HeartbeatResponse> r =
      service_->Heartbeat(FromProto(req->task()), req->incarnation());
  // Only a member's heartbeat counts (a stale incarnation's is refused).
  if (r.ok() && live_ != nullptr && req->has_report()) {
    live_->Record(FromProto(req->task()), req->incarnation(), req->report(), absl::Now());
  }
  return Reply(std::move(r), resp);
}

grpc::Status GrpcCoordinationService::KeyValueSet(grpc::ServerContext* ctx,
                                                  const coordination::KeyValueSetRequest* req,
                                                  coordination::KeyValueSetResponse*) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (grpc::Status id = CheckCallerIsATask(ctx, "KeyValueSet"); !id.ok()) return id;
  return ToGrpcStatus(service_->Set(req->key(), req->value()));
}

grpc::Status GrpcCoordinationService::KeyValueGet(grpc::ServerContext* ctx,
                                                  const coordination::KeyValueGetRequest* req,
                                                  coordination::KeyValueGetResponse* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  absl::StatusOr<std::string> value = service_->Get(req->key());
  if (!value.ok()) return ToGrpcStatus(value.status());
  resp->set_value(*std::move(value));
  return grpc::Status::OK;
}

grpc::Status GrpcCoordinationService::KeyValueAdd(grpc::ServerContext* ctx,
                                                  const coordination::KeyValueAddRequest* req,
                                                  coordination::KeyValueAddResponse* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (grpc::Status id = CheckCallerIsATask(ctx, "KeyValueAdd"); !id.ok()) return id;
  absl::StatusOr<int64_t> value = service_->Add(req->key(), req->delta());
  if (!value.ok()) return ToGrpcStatus(value.status());
  resp->set_value(*value);
  return grpc::Status::OK;
}

grpc::Status GrpcCoordinationService::WaitForKeys(grpc::ServerContext* ctx,
                                                  const coordination::WaitForKeysRequest* req,
                                                  coordination::WaitForKeysResponse* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  const std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  absl::StatusOr<std::vector<std::string>> values =
      service_->WaitForKeys(keys, Limits(ctx, req->timeout_ms()));
  if (!values.ok()) return ToGrpcStatus(values.status());
  for (std::string& v : *values) resp->add_values(std::move(v));
  return grpc::Status::OK;
}

grpc::Status GrpcCoordinationService::Barrier(grpc::ServerContext* ctx,
                                              const coordination::BarrierRequest* req,
                                              coordination::BarrierResponse*) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (grpc::Status id = CheckCallerIsTask(ctx, "Barrier", FromProto(req->task()).ToString());
      !id.ok()) {
    return id;
  }
  std::vector<TaskId> participants;
  for (const auto& p : req->participants()) participants.push_back(FromProto(p));
  return ToGrpcStatus(service_->Barrier(req->barrier_id(), FromProto(req->task()),
                                        req->incarnation(), std::move(participants),
                                        RequestDeadline(req->timeout_ms()), Limits(ctx, 0)));
}

grpc::Status GrpcCoordinationService::WatchCluster(grpc::ServerContext* ctx,
                                                   const coordination::WatchClusterRequest* req,
                                                   coordination::ClusterState* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  return Reply(service_->WatchCluster(req->known_version(), Limits(ctx, req->timeout_ms())), resp);
}

grpc::Status GrpcCoordinationService::GetClusterState(grpc::ServerContext* ctx,
                                                      const coordination::GetClusterStateRequest*,
                                                      coordination::ClusterState* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  *resp = service_->State();
  return grpc::Status::OK;
}

grpc::Status GrpcCoordinationService::RequestShutdown(
    grpc::ServerContext* ctx, const coordination::RequestShutdownRequest* req,
    coordination::RequestShutdownResponse*) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (grpc::Status id = CheckCallerIsATask(ctx, "RequestShutdown"); !id.ok()) return id;
  service_->RequestShutdown(req->reason(), req->job_failed());
  return grpc::Status::OK;
}

grpc::Status GrpcCoordinationService::Disconnect(grpc::ServerContext* ctx,
                                                 const coordination::DisconnectRequest* req,
                                                 coordination::DisconnectResponse*) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (grpc::Status id = CheckCallerIsTask(ctx, "Disconnect", FromProto(req->task()).ToString());
      !id.ok()) {
    return id;
  }
  return ToGrpcStatus(
      service_->Disconnect(FromProto(req->task()), req->incarnation(), req->reason()));
}

grpc::Status GrpcCoordinationService::GetStatus(grpc::ServerContext* ctx,
                                                const coordination::GetStatusRequest*,
                                                coordination::ClusterStatus* resp) {
  if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
  if (live_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "this coordinator keeps no live status");
  }
  *resp = live_->Build(service_->State(), absl::Now());
  return grpc::Status::OK;
}

}  // namespace estuary
