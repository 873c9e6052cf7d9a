// The gRPC handler of a parameter server: registers the raw methods of
// estuary.ps.ParameterServer (proto/ps.proto) on a synchronous
// grpc::Service and adapts each to PsShard (decode the PS frame, call,
// encode the answer). Add it to a task's server
// (TaskRuntimeOptions::services). Thread-safe (as PsShard); borrows the
// shard, which must outlive it.
#ifndef ESTUARY_COMMON_PS_PS_SERVICE_H_
#define ESTUARY_COMMON_PS_PS_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/optimizer.h"
#include "common/ps/ps_data_plane.h"
#include "common/ps/ps_shard.h"
#include "proto/ps.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/service_type.h"

namespace estuary {

// Cumulative time the Pull or Push handler spent in each phase since the
// service started: receive = parsing the request frame and decoding its
// tensors, apply = the shard's Pull (copying values out) / Push (the
// optimizer), send = encoding the answer. Thread CPU time
// (CLOCK_THREAD_CPUTIME_ID): waits for locks or pauses and preemption on
// a loaded machine are not counted; gRPC's own transport work (socket
// reads and writes, outside the handler) is not either. For benchmarks
// (bench/ps_train_bench.py reads the ps's exit log line).
struct PsPhaseTimes {
  int64_t calls = 0;
  int64_t receive_ns = 0;
  int64_t apply_ns = 0;
  int64_t send_ns = 0;
};

class PsGrpcService : public grpc::Service {
 public:
  // `metrics` (borrowed, may be null): the task's Prometheus metrics, fed
  // with (labels job, task and):
  //   estuary_ps_requests_total{method,code}     handled calls
  //   estuary_ps_request_seconds{method}         handler latency (wall)
  //   estuary_ps_apply_seconds                   the shard's Push (optimizer)
  //   estuary_ps_{pulled,pushed}_{bytes,rows}_total{variable}
  //                                              values sent / received
  //   estuary_ps_variable_{rows,bytes}{variable} this shard's part of each
  //                                              variable (values + slots),
  //                                              set at Initialize
  explicit PsGrpcService(PsShard* shard, TaskMetrics* metrics = nullptr);
  ~PsGrpcService() override;

  // Serves Push and Pull also on a data plane (ps_data_plane.h) listening
  // on `host`, and names its port in Initialize's and Describe's answers.
  // Only for a job without security (the data plane has neither TLS nor
  // the job token). Errors: Unavailable (cannot listen).
  absl::Status StartDataPlane(const std::string& host);
  // The data plane's port; 0 when it is not started.
  int data_port() const;

  PsPhaseTimes pull_times() const { return pull_times_.Get(); }
  PsPhaseTimes push_times() const { return push_times_.Get(); }
  // One line, e.g. "ps handler cpu: pull 812 calls: receive 3.1 ms, apply
  // 40.2 ms, send 12.0 ms; push 810 calls: ...".
  std::string TimingSummary() const;

 private:
  using Handler = grpc::Status (PsGrpcService::*)(grpc::ServerContext*, const grpc::ByteBuffer&,
                                                  grpc::ByteBuffer*);
  void AddRawMethod(const char* name, Handler handler);

  grpc::Status Initialize(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Describe(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Pull(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Push(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  // Push's work; a checkpoint pause is waited for until `deadline`.
  grpc::Status DoPush(const grpc::ByteBuffer& in, grpc::ByteBuffer* out, absl::Time deadline);
  // A data plane request (after its own accounting).
  grpc::Status ServeData(uint32_t method, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status GlobalStep(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Pause(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  grpc::Status Save(grpc::ServerContext* ctx, const grpc::ByteBuffer& in, grpc::ByteBuffer* out);
  // Feeds the pulled_{rows,bytes} metrics (no-op without metrics).
  void CountPulled(const std::vector<PsPullItem>& items, const std::vector<Tensor>& values);

  struct AtomicPhaseTimes {
    std::atomic<int64_t> calls{0}, receive_ns{0}, apply_ns{0}, send_ns{0};
    PsPhaseTimes Get() const { return {calls.load(), receive_ns.load(), apply_ns.load(), send_ns.load()}; }
  };

  class Metrics;

  PsShard* const shard_;
  std::unique_ptr<Metrics> metrics_;  // null without TaskMetrics
  std::unique_ptr<PsDataServer> data_;  // set once, before serving
  // The data plane's Push / Pull request metrics, looked up once (with
  // metrics only).
  struct DataMethods;
  std::unique_ptr<DataMethods> data_methods_;
  AtomicPhaseTimes pull_times_;
  AtomicPhaseTimes push_times_;
};

// Raises glibc malloc's mmap and trim thresholds (mallopt) so the buffers
// of large messages are reused instead of being mmapped and unmapped per
// message (DESIGN.md, performance notes; bench/RESULTS.md, "Parameter
// server"). For a process's main, before any threads start.
void TuneMallocForBulkTransfers();

// OptimizerConfig <-> its proto (shared with the client).
void ToProto(const OptimizerConfig& c, ps::OptimizerConfigProto* p);
OptimizerConfig FromProto(const ps::OptimizerConfigProto& p);

}  // namespace estuary

#endif  // ESTUARY_COMMON_PS_PS_SERVICE_H_
