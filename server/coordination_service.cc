#include "server/coordination_service.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/coordination_client.h"
#include "common/logging.h"
#include "common/rpc.h"

namespace estuary {
namespace {

std::string Secs(absl::Duration d) { return absl::StrFormat("%.1f s", absl::ToDoubleSeconds(d)); }

grpc::Status Grpc(const absl::Status& s) { return ToGrpcStatus(s); }

bool IsGone(coordination::TaskState s) {
  return s == coordination::TASK_DEAD || s == coordination::TASK_DISCONNECTED;
}

}  // namespace

CoordinationServiceImpl::CoordinationServiceImpl(CoordinationServiceOptions options)
    : options_(std::move(options)) {
  for (const TaskId& t : options_.cluster_tasks) tasks_[t];
  detector_ = std::thread([this] { DetectFailures(); });
}

CoordinationServiceImpl::~CoordinationServiceImpl() { Stop(); }

void CoordinationServiceImpl::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  detector_.join();
}

absl::Time CoordinationServiceImpl::Deadline(const grpc::ServerContext* ctx,
                                             int64_t timeout_ms) const {
  absl::Time deadline = absl::Now() + TimeLeft(ctx);
  if (timeout_ms > 0) deadline = std::min(deadline, absl::Now() + absl::Milliseconds(timeout_ms));
  return deadline;
}

void CoordinationServiceImpl::DetectFailures() {
  absl::MutexLock l(&mu_);
  const absl::Duration period =
      std::max(absl::Milliseconds(5), std::min(options_.heartbeat_interval,
                                                options_.heartbeat_timeout / 4));
  // A timed wait on `stopping_`: the detector's clock, not synchronisation.
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), period)) {
    const absl::Time now = absl::Now();
    std::vector<std::pair<TaskId, std::string>> dead;
    for (auto& [task, rec] : tasks_) {
      if (rec.state != coordination::TASK_ALIVE) continue;
      const absl::Duration silent = now - rec.last_heartbeat;
      if (silent > options_.heartbeat_timeout) {
        dead.push_back({task, absl::StrCat("no heartbeat for ", Secs(silent), " (timeout ",
                                           Secs(options_.heartbeat_timeout), ")")});
      }
    }
    for (const auto& [task, reason] : dead) {
      spdlog::warn("task {} declared dead: {}", task.ToString(), reason);
      MarkGone(task, coordination::TASK_DEAD, reason);
    }
  }
}

void CoordinationServiceImpl::MarkGone(const TaskId& task, coordination::TaskState state,
                                       const std::string& reason) {
  TaskRecord& rec = tasks_[task];
  rec.state = state;
  rec.reason = reason;
  ++version_;
  for (auto& [id, b] : barriers_) CheckBarrier(id, &b);
}

absl::Status CoordinationServiceImpl::GoneStatus(const TaskId& task) const {
  auto it = tasks_.find(task);
  if (it == tasks_.end() || !IsGone(it->second.state)) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("task ", task.ToString(), " is ",
                   it->second.state == coordination::TASK_DEAD ? "dead" : "disconnected", ": ",
                   it->second.reason));
}

void CoordinationServiceImpl::CheckBarrier(const std::string& id, BarrierState* b) {
  if (b->done) return;
  for (const TaskId& t : b->participants) {
    absl::Status gone = GoneStatus(t);
    if (!gone.ok()) {
      b->done = true;
      b->result = absl::UnavailableError(absl::StrCat("barrier '", id, "' failed: ", gone.message()));
      return;
    }
  }
  for (const TaskId& t : b->participants) {
    if (!b->arrived.contains(t)) return;
  }
  b->done = true;
  b->result = absl::OkStatus();
}

void CoordinationServiceImpl::FillState(coordination::ClusterState* out) const {
  out->set_version(version_);
  out->set_shutdown_requested(shutdown_requested_);
  out->set_shutdown_reason(shutdown_reason_);
  out->set_job_failed(job_failed_);
  out->set_leader_incarnation(options_.leader_incarnation);
  for (const auto& [task, rec] : tasks_) {
    coordination::TaskInfo* info = out->add_tasks();
    *info->mutable_task() = ToProto(task);
    info->set_state(rec.state);
    info->set_incarnation(rec.incarnation);
    info->set_address(rec.address);
    info->set_restarts(rec.restarts);
    info->set_reason(rec.reason);
  }
}

