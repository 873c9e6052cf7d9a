#include "common/coordination/coordination_service.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/coordination/types.h"
#include "common/logging.h"

namespace estuary {
namespace {

std::string Secs(absl::Duration d) { return absl::StrFormat("%.1f s", absl::ToDoubleSeconds(d)); }

bool IsGone(coordination::TaskState s) {
  return s == coordination::TASK_DEAD || s == coordination::TASK_DISCONNECTED;
}

const char* GoneWord(coordination::TaskState s) {
  return s == coordination::TASK_DEAD ? "dead" : "disconnected";
}

absl::Status ValidateKey(const std::string& key, absl::string_view what) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty key"));
  return absl::OkStatus();
}

}  // namespace

CoordinationService::CoordinationService(CoordinationServiceOptions options)
    : options_(std::move(options)) {
  for (const TaskId& t : options_.cluster_tasks) tasks_[t];
  if (options_.heartbeat_timeout != absl::InfiniteDuration()) {
    detector_ = std::thread([this] { DetectFailures(); });
  }
}

CoordinationService::~CoordinationService() { Stop(); }

void CoordinationService::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (detector_.joinable()) detector_.join();
}

void CoordinationService::WakeWaiters() {
  // Releasing the lock re-evaluates the conditions of every waiter.
  absl::MutexLock l(&mu_);
}

absl::Status CoordinationService::Await(const std::function<bool()>& done,
                                        const WaitLimits& limits, absl::string_view what) {
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done() || stopping_ || (limits.cancelled && limits.cancelled());
  };
  if (!limits.cancelled) {
    mu_.AwaitWithDeadline(absl::Condition(&ready), limits.deadline);
  } else {
    // A cancellation nobody signals (a gRPC client that went away: the sync
    // server offers only IsCancelled()) is noticed within one slice, so a
    // cancelled call never holds a server thread until its deadline.
    constexpr absl::Duration kCancelCheck = absl::Milliseconds(100);
    while (!mu_.AwaitWithDeadline(absl::Condition(&ready),
                                  std::min(limits.deadline, absl::Now() + kCancelCheck)) &&
           absl::Now() < limits.deadline) {
    }
  }
  if (done()) return absl::OkStatus();
  if (stopping_) return absl::UnavailableError("coordination service is shutting down");
  if (limits.cancelled && limits.cancelled()) {
    return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  }
  return absl::DeadlineExceededError(absl::StrCat(what, ": deadline passed"));
}

void CoordinationService::DetectFailures() {
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

void CoordinationService::MarkGone(const TaskId& task, coordination::TaskState state,
                                   const std::string& reason) {
  TaskRecord& rec = tasks_[task];
  rec.state = state;
  rec.reason = reason;
  ++version_;
  for (auto& [id, b] : barriers_) CheckBarrier(id, &b);
}

absl::Status CoordinationService::GoneStatus(const TaskId& task) const {
  auto it = tasks_.find(task);
  if (it == tasks_.end() || !IsGone(it->second.state)) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("task ", task.ToString(), " is ",
                                             GoneWord(it->second.state), ": ",
                                             it->second.reason));
}

