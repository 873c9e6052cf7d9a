// The coordination service's logic: a plain class, no RPC in it. The
// coordinator of a cluster hosts it behind GrpcCoordinationService
// (grpc_service.h); InMemoryStore (in_memory_store.h) calls it directly.
//
// Tracks every task of the cluster spec (plus an evaluator that joins from
// outside it): registration with incarnation ids, heartbeats, a failure
// detector that declares a task DEAD after `heartbeat_timeout` without a
// heartbeat, a key-value store with blocking waits and counters, barriers,
// and the cluster-wide shutdown flag. Any wait involving a task that is or
// becomes DEAD or DISCONNECTED fails with Unavailable naming it; every wait
// has a deadline.
//
// Thread-safe. Starts one thread (the failure detector, unless
// heartbeat_timeout is infinite); Stop() (or the destructor) ends it and
// wakes every blocked call with Unavailable.
#ifndef ESTUARY_COMMON_COORDINATION_COORDINATION_SERVICE_H_
#define ESTUARY_COMMON_COORDINATION_COORDINATION_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "proto/coordination.pb.h"

namespace estuary {

struct CoordinationServiceOptions {
  // Tasks expected to register (the cluster spec's tasks).
  std::vector<TaskId> cluster_tasks;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // A registered task silent this long is declared DEAD. InfiniteDuration:
  // never (no failure detector thread).
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  // Returned to tasks so they can tell a restarted coordinator.
  uint64_t leader_incarnation = 1;
};

// How long one blocking call may wait, and how its caller gives up early.
struct WaitLimits {
  // The call returns DeadlineExceeded at this time.
  absl::Time deadline = absl::InfiniteFuture();
  // If set, the wait ends with Cancelled once it returns true (the RPC was
  // cancelled, the store shuts down). It is read under the service's lock:
  // it must be cheap and must not call the service. The wait re-checks it
  // at least every 100 ms; WakeWaiters() after it turns true makes the
  // wait notice at once.
  std::function<bool()> cancelled;
};

class CoordinationService {
 public:
  explicit CoordinationService(CoordinationServiceOptions options);
  ~CoordinationService();
  CoordinationService(const CoordinationService&) = delete;
  CoordinationService& operator=(const CoordinationService&) = delete;

  // Wakes every blocked call (they return Unavailable), makes later waits
  // fail the same way, and stops the failure detector. Idempotent.
  void Stop();
  // Makes blocked calls re-check WaitLimits::cancelled.
  void WakeWaiters();

  // ---- Membership.

  // Registers `task`; a new incarnation of a known task is a restart
  // (logged, `restarts` incremented). Registering again with the same
  // incarnation refreshes the heartbeat.
  // Errors: InvalidArgument (incarnation 0; a task outside the cluster spec
  // other than evaluator:0); Aborted (this incarnation was declared gone).
  absl::StatusOr<coordination::RegisterTaskResponse> RegisterTask(const TaskId& task,
                                                                  uint64_t incarnation,
                                                                  const std::string& address);
  // Records a heartbeat; the reply carries the leader incarnation and the
  // shutdown flag.
  // Errors: FailedPrecondition (not registered); Aborted (stale
  // incarnation, or the task was declared dead or disconnected).
  absl::StatusOr<coordination::HeartbeatResponse> Heartbeat(const TaskId& task,
                                                            uint64_t incarnation);
  // `task` leaves on purpose (DISCONNECTED); waits involving it fail.
  // Errors: as Heartbeat.
  absl::Status Disconnect(const TaskId& task, uint64_t incarnation, const std::string& reason);
  // Declares `task` DEAD for `reason` (a peer saw it fail, or a test kills
  // it); waits involving it fail with Unavailable.
  // Errors: NotFound (not a task of the cluster).
  absl::Status ReportTaskError(const TaskId& task, const std::string& reason);

  // ---- Key-value store.

