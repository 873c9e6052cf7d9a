// Client of the chief's coordination service (proto/coordination.proto).
//
// Every call has a deadline. Blocking calls (WaitForKey, Barrier,
// WatchCluster) pass their timeout to the service, which answers
// DEADLINE_EXCEEDED with a precise message; the RPC deadline is that timeout
// plus a small margin so an unreachable chief still fails in bounded time.
// Errors: Unavailable (chief unreachable, a peer dead), DeadlineExceeded,
// Aborted (this incarnation is stale), InvalidArgument, NotFound,
// FailedPrecondition (not registered). Thread-safe.
#ifndef ESTUARY_COMMON_COORDINATION_CLIENT_H_
#define ESTUARY_COMMON_COORDINATION_CLIENT_H_

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "grpcpp/grpcpp.h"
#include "proto/coordination.grpc.pb.h"

namespace estuary {

coordination::TaskId ToProto(const TaskId& t);
TaskId FromProto(const coordination::TaskId& t);
// "ALIVE", "DEAD", ...
std::string TaskStateName(coordination::TaskState s);

class CoordinationClient {
 public:
  // `coordinator` names the chief in messages ("chief:0 at host:port").
  CoordinationClient(std::shared_ptr<grpc::Channel> channel, TaskId self,
                     uint64_t incarnation, std::string coordinator);

  const TaskId& self() const { return self_; }
  uint64_t incarnation() const { return incarnation_; }
  const std::string& coordinator() const { return coordinator_; }

  // Registers, waiting up to `timeout` for the chief to come up.
  absl::StatusOr<coordination::RegisterTaskResponse> Register(
      const std::string& own_address, absl::Duration timeout);
  absl::StatusOr<coordination::HeartbeatResponse> Heartbeat(absl::Duration timeout);

  absl::Status Set(const std::string& key, const std::string& value,
                   bool allow_overwrite = false, absl::Duration timeout = absl::Seconds(10));
  // NotFound if the key is not set.
  absl::StatusOr<std::string> Get(const std::string& key,
                                  absl::Duration timeout = absl::Seconds(10));
  // Waits until `key` is set (also waiting for the chief to come up).
  // Unavailable if `producer` dies first.
  absl::StatusOr<std::string> WaitForKey(const std::string& key, absl::Duration timeout,
                                         std::optional<TaskId> producer = std::nullopt);
  // Waits until every participant (default: every task of the cluster spec)
  // arrived. Unavailable if one dies or leaves; DeadlineExceeded naming the
  // missing tasks.
  absl::Status Barrier(const std::string& id, absl::Duration timeout,
                       const std::vector<TaskId>& participants = {});
  // Returns when the cluster state's version exceeds `known_version`, or at
  // the timeout with the current state.
  absl::StatusOr<coordination::ClusterState> WatchCluster(uint64_t known_version,
                                                          absl::Duration timeout);
  absl::StatusOr<coordination::ClusterState> GetClusterState(
      absl::Duration timeout = absl::Seconds(10));
  absl::Status RequestShutdown(const std::string& reason, bool job_failed = false,
                               absl::Duration timeout = absl::Seconds(10));
  absl::Status Disconnect(const std::string& reason, absl::Duration timeout = absl::Seconds(5));

  // Cancels the blocking calls in flight (they return Cancelled) and makes
  // later blocking calls fail with Cancelled at once. For shutdown.
  void CancelBlockingCalls();

 private:
  // Tracks a blocking call's context so CancelBlockingCalls can reach it.
  class ActiveCall;
  std::string What(absl::string_view rpc) const;

  absl::Mutex mu_;
  std::set<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;

  std::unique_ptr<coordination::CoordinationService::Stub> stub_;
  const TaskId self_;
  const uint64_t incarnation_;
  const std::string coordinator_;
};

// A random 64-bit incarnation id for a new process (never 0).
uint64_t NewIncarnation();

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_CLIENT_H_