void CoordinationService::CheckBarrier(const std::string& id, BarrierState* b) {
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

void CoordinationService::FillState(coordination::ClusterState* out) const {
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

std::string CoordinationService::TaskList() const {
  return absl::StrJoin(tasks_, ", ", [](std::string* out, const auto& kv) {
    absl::StrAppend(out, kv.first.ToString());
  });
}

absl::Status CoordinationService::CheckMember(const TaskId& task, uint64_t incarnation) const {
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
    return absl::AbortedError(absl::StrCat("task ", task.ToString(), " was declared ",
                                           GoneWord(rec.state), " (", rec.reason,
                                           "); restart it to rejoin"));
  }
  return absl::OkStatus();
}

absl::StatusOr<coordination::RegisterTaskResponse> CoordinationService::RegisterTask(
    const TaskId& task, uint64_t incarnation, const std::string& address) {
  if (incarnation == 0) {
    return absl::InvalidArgumentError("RegisterTask: incarnation must not be 0");
  }
  absl::MutexLock l(&mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) {
    // The Estimator convention keeps the evaluator out of the cluster spec.
    if (task.type != kEvaluator || task.index != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task ", task.ToString(), " is not in the chief's cluster spec (tasks: ", TaskList(),
          "): every task must get the same cluster in TF_CONFIG"));
    }
    it = tasks_.emplace(task, TaskRecord{}).first;
  }
  TaskRecord& rec = it->second;
  if (rec.incarnation == incarnation) {
    if (IsGone(rec.state)) {
      return absl::AbortedError(
          absl::StrCat("task ", task.ToString(), " was declared gone: ", rec.reason));
    }
  } else {
    if (rec.incarnation != 0) {
      ++rec.restarts;
      spdlog::warn("task {} restarted: incarnation {:x} -> {:x} (was {}{}), restarts={}",
                   task.ToString(), rec.incarnation, incarnation, TaskStateName(rec.state),
                   rec.reason.empty() ? "" : ": " + rec.reason, rec.restarts);
    } else {
      spdlog::info("task {} registered from {} (incarnation {:x})", task.ToString(), address,
                   incarnation);
    }
    rec.incarnation = incarnation;
    rec.address = address;
    rec.reason.clear();
    ++version_;
  }
  rec.state = coordination::TASK_ALIVE;
  rec.last_heartbeat = absl::Now();
  coordination::RegisterTaskResponse resp;
  resp.set_leader_incarnation(options_.leader_incarnation);
  resp.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  resp.set_heartbeat_timeout_ms(options_.heartbeat_timeout == absl::InfiniteDuration()
                                    ? 0
                                    : absl::ToInt64Milliseconds(options_.heartbeat_timeout));
  return resp;
}

absl::StatusOr<coordination::HeartbeatResponse> CoordinationService::Heartbeat(
    const TaskId& task, uint64_t incarnation) {
  absl::MutexLock l(&mu_);
  if (absl::Status member = CheckMember(task, incarnation); !member.ok()) return member;
  tasks_[task].last_heartbeat = absl::Now();
  coordination::HeartbeatResponse resp;
  resp.set_leader_incarnation(options_.leader_incarnation);
  resp.set_shutdown_requested(shutdown_requested_);
  resp.set_job_failed(job_failed_);
  resp.set_shutdown_reason(shutdown_reason_);
  return resp;
}

absl::Status CoordinationService::Disconnect(const TaskId& task, uint64_t incarnation,
                                             const std::string& reason) {
  absl::MutexLock l(&mu_);
  if (absl::Status member = CheckMember(task, incarnation); !member.ok()) return member;
  spdlog::info("task {} disconnected: {}", task.ToString(), reason);
  MarkGone(task, coordination::TASK_DISCONNECTED, reason);
  return absl::OkStatus();
}

absl::Status CoordinationService::ReportTaskError(const TaskId& task, const std::string& reason) {
  absl::MutexLock l(&mu_);
  if (tasks_.find(task) == tasks_.end()) {
    return absl::NotFoundError(
        absl::StrCat("task ", task.ToString(), " is not a task of the cluster (", TaskList(), ")"));
  }
  spdlog::warn("task {} declared dead: {}", task.ToString(), reason);
  MarkGone(task, coordination::TASK_DEAD, reason);
  return absl::OkStatus();
}

absl::Status CoordinationService::Set(const std::string& key, const std::string& value) {
  if (absl::Status st = ValidateKey(key, "Set"); !st.ok()) return st;
  absl::MutexLock l(&mu_);
  kv_[key] = value;
  return absl::OkStatus();
}

absl::StatusOr<std::string> CoordinationService::Get(const std::string& key) const {
  absl::MutexLock l(&mu_);
  auto it = kv_.find(key);
  if (it == kv_.end()) return absl::NotFoundError(absl::StrCat("key '", key, "' is not set"));
  return it->second;
}

absl::StatusOr<int64_t> CoordinationService::Add(const std::string& key, int64_t delta) {
  if (absl::Status st = ValidateKey(key, "Add"); !st.ok()) return st;
  absl::MutexLock l(&mu_);
  std::string& value = kv_[key];
  int64_t current = 0;
  if (!value.empty() && !absl::SimpleAtoi(value, &current)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Add: key '", key, "' holds '", absl::CEscape(value.substr(0, 32)),
                     "', not an integer"));
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(current, delta, &sum)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Add: key '", key, "': ", current, " + ", delta, " overflows int64"));
  }
  value = absl::StrCat(sum);
  return sum;
}