absl::Status CoordinationServiceImpl::CheckMember(const coordination::TaskId& proto,
                                                  uint64_t incarnation) const {
  const TaskId task = FromProto(proto);
  auto it = tasks_.find(task);
  if (it == tasks_.end() || it->second.state == coordination::TASK_UNREGISTERED) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task.ToString(), " is not registered with the coordination service"));
  }
  const TaskRecord& rec = it->second;
  if (rec.incarnation != incarnation) {
    return absl::AbortedError(absl::StrCat("task ", task.ToString(), " incarnation ",
                                           absl::Hex(incarnation), " is stale: the task re-registered as ",
                                           absl::Hex(rec.incarnation)));
  }
  if (IsGone(rec.state)) {
    return absl::AbortedError(absl::StrCat(
        "task ", task.ToString(), " was declared ",
        rec.state == coordination::TASK_DEAD ? "dead" : "disconnected", " (", rec.reason,
        "); restart it to rejoin"));
  }
  return absl::OkStatus();
}

grpc::Status CoordinationServiceImpl::RegisterTask(grpc::ServerContext*,
                                                   const coordination::RegisterTaskRequest* req,
                                                   coordination::RegisterTaskResponse* resp) {
  const TaskId task = FromProto(req->task());
  if (req->incarnation() == 0) {
    return Grpc(absl::InvalidArgumentError("RegisterTask: incarnation must not be 0"));
  }
  absl::MutexLock l(&mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) {
    // The Estimator convention keeps the evaluator out of the cluster spec.
    if (task.type != kEvaluator || task.index != 0) {
      return Grpc(absl::InvalidArgumentError(absl::StrCat(
          "task ", task.ToString(), " is not in the chief's cluster spec (tasks: ",
          absl::StrJoin(tasks_, ", ", [](std::string* out, const auto& kv) {
            absl::StrAppend(out, kv.first.ToString());
          }),
          "): every task must get the same cluster in TF_CONFIG")));
    }
    it = tasks_.emplace(task, TaskRecord{}).first;
  }
  TaskRecord& rec = it->second;
  if (rec.incarnation == req->incarnation()) {
    if (IsGone(rec.state)) {
      return Grpc(absl::AbortedError(absl::StrCat("task ", task.ToString(),
                                                  " was declared gone: ", rec.reason)));
    }
  } else {
    if (rec.incarnation != 0) {
      ++rec.restarts;
      spdlog::warn("task {} restarted: incarnation {:x} -> {:x} (was {}{}), restarts={}",
                   task.ToString(), rec.incarnation, req->incarnation(),
                   TaskStateName(rec.state), rec.reason.empty() ? "" : ": " + rec.reason,
                   rec.restarts);
    } else {
      spdlog::info("task {} registered from {} (incarnation {:x})", task.ToString(),
                   req->address(), req->incarnation());
    }
    rec.incarnation = req->incarnation();
    rec.address = req->address();
    rec.reason.clear();
    ++version_;
  }
  rec.state = coordination::TASK_ALIVE;
  rec.last_heartbeat = absl::Now();
  resp->set_leader_incarnation(options_.leader_incarnation);
  resp->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  resp->set_heartbeat_timeout_ms(absl::ToInt64Milliseconds(options_.heartbeat_timeout));
  return grpc::Status::OK;
}

grpc::Status CoordinationServiceImpl::Heartbeat(grpc::ServerContext*,
                                                const coordination::HeartbeatRequest* req,
                                                coordination::HeartbeatResponse* resp) {
  absl::MutexLock l(&mu_);
  absl::Status member = CheckMember(req->task(), req->incarnation());
  if (!member.ok()) return Grpc(member);
  tasks_[FromProto(req->task())].last_heartbeat = absl::Now();
  resp->set_leader_incarnation(options_.leader_incarnation);
  resp->set_shutdown_requested(shutdown_requested_);
  resp->set_job_failed(job_failed_);
  resp->set_shutdown_reason(shutdown_reason_);
  return grpc::Status::OK;
}

