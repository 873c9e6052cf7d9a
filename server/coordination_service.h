// The coordination service the chief hosts (proto/coordination.proto).
//
// Tracks every task of the cluster spec (plus an evaluator that joins from
// outside it): registration with incarnation ids, heartbeats, a failure
// detector that declares a task DEAD after `heartbeat_timeout` without a
// heartbeat, a key-value store with blocking waits, barriers, and the
// cluster-wide shutdown flag. Any wait involving a task that is or becomes
// DEAD or DISCONNECTED fails with UNAVAILABLE naming it; every wait has a
// deadline (its own timeout and the RPC's).
//
// Thread-safe. Starts one thread (the failure detector); Stop() (or the
// destructor) ends it and wakes every blocked RPC with UNAVAILABLE.
#ifndef ESTUARY_SERVER_COORDINATION_SERVICE_H_
#define ESTUARY_SERVER_COORDINATION_SERVICE_H_

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "proto/coordination.grpc.pb.h"

namespace estuary {

struct CoordinationServiceOptions {
  // Tasks expected to register (the cluster spec's tasks).
  std::vector<TaskId> cluster_tasks;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  // Returned to tasks so they can tell a restarted chief.
  uint64_t leader_incarnation = 1;
};

class CoordinationServiceImpl final : public coordination::CoordinationService::Service {
 public:
  explicit CoordinationServiceImpl(CoordinationServiceOptions options);
  ~CoordinationServiceImpl() override;

  // Wakes every blocked call (they return UNAVAILABLE) and stops the
  // failure detector. Idempotent.
  void Stop();

  // In-process view for the chief.
  coordination::ClusterState State() const;
  void RequestShutdownLocal(const std::string& reason, bool job_failed = false);
  // Waits until every registered task other than `except` has disconnected
  // or is dead. Returns the tasks still alive at the deadline (empty: all
  // left).
  std::vector<TaskId> WaitUntilAllLeft(const TaskId& except, absl::Duration timeout);

  grpc::Status RegisterTask(grpc::ServerContext* ctx, const coordination::RegisterTaskRequest* req,
                            coordination::RegisterTaskResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const coordination::HeartbeatRequest* req,
                         coordination::HeartbeatResponse* resp) override;
  grpc::Status KeyValueSet(grpc::ServerContext* ctx, const coordination::KeyValueSetRequest* req,
                           coordination::KeyValueSetResponse* resp) override;
  grpc::Status KeyValueGet(grpc::ServerContext* ctx, const coordination::KeyValueGetRequest* req,
                           coordination::KeyValueGetResponse* resp) override;
  grpc::Status WaitForKey(grpc::ServerContext* ctx, const coordination::WaitForKeyRequest* req,
                          coordination::WaitForKeyResponse* resp) override;
  grpc::Status Barrier(grpc::ServerContext* ctx, const coordination::BarrierRequest* req,
                       coordination::BarrierResponse* resp) override;
  grpc::Status WatchCluster(grpc::ServerContext* ctx, const coordination::WatchClusterRequest* req,
                            coordination::ClusterState* resp) override;
  grpc::Status GetClusterState(grpc::ServerContext* ctx,
                               const coordination::GetClusterStateRequest* req,
                               coordination::ClusterState* resp) override;
  grpc::Status RequestShutdown(grpc::ServerContext* ctx,
                               const coordination::RequestShutdownRequest* req,
                               coordination::RequestShutdownResponse* resp) override;
  grpc::Status Disconnect(grpc::ServerContext* ctx, const coordination::DisconnectRequest* req,
                          coordination::DisconnectResponse* resp) override;

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
    absl::Time deadline;
    bool done = false;
    absl::Status result;
  };

  void DetectFailures();
  // Marks `task` DEAD or DISCONNECTED and fails the waits that involve it.
  void MarkGone(const TaskId& task, coordination::TaskState state, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // UNAVAILABLE if `task` is DEAD or DISCONNECTED, else OK.
  absl::Status GoneStatus(const TaskId& task) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckBarrier(const std::string& id, BarrierState* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillState(coordination::ClusterState* out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Validates that `task` may talk to us with `incarnation`.
  absl::Status CheckMember(const coordination::TaskId& task, uint64_t incarnation) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time Deadline(const grpc::ServerContext* ctx, int64_t timeout_ms) const;

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

#endif  // ESTUARY_SERVER_COORDINATION_SERVICE_H_