absl::StatusOr<std::vector<std::string>> CoordinationService::WaitForKeys(
    const std::vector<std::string>& keys, const WaitLimits& limits) {
  if (keys.empty()) return absl::InvalidArgumentError("Wait: no keys");
  for (const std::string& key : keys) {
    if (absl::Status st = ValidateKey(key, "Wait"); !st.ok()) return st;
  }
  absl::MutexLock l(&mu_);
  auto all_set = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::all_of(keys.begin(), keys.end(),
                       [&](const std::string& k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                         return kv_.contains(k);
                       });
  };
  absl::Status st = Await(all_set, limits, "Wait");
  if (absl::IsDeadlineExceeded(st)) {
    std::vector<std::string> missing;
    for (const std::string& k : keys) {
      if (!kv_.contains(k)) missing.push_back(absl::StrCat("'", k, "'"));
    }
    st = absl::DeadlineExceededError(absl::StrCat(missing.size() == 1 ? "key " : "keys ",
                                                  absl::StrJoin(missing, ", "),
                                                  missing.size() == 1 ? " was" : " were",
                                                  " not set within the deadline"));
  }
  if (!st.ok()) return st;
  std::vector<std::string> values;
  values.reserve(keys.size());
  for (const std::string& k : keys) values.push_back(kv_.at(k));
  return values;
}

absl::Status CoordinationService::Barrier(const std::string& id, const TaskId& task,
                                          uint64_t incarnation, std::vector<TaskId> participants,
                                          absl::Time barrier_deadline,
                                          const WaitLimits& limits) {
  if (id.empty()) return absl::InvalidArgumentError("Barrier: empty barrier id");
  absl::MutexLock l(&mu_);
  if (absl::Status member = CheckMember(task, incarnation); !member.ok()) return member;
  std::sort(participants.begin(), participants.end());
  auto [it, created] = barriers_.try_emplace(id);
  BarrierState& b = it->second;
  if (created) {
    b.participants = participants.empty() ? options_.cluster_tasks : participants;
    std::sort(b.participants.begin(), b.participants.end());
    b.created = absl::Now();
    b.deadline = barrier_deadline;
  } else if (!participants.empty() && participants != b.participants) {
    return absl::InvalidArgumentError(
        absl::StrCat("barrier '", id, "': task ", task.ToString(),
                     " passed a different participant list than the first arrival"));
  }
  b.arrived.insert(task);
  CheckBarrier(id, &b);
  WaitLimits wait = limits;
  wait.deadline = std::min(limits.deadline, b.deadline);
  auto done = [&b] { return b.done; };
  absl::Status st = Await(done, wait, absl::StrCat("barrier '", id, "'"));
  if (!b.done && absl::Now() >= b.deadline) {
    std::vector<std::string> missing;
    for (const TaskId& t : b.participants) {
      if (!b.arrived.contains(t)) {
        missing.push_back(absl::StrCat(t.ToString(), tasks_[t].state == coordination::TASK_UNREGISTERED
                                                         ? " (never registered)"
                                                         : ""));
      }
    }
    b.done = true;
    b.result = absl::DeadlineExceededError(
        absl::StrCat("barrier '", id, "' timed out after ", Secs(b.deadline - b.created),
                     ": still waiting for ",
                     absl::StrJoin(missing, ", ")));
  }
  if (b.done) return b.result;
  return st;
}

absl::StatusOr<coordination::ClusterState> CoordinationService::WatchCluster(
    uint64_t known_version, const WaitLimits& limits) {
  absl::MutexLock l(&mu_);
  auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ > known_version; };
  absl::Status st = Await(changed, limits, "WatchCluster");
  if (!st.ok() && !absl::IsDeadlineExceeded(st)) return st;
  coordination::ClusterState state;
  FillState(&state);
  return state;
}

coordination::ClusterState CoordinationService::State() const {
  absl::MutexLock l(&mu_);
  coordination::ClusterState s;
  FillState(&s);
  return s;
}

void CoordinationService::RequestShutdown(const std::string& reason, bool job_failed) {
  absl::MutexLock l(&mu_);
  if (shutdown_requested_) return;
  shutdown_requested_ = true;
  shutdown_reason_ = reason;
  job_failed_ = job_failed;
  ++version_;
  spdlog::info("cluster shutdown requested{}: {}", job_failed ? " (job failed)" : "", reason);
}

std::vector<TaskId> CoordinationService::WaitUntilAllLeft(const TaskId& except,
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
