#include "common/coordination/in_memory_store.h"

#include "absl/strings/str_cat.h"
#include "common/coordination/types.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

CoordinationServiceOptions InProcessOptions(std::vector<TaskId> tasks) {
  CoordinationServiceOptions o;
  o.cluster_tasks = std::move(tasks);
  o.heartbeat_timeout = absl::InfiniteDuration();
  return o;
}

}  // namespace

InMemoryCoordination::InMemoryCoordination(std::vector<TaskId> tasks)
    : service_(InProcessOptions(std::move(tasks))) {}

absl::StatusOr<std::unique_ptr<InMemoryStore>> InMemoryCoordination::Connect(
    const TaskId& task, InMemoryStoreOptions options) {
  const uint64_t incarnation = NewIncarnation();
  RETURN_IF_ERROR(service_.RegisterTask(task, incarnation, "in-process").status());
  return std::unique_ptr<InMemoryStore>(
      new InMemoryStore(&service_, task, incarnation, std::move(options)));
}

absl::Status InMemoryCoordination::DeclareDead(const TaskId& task, const std::string& reason) {
  return service_.ReportTaskError(task, reason);
}

InMemoryStore::InMemoryStore(CoordinationService* service, TaskId task, uint64_t incarnation,
                             InMemoryStoreOptions options)
    : service_(service),
      task_(std::move(task)),
      incarnation_(incarnation),
      options_(std::move(options)) {}

absl::Status InMemoryStore::BeforeCall(absl::string_view what, absl::Time deadline,
                                       bool blocking) {
  const int64_t n = calls_.fetch_add(1) + 1;
  if (options_.fail_after_calls >= 0 && n > options_.fail_after_calls) return options_.failure;
  if (blocking && cancelled_) {
    return absl::CancelledError(absl::StrCat(what, ": cancelled (shutting down)"));
  }
  if (absl::Now() >= deadline) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": the deadline passed before the call"));
  }
  return absl::OkStatus();
}

WaitLimits InMemoryStore::Limits(absl::Time deadline) const {
  WaitLimits limits;
  limits.deadline = deadline;
  limits.cancelled = [this] { return cancelled_.load(); };
  return limits;
}

void InMemoryStore::CancelBlockingCalls() {
  cancelled_ = true;
  service_->WakeWaiters();
}

absl::Status InMemoryStore::Set(const std::string& key, const std::string& value,
                                absl::Time deadline) {
  RETURN_IF_ERROR(BeforeCall("Set", deadline, /*blocking=*/false));
  return service_->Set(key, value);
}

absl::StatusOr<std::string> InMemoryStore::Get(const std::string& key, absl::Time deadline) {
  RETURN_IF_ERROR(BeforeCall("Get", deadline, /*blocking=*/false));
  return service_->Get(key);
}

absl::StatusOr<int64_t> InMemoryStore::Add(const std::string& key, int64_t delta,
                                           absl::Time deadline) {
  RETURN_IF_ERROR(BeforeCall("Add", deadline, /*blocking=*/false));
  return service_->Add(key, delta);
}

absl::StatusOr<std::vector<std::string>> InMemoryStore::Wait(const std::vector<std::string>& keys,
                                                             absl::Time deadline) {
  RETURN_IF_ERROR(BeforeCall("Wait", deadline, /*blocking=*/true));
  return service_->WaitForKeys(keys, Limits(deadline));
}

absl::Status InMemoryStore::Barrier(const std::string& id, const std::vector<TaskId>& participants,
                                    absl::Time deadline) {
  RETURN_IF_ERROR(BeforeCall(absl::StrCat("Barrier '", id, "'"), deadline, /*blocking=*/true));
  return service_->Barrier(id, task_, incarnation_, participants, deadline, Limits(deadline));
}

}  // namespace estuary
