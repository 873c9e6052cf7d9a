#include "common/coordination/coordination_client.h"

#include <algorithm>

#include "common/coordination/types.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

// Extra RPC deadline over a server-side wait, so the service's own
// DeadlineExceeded (which names what was missing) arrives first.
constexpr absl::Duration kWaitMargin = absl::Seconds(2);

absl::Time WithMargin(absl::Time deadline) {
  return deadline == absl::InfiniteFuture() ? deadline : deadline + kWaitMargin;
}

// The wait the service applies itself (0: none).
int64_t WaitMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return 0;
  return std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
}

}  // namespace

CoordinationClient::CoordinationClient(std::shared_ptr<grpc::Channel> channel, TaskId self,
                                       uint64_t incarnation, std::string coordinator)
    : stub_(coordination::CoordinationService::NewStub(channel)),
      self_(std::move(self)),
      incarnation_(incarnation),
      coordinator_(std::move(coordinator)) {}

void CoordinationClient::CancelBlockingCalls() { blocking_.CancelAll(); }

absl::Status CoordinationClient::Set(const std::string& key, const std::string& value,
                                     absl::Time deadline) {
  coordination::KeyValueSetRequest req;
  req.set_key(key);
  req.set_value(value);
  coordination::KeyValueSetResponse resp;
  return Call(&Stub::KeyValueSet, "Set", req, &resp, deadline, Kind::kQuick);
}

absl::StatusOr<std::string> CoordinationClient::Get(const std::string& key, absl::Time deadline) {
  coordination::KeyValueGetRequest req;
  req.set_key(key);
  coordination::KeyValueGetResponse resp;
  RETURN_IF_ERROR(Call(&Stub::KeyValueGet, "Get", req, &resp, deadline, Kind::kQuick));
  return std::move(*resp.mutable_value());
}

absl::StatusOr<int64_t> CoordinationClient::Add(const std::string& key, int64_t delta,
                                                absl::Time deadline) {
  coordination::KeyValueAddRequest req;
  req.set_key(key);
  req.set_delta(delta);
  coordination::KeyValueAddResponse resp;
  RETURN_IF_ERROR(Call(&Stub::KeyValueAdd, "Add", req, &resp, deadline, Kind::kQuick));
  return resp.value();
}

absl::StatusOr<std::vector<std::string>> CoordinationClient::Wait(
    const std::vector<std::string>& keys, absl::Time deadline) {
  if (absl::Now() >= deadline) {
    return absl::DeadlineExceededError(
        absl::StrCat("Wait to ", coordinator_, ": the deadline passed before the call"));
  }
  coordination::WaitForKeysRequest req;
  for (const std::string& k : keys) req.add_keys(k);
  req.set_timeout_ms(WaitMs(deadline));
  coordination::WaitForKeysResponse resp;
  RETURN_IF_ERROR(Call(&Stub::WaitForKeys, "Wait", req, &resp, WithMargin(deadline),
                       Kind::kBlockingUntilReachable));
  return std::vector<std::string>(std::make_move_iterator(resp.mutable_values()->begin()),
                                  std::make_move_iterator(resp.mutable_values()->end()));
}

absl::Status CoordinationClient::Barrier(const std::string& id,
                                         const std::vector<TaskId>& participants,
                                         absl::Time deadline) {
  if (absl::Now() >= deadline) {
    return absl::DeadlineExceededError(absl::StrCat("Barrier '", id, "' to ", coordinator_,
                                                    ": the deadline passed before the call"));
  }
  coordination::BarrierRequest req;
  req.set_barrier_id(id);
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  req.set_timeout_ms(WaitMs(deadline));
  for (const TaskId& t : participants) *req.add_participants() = ToProto(t);
  coordination::BarrierResponse resp;
  return Call(&Stub::Barrier, "Barrier", req, &resp, WithMargin(deadline), Kind::kBlocking);
}

absl::Status CoordinatorUnreachableError(const std::string& coordinator, absl::Duration waited) {
  return absl::UnavailableError(absl::StrCat(
      "cannot reach the chief ", coordinator, " within ",
      absl::FormatDuration(absl::Trunc(waited, absl::Milliseconds(1))),
      " (is it running, and is the address right?)"));
}

absl::StatusOr<coordination::RegisterTaskResponse> CoordinationClient::Register(
    const std::string& own_address, absl::Time deadline) {
  coordination::RegisterTaskRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  req.set_address(own_address);
  coordination::RegisterTaskResponse resp;
  const absl::Time start = absl::Now();
  absl::Status st = Call(&Stub::RegisterTask, "RegisterTask", req, &resp, deadline,
                         Kind::kBlockingUntilReachable);
  if (absl::IsDeadlineExceeded(st)) {
    return CoordinatorUnreachableError(coordinator_, deadline - start);
  }
  RETURN_IF_ERROR(st);
  return resp;
}

absl::StatusOr<coordination::HeartbeatResponse> CoordinationClient::Heartbeat(
    absl::Time deadline, const coordination::TaskReport* report) {
  coordination::HeartbeatRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  if (report != nullptr) *req.mutable_report() = *report;
  coordination::HeartbeatResponse resp;
  RETURN_IF_ERROR(Call(&Stub::Heartbeat, "Heartbeat", req, &resp, deadline, Kind::kQuick));
  return resp;
}

absl::StatusOr<coordination::ClusterState> CoordinationClient::WatchCluster(
    uint64_t known_version, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  coordination::WatchClusterRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_known_version(known_version);
  req.set_timeout_ms(WaitMs(deadline));
  coordination::ClusterState resp;
  RETURN_IF_ERROR(Call(&Stub::WatchCluster, "WatchCluster", req, &resp, WithMargin(deadline),
                       Kind::kBlocking));
  return resp;
}

absl::StatusOr<coordination::ClusterState> CoordinationClient::GetClusterState(
    absl::Time deadline) {
  coordination::GetClusterStateRequest req;
  coordination::ClusterState resp;
  RETURN_IF_ERROR(
      Call(&Stub::GetClusterState, "GetClusterState", req, &resp, deadline, Kind::kQuick));
  return resp;
}

absl::Status CoordinationClient::RequestShutdown(const std::string& reason, bool job_failed,
                                                 absl::Time deadline) {
  coordination::RequestShutdownRequest req;
  req.set_reason(reason);
  req.set_job_failed(job_failed);
  coordination::RequestShutdownResponse resp;
  return Call(&Stub::RequestShutdown, "RequestShutdown", req, &resp, deadline, Kind::kQuick);
}

absl::Status CoordinationClient::Disconnect(const std::string& reason, absl::Time deadline) {
  coordination::DisconnectRequest req;
  *req.mutable_task() = ToProto(self_);
  req.set_incarnation(incarnation_);
  req.set_reason(reason);
  coordination::DisconnectResponse resp;
  return Call(&Stub::Disconnect, "Disconnect", req, &resp, deadline, Kind::kQuick);
}

}  // namespace estuary
