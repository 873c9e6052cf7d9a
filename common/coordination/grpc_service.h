// The gRPC face of CoordinationService (proto/coordination.proto): each
// handler converts the request, calls the service and converts the reply;
// blocking calls wait until min(the request's timeout, the RPC deadline)
// and end early when the client cancels. Errors travel as gRPC status codes
// with the service's messages (see coordination_service.h).
//
// Thread-safe. Does not own the service, which must outlive it.
#ifndef ESTUARY_COMMON_COORDINATION_GRPC_SERVICE_H_
#define ESTUARY_COMMON_COORDINATION_GRPC_SERVICE_H_

#include "common/coordination/coordination_service.h"
#include "common/status/live_status.h"
#include "proto/coordination.grpc.pb.h"

namespace estuary {

class GrpcCoordinationService final : public coordination::CoordinationService::Service {
 public:
  // `live` (may be null; borrowed) records the reports heartbeats carry and
  // answers GetStatus; without it GetStatus is Unimplemented.
  explicit GrpcCoordinationService(CoordinationService* service, LiveStatus* live = nullptr)
      : service_(service), live_(live) {}

  grpc::Status RegisterTask(grpc::ServerContext* ctx, const coordination::RegisterTaskRequest* req,
                            coordination::RegisterTaskResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const coordination::HeartbeatRequest* req,
                         coordination::HeartbeatResponse* resp) override;
  grpc::Status KeyValueSet(grpc::ServerContext* ctx, const coordination::KeyValueSetRequest* req,
                           coordination::KeyValueSetResponse* resp) override;
  grpc::Status KeyValueGet(grpc::ServerContext* ctx, const coordination::KeyValueGetRequest* req,
                           coordination::KeyValueGetResponse* resp) override;
  grpc::Status KeyValueAdd(grpc::ServerContext* ctx, const coordination::KeyValueAddRequest* req,
                           coordination::KeyValueAddResponse* resp) override;
  grpc::Status WaitForKeys(grpc::ServerContext* ctx, const coordination::WaitForKeysRequest* req,
                           coordination::WaitForKeysResponse* resp) override;
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
  grpc::Status GetStatus(grpc::ServerContext* ctx, const coordination::GetStatusRequest* req,
                         coordination::ClusterStatus* resp) override;

 private:
  CoordinationService* const service_;
  LiveStatus* const live_;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_GRPC_SERVICE_H_
