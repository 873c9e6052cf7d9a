// What every task process does to be a member of the cluster: serve gRPC
// (with the standard grpc.health.v1 service) on its own address, register
// with the chief's coordination service, heartbeat, watch the cluster for
// peer restarts/deaths and for shutdown, and leave cleanly.
//
// Thread-safe. Owns the gRPC server and two threads (heartbeat, watcher),
// stopped by Leave() or the destructor.
#ifndef ESTUARY_COMMON_TASK_RUNTIME_H_
#define ESTUARY_COMMON_TASK_RUNTIME_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "common/coordination/coordination_client.h"
#include "common/job_spec.h"
#include "common/status/live_report.h"
#include "common/transport_security.h"
#include "grpcpp/grpcpp.h"
#include "proto/task.grpc.pb.h"

namespace estuary {

// Coordination keys the runtime itself uses.
inline constexpr char kStartBarrier[] = "estuary/start";
// The coordinator's log line once every task passed the start barrier
// (`estuary local` times start-up by it).
inline constexpr char kClusterReadyLog[] = "cluster ready:";

struct TaskRuntimeOptions {
  TfConfig tf_config;
  DistributionConfig timing;
  // Where to listen. Default: this task's cluster address (an IP literal
  // binds itself, a host name binds every interface); for an evaluator
  // outside the cluster, "0.0.0.0:0" (any free port).
  std::string listen_address;
  // Extra services on the same server (the chief adds coordination).
  std::vector<grpc::Service*> services;
  // Reported by the task service ("worker").
  std::string binary;
  // Fill the live report sent with every heartbeat (a PS's shard sizes);
  // called on the heartbeat thread.
  std::vector<LiveReport::Edit> report_sources;
  // TLS and the job token for the server and every channel of this task
  // (common/security.h LoadTaskSecurity); null: neither.
  SecurityPtr security;
};

class TaskRuntime {
 public:
  // Starts the gRPC server and prepares the client of the chief; does not
  // contact the chief yet. Errors: Unavailable (cannot bind),
  // InvalidArgument / NotFound (no coordinator in TF_CONFIG).
  static absl::StatusOr<std::unique_ptr<TaskRuntime>> Create(TaskRuntimeOptions options);
  // Registers with the chief, waiting up to `timing.startup_timeout` for it,
  // then starts heartbeating and watching. Until the chief listens, its
  // port is probed with plain TCP connects (every 1-5 ms for the first 2 s,
  // then every 50 ms), and the gRPC channel makes its first connection only
  // once the port is open (gRPC's reconnect backoff would otherwise delay a
  // task started before its chief by 100 ms or more). Errors: Unavailable
  // (the chief is unreachable), InvalidArgument / Aborted from the chief,
  // Cancelled if Stop() was called meanwhile.
  absl::Status Join();
  ~TaskRuntime();

  const TaskId& task() const { return task_; }
  // The address other tasks reach this one at.
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  uint64_t incarnation() const { return incarnation_; }
  // What this task reports with every heartbeat (the live view): training
  // hooks, the evaluator and the chief's checkpoint listener update it.
  LiveReport& report() { return report_; }
  // This task's TLS / token material (null: none), for its other channels
  // (PS client) and the ring's handshake.
  const SecurityPtr& security() const { return options_.security; }
  // Valid until Leave(). Also the task's Store.
  CoordinationClient& coordination() { return *client_; }

  // Waits at the start barrier (every task of the cluster spec), up to the
  // start-up timeout. Unavailable if a task dies; DeadlineExceeded naming
  // the tasks that never arrived.
  absl::Status StartBarrier();

  // Blocks until something ends this task's membership, up to `timeout`:
  //  OK                 the chief ended the job (requested cluster shutdown);
  //  Aborted            the chief ended the job as failed;
  //  Cancelled          Stop() was called (e.g. on SIGTERM);
  //  Unavailable        the chief stopped answering for heartbeat_timeout;
  //  Aborted            the chief declared this task dead, or restarted;
  //  DeadlineExceeded   `timeout` passed.
  absl::Status WaitForStop(absl::Duration timeout = absl::InfiniteDuration());
  // Ends WaitForStop with `why` (the first reason wins) and cancels
  // blocking coordination calls in flight (e.g. StartBarrier).
  void Stop(absl::Status why);
  // "joining", "running" (after the start barrier), "leaving".
  void SetPhase(const std::string& phase);
  // The reason once stopped (nullopt-like: Unknown while running).
  bool stopped() const;

  // Says goodbye to the chief (best effort, short deadline) unless the
  // chief is gone, stops the threads and shuts the server down. Idempotent.
  void Leave(const std::string& reason);

 private:
  TaskRuntime(TaskRuntimeOptions options, TaskId task);
  // Waits until the coordinator's port accepts TCP connections. Errors:
  // Unavailable at the deadline; Cancelled when Stop() is called.
  absl::Status WaitForCoordinatorPort(absl::Time deadline);
  void HeartbeatLoop();
  void WatchLoop();
  void LogChanges(const coordination::ClusterState& state);
  // Sets the stop reason; true if this call stopped the task.
  bool StopLocked(absl::Status why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  class StatusService;
  std::unique_ptr<StatusService> status_service_;

  const TaskRuntimeOptions options_;
  const TaskId task_;
  std::string coordinator_address_;
  std::string address_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CoordinationClient> client_;
  LiveReport report_;
  uint64_t incarnation_ = 0;
  uint64_t leader_incarnation_ = 0;
  absl::Duration heartbeat_interval_;
  absl::Duration heartbeat_timeout_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status stop_reason_ ABSL_GUARDED_BY(mu_);
  bool threads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool left_ ABSL_GUARDED_BY(mu_) = false;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  std::string phase_ ABSL_GUARDED_BY(mu_) = "joining";
  const absl::Time started_ = absl::Now();
  std::map<TaskId, coordination::TaskInfo> peers_ ABSL_GUARDED_BY(mu_);
  std::thread heartbeat_;
  std::thread watcher_;
};

// Exit code for the way a task's membership ended (see WaitForStop).
int ExitCodeFor(const absl::Status& stop_reason);

}  // namespace estuary

#endif  // ESTUARY_COMMON_TASK_RUNTIME_H_
