// The gRPC handler of a parameter server: registers the raw methods of
// estuary.ps.ParameterServer (proto/ps.proto) on a synchronous
// grpc::Service and adapts each to PsShard (decode the PS frame, call,
// encode the answer). Add it to a task's server
// (TaskRuntimeOptions::services). Thread-safe (as PsShard); borrows the
// shard, which must outlive it.
#ifndef ESTUARY_COMMON_PS_PS_SERVICE_H_
#define ESTUARY_COMMON_PS_PS_SERVICE_H_

#include "common/optimizer.h"
#include "common/ps/ps_shard.h"
#include "proto/ps.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/service_type.h"

namespace estuary {

class PsGrpcService : public grpc::Service {
 public:
  explicit PsGrpcService(PsShard* shard);

 private:
  using Handler = grpc::Status (PsGrpcService::*)(grpc::ServerContext*, const grpc::ByteBuffer&,
                                                  grpc::ByteBuffer*);
  void AddRawMethod(const char* name, Handler handler);

  grpc::Status Initialize(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Describe(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Pull(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Push(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status GlobalStep(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Pause(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Save(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);

  PsShard* const shard_;
};

// OptimizerConfig <-> its proto (shared with the client).
void ToProto(const OptimizerConfig& c, ps::OptimizerConfigProto* p);
OptimizerConfig FromProto(const ps::OptimizerConfigProto& p);

}  // namespace estuary

#endif  // ESTUARY_COMMON_PS_PS_SERVICE_H_
