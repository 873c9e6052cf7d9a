// An in-process Store for tests of what builds on it (collectives, the
// parameter server): the tasks of a cluster are threads sharing one
// InMemoryCoordination, each with its own InMemoryStore. Same semantics as
// the gRPC store (store_test.cc runs one suite over both), because both run
// the same CoordinationService logic; no heartbeats (nobody is declared
// dead for silence), but faults can be injected: a task declared dead, or a
// store whose calls fail after the first N.
//
// Thread-safe. InMemoryCoordination must outlive its stores.
#ifndef ESTUARY_COMMON_COORDINATION_IN_MEMORY_STORE_H_
#define ESTUARY_COMMON_COORDINATION_IN_MEMORY_STORE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/coordination/coordination_service.h"
#include "common/coordination/store.h"

namespace estuary {

struct InMemoryStoreOptions {
  // Fault injection: the first `fail_after_calls` calls behave normally and
  // every later one returns `failure` without touching the store.
  // Negative: never fail.
  int64_t fail_after_calls = -1;
  absl::Status failure = absl::UnavailableError("injected fault: the store is unreachable");
};

class InMemoryStore;

class InMemoryCoordination {
 public:
  // `tasks`: the cluster spec's tasks (the default barrier participants).
  explicit InMemoryCoordination(std::vector<TaskId> tasks);

  // Registers `task` (a new incarnation each time: connecting again is a
  // restart) and returns its store.
  // Errors: InvalidArgument (not a task of the cluster).
  absl::StatusOr<std::unique_ptr<InMemoryStore>> Connect(const TaskId& task,
                                                         InMemoryStoreOptions options = {});
  // Declares `task` dead: waits and barriers that involve it fail with
  // Unavailable naming it; its own barriers fail with Aborted.
  // Errors: NotFound (not a task of the cluster).
  absl::Status DeclareDead(const TaskId& task, const std::string& reason);
  // Wakes every blocked call with Unavailable (the coordinator went away).
  void Stop() { service_.Stop(); }

  // The shared logic, e.g. to inspect State().
  CoordinationService& service() { return service_; }

 private:
  CoordinationService service_;
};

class InMemoryStore final : public Store {
 public:
  const TaskId& task() const { return task_; }

  // Store (see store.h).
  absl::Status Set(const std::string& key, const std::string& value,
                   absl::Time deadline) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Time deadline) override;
  absl::StatusOr<std::vector<std::string>> Wait(const std::vector<std::string>& keys,
                                                absl::Time deadline) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta,
                              absl::Time deadline) override;
  absl::Status Barrier(const std::string& id, const std::vector<TaskId>& participants,
                       absl::Time deadline) override;
  void CancelBlockingCalls() override;

 private:
  friend class InMemoryCoordination;
  InMemoryStore(CoordinationService* service, TaskId task, uint64_t incarnation,
                InMemoryStoreOptions options);
  // The injected fault, DeadlineExceeded, or Cancelled (blocking calls
  // after CancelBlockingCalls) if the call must not run.
  absl::Status BeforeCall(absl::string_view what, absl::Time deadline, bool blocking);
  WaitLimits Limits(absl::Time deadline) const;

  CoordinationService* const service_;
  const TaskId task_;
  const uint64_t incarnation_;
  const InMemoryStoreOptions options_;
  std::atomic<int64_t> calls_{0};
  std::atomic<bool> cancelled_{false};
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_IN_MEMORY_STORE_H_