  // Sets or replaces `key`. Errors: InvalidArgument (empty key).
  absl::Status Set(const std::string& key, const std::string& value);
  // Errors: NotFound.
  absl::StatusOr<std::string> Get(const std::string& key) const;
  // Adds `delta` to the decimal int64 counter `key` (unset: 0); returns the
  // new value. Errors: InvalidArgument (empty key, not an integer,
  // overflow).
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta);
  // Waits until every key is set; returns the values in the order of `keys`.
  // Errors: DeadlineExceeded naming the missing keys; Cancelled;
  // Unavailable (stopping); InvalidArgument (no keys, an empty key).
  absl::StatusOr<std::vector<std::string>> WaitForKeys(const std::vector<std::string>& keys,
                                                       const WaitLimits& limits);

  // ---- Barriers.

  // `task` (registered, with its current incarnation) arrives at barrier
  // `id` and waits for every participant (empty: every task of the cluster
  // spec). The first arrival creates the barrier with its participants and
  // `barrier_deadline`; once that passes, every waiter fails with
  // DeadlineExceeded naming the tasks that never arrived. `limits` bound
  // this one call (e.g. its RPC deadline). A passed barrier stays passed.
  // Errors: DeadlineExceeded; Unavailable (a participant is or becomes
  // DEAD or DISCONNECTED, or stopping); Cancelled; InvalidArgument (empty
  // id, a participant list different from the first arrival's);
  // FailedPrecondition / Aborted (as Heartbeat).
  absl::Status Barrier(const std::string& id, const TaskId& task, uint64_t incarnation,
                       std::vector<TaskId> participants, absl::Time barrier_deadline,
                       const WaitLimits& limits);

  // ---- Cluster state and shutdown.

  // Returns as soon as the state's version exceeds `known_version`, or at
  // the deadline with the current state.
  // Errors: Unavailable (stopping); Cancelled.
  absl::StatusOr<coordination::ClusterState> WatchCluster(uint64_t known_version,
                                                          const WaitLimits& limits);
  coordination::ClusterState State() const;
  // Sets the cluster-wide shutdown flag (the first reason wins).
  void RequestShutdown(const std::string& reason, bool job_failed);
  // Waits until every registered task other than `except` has disconnected
  // or is dead. Returns the tasks still alive at the deadline (empty: all
  // left).
  std::vector<TaskId> WaitUntilAllLeft(const TaskId& except, absl::Duration timeout);

 private:
  struct TaskRecord {
    coordination::TaskState state = coordination::TASK_UNREGISTERED;
    uint64_t incarnation = 0;
    std::string address;
    int restarts = 0;
    std::string reason;
    absl::Time last_heartbeat;
  };
  struct BarrierState {
    std::vector<TaskId> participants;
    absl::flat_hash_set<TaskId> arrived;
    absl::Time created;
    absl::Time deadline;
    bool done = false;
    absl::Status result;
  };

  void DetectFailures();
  // Marks `task` DEAD or DISCONNECTED and fails the waits that involve it.
  void MarkGone(const TaskId& task, coordination::TaskState state, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unavailable if `task` is DEAD or DISCONNECTED, else OK.
  absl::Status GoneStatus(const TaskId& task) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckBarrier(const std::string& id, BarrierState* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillState(coordination::ClusterState* out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Validates that `task` may talk to us with `incarnation`.
  absl::Status CheckMember(const TaskId& task, uint64_t incarnation) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits under mu_ until `done`, stopping_, cancellation or the deadline;
  // returns the status for the last three (OK when `done`).
  absl::Status Await(const std::function<bool()>& done, const WaitLimits& limits,
                     absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string TaskList() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CoordinationServiceOptions options_;
  mutable absl::Mutex mu_;
  std::map<TaskId, TaskRecord> tasks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> kv_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, BarrierState> barriers_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutdown_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::string shutdown_reason_ ABSL_GUARDED_BY(mu_);
  bool job_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread detector_;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_COORDINATION_SERVICE_H_