grpc::Status CoordinationServiceImpl::KeyValueSet(grpc::ServerContext*,
                                                  const coordination::KeyValueSetRequest* req,
                                                  coordination::KeyValueSetResponse*) {
  if (req->key().empty()) return Grpc(absl::InvalidArgumentError("KeyValueSet: empty key"));
  absl::MutexLock l(&mu_);
  auto [it, inserted] = kv_.emplace(req->key(), req->value());
  if (!inserted) {
    if (!req->allow_overwrite()) {
      return Grpc(absl::AlreadyExistsError(absl::StrCat("key '", req->key(), "' is already set")));
    }
    it->second = req->value();
  }
  return grpc::Status::OK;
}

grpc::Status CoordinationServiceImpl::KeyValueGet(grpc::ServerContext*,
                                                  const coordination::KeyValueGetRequest* req,
                                                  coordination::KeyValueGetResponse* resp) {
  absl::MutexLock l(&mu_);
  auto it = kv_.find(req->key());
  if (it == kv_.end()) {
    return Grpc(absl::NotFoundError(absl::StrCat("key '", req->key(), "' is not set")));
  }
  resp->set_value(it->second);
  return grpc::Status::OK;
}

grpc::Status CoordinationServiceImpl::WaitForKey(grpc::ServerContext* ctx,
                                                 const coordination::WaitForKeyRequest* req,
                                                 coordination::WaitForKeyResponse* resp) {
  const absl::Time deadline = Deadline(ctx, req->timeout_ms());
  const bool has_producer = req->has_producer();
  const TaskId producer = FromProto(req->producer());
  absl::MutexLock l(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || kv_.contains(req->key()) || (has_producer && !GoneStatus(producer).ok());
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  auto it = kv_.find(req->key());
  if (it != kv_.end()) {
    resp->set_value(it->second);
    return grpc::Status::OK;
  }
  if (has_producer) {
    absl::Status gone = GoneStatus(producer);
    if (!gone.ok()) {
      return Grpc(absl::UnavailableError(
          absl::StrCat("waiting for key '", req->key(), "': ", gone.message())));
    }
  }
  if (stopping_) return Grpc(absl::UnavailableError("coordination service is shutting down"));
  return Grpc(absl::DeadlineExceededError(
      absl::StrCat("key '", req->key(), "' was not set within the deadline")));
}

grpc::Status CoordinationServiceImpl::Barrier(grpc::ServerContext* ctx,
                                              const coordination::BarrierRequest* req,
                                              coordination::BarrierResponse*) {
  const std::string& id = req->barrier_id();
  const TaskId self = FromProto(req->task());
  if (id.empty()) return Grpc(absl::InvalidArgumentError("Barrier: empty barrier_id"));
  const absl::Time rpc_deadline = Deadline(ctx, 0);
  absl::MutexLock l(&mu_);
  absl::Status member = CheckMember(req->task(), req->incarnation());
  if (!member.ok()) return Grpc(member);
  std::vector<TaskId> participants;
  for (const auto& p : req->participants()) participants.push_back(FromProto(p));
  std::sort(participants.begin(), participants.end());
  auto [it, created] = barriers_.try_emplace(id);
  BarrierState& b = it->second;
  if (created) {
    b.participants = participants.empty() ? options_.cluster_tasks : participants;
    std::sort(b.participants.begin(), b.participants.end());
    b.deadline = req->timeout_ms() > 0 ? absl::Now() + absl::Milliseconds(req->timeout_ms())
                                       : absl::InfiniteFuture();
  } else if (!participants.empty() && participants != b.participants) {
    return Grpc(absl::InvalidArgumentError(absl::StrCat(
        "barrier '", id, "': task ", self.ToString(),
        " passed a different participant list than the first arrival")));
  }
  b.arrived.insert(self);
  CheckBarrier(id, &b);
  const absl::Time deadline = std::min(rpc_deadline, b.deadline);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || b.done; };
  mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  if (!b.done && absl::Now() >= b.deadline) {
    std::vector<std::string> missing;
    for (const TaskId& t : b.participants) {
      if (!b.arrived.contains(t)) {
        const TaskRecord& rec = tasks_[t];
        missing.push_back(absl::StrCat(t.ToString(), rec.state == coordination::TASK_UNREGISTERED
                                                         ? " (never registered)"
                                                         : ""));
      }
    }
    b.done = true;
    b.result = absl::DeadlineExceededError(
        absl::StrCat("barrier '", id, "' timed out after ",
                     Secs(absl::Milliseconds(req->timeout_ms())), ": still waiting for ",
                     absl::StrJoin(missing, ", ")));
  }
  if (b.done) return Grpc(b.result);
  if (stopping_) return Grpc(absl::UnavailableError("coordination service is shutting down"));
  return Grpc(absl::DeadlineExceededError(
      absl::StrCat("barrier '", id, "': the caller's RPC deadline passed")));
}

