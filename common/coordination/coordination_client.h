// gRPC client of the coordination service (proto/coordination.proto), bound
// to one task: the Store of a real cluster, plus the membership calls the
// task runtime makes (register, heartbeat, watch, disconnect, shutdown).
//
// Every call has a deadline. Blocking calls (Wait, Barrier, WatchCluster)
// pass their wait to the service, which answers DeadlineExceeded with a
// precise message; the RPC deadline is that wait plus a small margin so an
// unreachable coordinator still fails in bounded time. Errors carry the
// service's codes (see store.h and coordination_service.h) prefixed with the
// call and the coordinator ("Barrier to chief:0 at h:p: ..."); Unavailable
// also means the coordinator cannot be reached. Thread-safe.
#ifndef ESTUARY_COMMON_COORDINATION_COORDINATION_CLIENT_H_
#define ESTUARY_COMMON_COORDINATION_COORDINATION_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "common/coordination/store.h"
#include "common/rpc.h"
#include "grpcpp/grpcpp.h"
#include "proto/coordination.grpc.pb.h"

namespace estuary {

// Unavailable "cannot reach the chief <coordinator> within <waited> (is it
// running, and is the address right?)": how every task reports a
// coordinator it never reached.
absl::Status CoordinatorUnreachableError(const std::string& coordinator, absl::Duration waited);

class CoordinationClient final : public Store {
 public:
  // `coordinator` names the coordinator in messages ("chief:0 at host:port").
  CoordinationClient(std::shared_ptr<grpc::Channel> channel, TaskId self, uint64_t incarnation,
                     std::string coordinator);

  const TaskId& self() const { return self_; }
  uint64_t incarnation() const { return incarnation_; }
  const std::string& coordinator() const { return coordinator_; }

  // Store (see store.h for the contract).
  absl::Status Set(const std::string& key, const std::string& value,
                   absl::Time deadline) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Time deadline) override;
  absl::StatusOr<std::vector<std::string>> Wait(const std::vector<std::string>& keys,
                                                absl::Time deadline) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta,
                              absl::Time deadline) override;
  absl::Status Barrier(const std::string& id, const std::vector<TaskId>& participants,
                       absl::Time deadline) override;
  // Also ends a Register or WatchCluster in flight.
  void CancelBlockingCalls() override;

  // Registers, waiting until `deadline` for the coordinator to come up.
  // Errors: Unavailable (not reachable by the deadline); InvalidArgument /
  // Aborted from the service; Cancelled.
  absl::StatusOr<coordination::RegisterTaskResponse> Register(const std::string& own_address,
                                                              absl::Time deadline);
  // Errors: Aborted (stale incarnation, declared gone); FailedPrecondition
  // (not registered); Unavailable; DeadlineExceeded.
  // `report` (may be null) travels with it (the live view).
  absl::StatusOr<coordination::HeartbeatResponse> Heartbeat(
      absl::Time deadline, const coordination::TaskReport* report = nullptr);
  // Returns when the cluster state's version exceeds `known_version`, or
  // after `wait` with the current state. Errors: Unavailable; Cancelled.
  absl::StatusOr<coordination::ClusterState> WatchCluster(uint64_t known_version,
                                                          absl::Duration wait);
  absl::StatusOr<coordination::ClusterState> GetClusterState(absl::Time deadline);
  absl::Status RequestShutdown(const std::string& reason, bool job_failed, absl::Time deadline);
  // Errors: as Heartbeat.
  absl::Status Disconnect(const std::string& reason, absl::Time deadline);

 private:
  using Stub = coordination::CoordinationService::Stub;
  enum class Kind {
    kQuick,
    // Ends on CancelBlockingCalls().
    kBlocking,
    // Also queues while the coordinator is unreachable (not up yet).
    kBlockingUntilReachable,
  };

  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const char* name, const Request& request, Response* response,
                    absl::Time deadline, Kind kind) {
    CallOptions options;
    options.deadline = deadline;
    options.what = absl::StrCat(name, " to ", coordinator_);
    if (kind != Kind::kQuick) options.canceller = &blocking_;
    options.wait_for_ready = kind == Kind::kBlockingUntilReachable;
    return CallUnary(stub_.get(), method, request, response, options);
  }

  std::unique_ptr<Stub> stub_;
  const TaskId self_;
  const uint64_t incarnation_;
  const std::string coordinator_;
  CallCanceller blocking_;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_COORDINATION_CLIENT_H_