grpc::Status CoordinationServiceImpl::WatchCluster(grpc::ServerContext* ctx,
                                                   const coordination::WatchClusterRequest* req,
                                                   coordination::ClusterState* resp) {
  const absl::Time deadline = Deadline(ctx, req->timeout_ms());
  absl::MutexLock l(&mu_);
  auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || version_ > req->known_version();
  };
  mu_.AwaitWithDeadline(absl::Condition(&changed), deadline);
  if (stopping_) return Grpc(absl::UnavailableError("coordination service is shutting down"));
  FillState(resp);
  return grpc::Status::OK;
}

grpc::Status CoordinationServiceImpl::GetClusterState(grpc::ServerContext*,
                                                      const coordination::GetClusterStateRequest*,
                                                      coordination::ClusterState* resp) {
  absl::MutexLock l(&mu_);
  FillState(resp);
  return grpc::Status::OK;
}

grpc::Status CoordinationServiceImpl::RequestShutdown(
    grpc::ServerContext*, const coordination::RequestShutdownRequest* req,
    coordination::RequestShutdownResponse*) {
  RequestShutdownLocal(req->reason(), req->job_failed());
  return grpc::Status::OK;
}

void CoordinationServiceImpl::RequestShutdownLocal(const std::string& reason, bool job_failed) {
  absl::MutexLock l(&mu_);
  if (shutdown_requested_) return;
  shutdown_requested_ = true;
  shutdown_reason_ = reason;
  job_failed_ = job_failed;
  ++version_;
  spdlog::info("cluster shutdown requested{}: {}", job_failed ? " (job failed)" : "", reason);
}

grpc::Status CoordinationServiceImpl::Disconnect(grpc::ServerContext*,
                                                 const coordination::DisconnectRequest* req,
                                                 coordination::DisconnectResponse*) {
  absl::MutexLock l(&mu_);
  absl::Status member = CheckMember(req->task(), req->incarnation());
  if (!member.ok()) return Grpc(member);
  const TaskId task = FromProto(req->task());
  spdlog::info("task {} disconnected: {}", task.ToString(), req->reason());
  MarkGone(task, coordination::TASK_DISCONNECTED, req->reason());
  return grpc::Status::OK;
}

coordination::ClusterState CoordinationServiceImpl::State() const {
  absl::MutexLock l(&mu_);
  coordination::ClusterState s;
  FillState(&s);
  return s;
}

std::vector<TaskId> CoordinationServiceImpl::WaitUntilAllLeft(const TaskId& except,
                                                              absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto remaining = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<TaskId> out;
    for (const auto& [task, rec] : tasks_) {
      if (task != except && rec.state == coordination::TASK_ALIVE) out.push_back(task);
    }
    return out;
  };
  auto all_left = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || remaining().empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&all_left), timeout);
  return remaining();
}

}  // namespace estuary
