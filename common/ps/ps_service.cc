#include "common/ps/ps_service.h"

#include <malloc.h>
#include <time.h>

#include <map>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/ps/ps_wire.h"
#include "common/rpc.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/method_handler.h"
#include "proto/ps.pb.h"

namespace estuary {
namespace {

using ps_wire::FrameReader;
using ps_wire::FrameWriter;

// Decodes a request frame; a corrupt one is InvalidArgument to the caller.
template <typename Header>
absl::Status ParseRequest(const grpc::ByteBuffer& in, Header* header, FrameReader* reader) {
  absl::Status s = reader->Parse(in, header);
  if (!s.ok()) return absl::InvalidArgumentError(s.message());
  return s;
}

int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Splits one handler call's thread CPU time into receive / apply / send.
template <typename Times>
class PhaseTimer {
 public:
  explicit PhaseTimer(Times* times) : times_(times), last_(ThreadCpuNanos()) {}
  ~PhaseTimer() {
    times_->send_ns += Lap();
    times_->calls += 1;
  }
  void EndReceive() { times_->receive_ns += Lap(); }
  void EndApply() { times_->apply_ns += Lap(); }

 private:
  int64_t Lap() {
    const int64_t now = ThreadCpuNanos();
    const int64_t d = now - last_;
    last_ = now;
    return d;
  }
  Times* const times_;
  int64_t last_;
};

std::string PhaseSummary(const PsPhaseTimes& t) {
  return absl::StrFormat("%d calls: receive %.1f ms, apply %.1f ms, send %.1f ms", t.calls,
                         t.receive_ns / 1e6, t.apply_ns / 1e6, t.send_ns / 1e6);
}

// A pull's items from its PullVariables and the rows tensors that follow
// in *reader.
absl::Status ReadPullItems(const google::protobuf::RepeatedPtrField<ps::PullVariable>& vars,
                           FrameReader* reader, std::vector<PsPullItem>* items) {
  items->resize(vars.size());
  for (int i = 0; i < vars.size(); ++i) {
    PsPullItem& item = (*items)[i];
    item.name = vars[i].name();
    item.by_rows = vars[i].rows();
    if (item.by_rows) {
      absl::StatusOr<std::vector<int64_t>> rows = reader->NextInts();
      if (!rows.ok()) return rows.status();
      item.rows = *std::move(rows);
    }
  }
  return absl::OkStatus();
}

PsPartition FromProto(const ps::RowPartitionProto& p) {
  return {p.full_rows(), p.index(), p.count() > 0 ? p.count() : 1};
}

}  // namespace

// The Prometheus side of the service (ps_service.h lists the metrics).
// Per-variable series are created on first use and cached.
class PsGrpcService::Metrics {
 public:
  struct Method {
    prometheus::Histogram* seconds;
    prometheus::Family<prometheus::Counter>* requests;
    prometheus::Labels labels;  // task labels + method
  };
  struct Variable {
    prometheus::Counter* pulled_bytes;
    prometheus::Counter* pulled_rows;
    prometheus::Counter* pushed_bytes;
    prometheus::Counter* pushed_rows;
    prometheus::Gauge* rows;
    prometheus::Gauge* bytes;
  };

  explicit Metrics(TaskMetrics* m)
      : m_(m),
        requests_(prometheus::BuildCounter()
                      .Name("estuary_ps_requests_total")
                      .Help("Calls the parameter server handled, by method and gRPC code.")
                      .Register(m->registry())),
        request_seconds_(prometheus::BuildHistogram()
                             .Name("estuary_ps_request_seconds")
                             .Help("Latency of the parameter server's handlers.")
                             .Register(m->registry())),
        apply_seconds_(prometheus::BuildHistogram()
                           .Name("estuary_ps_apply_seconds")
                           .Help("Time the shard took to apply a push (the optimizer).")
                           .Register(m->registry())
                           .Add(m->labels(), LatencyBuckets())),
        pulled_bytes_(Counters("estuary_ps_pulled_bytes_total",
                               "Bytes of variable values this PS sent to pulls.")),
        pulled_rows_(Counters("estuary_ps_pulled_rows_total",
                              "Rows of variable values this PS sent to pulls.")),
        pushed_bytes_(Counters("estuary_ps_pushed_bytes_total",
                               "Bytes of gradients and assignments this PS received.")),
        pushed_rows_(Counters("estuary_ps_pushed_rows_total",
                              "Rows of gradients and assignments this PS received.")),
        rows_(Gauges("estuary_ps_variable_rows", "Rows of each variable this PS holds.")),
        bytes_(Gauges("estuary_ps_variable_bytes",
                      "Bytes of each variable this PS holds, optimizer slots included.")) {}

  Method ForMethod(const std::string& name) {
    // "/estuary.ps.ParameterServer/Pull" -> "Pull".
    const std::string method = name.substr(name.rfind('/') + 1);
    return Method{&request_seconds_.Add(m_->LabelsWith({{"method", method}}), LatencyBuckets()),
                  &requests_, m_->LabelsWith({{"method", method}})};
  }

  void Count(const Method& method, const grpc::Status& status, absl::Duration took) {
    method.seconds->Observe(absl::ToDoubleSeconds(took));
    prometheus::Labels labels = method.labels;
    // gRPC's and absl's codes share their numbers: "OK", "UNAVAILABLE", ...
    labels["code"] = absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
    requests_.Add(labels).Increment();
  }

  prometheus::Histogram& apply_seconds() { return apply_seconds_; }

  Variable& ForVariable(const std::string& name) {
    absl::MutexLock lock(&mu_);
    auto it = variables_.find(name);
    if (it != variables_.end()) return it->second;
    const prometheus::Labels l = m_->LabelsWith({{"variable", name}});
    return variables_
        .emplace(name, Variable{&pulled_bytes_.Add(l), &pulled_rows_.Add(l), &pushed_bytes_.Add(l),
                                &pushed_rows_.Add(l), &rows_.Add(l), &bytes_.Add(l)})
        .first->second;
  }

 private:
  prometheus::Family<prometheus::Counter>& Counters(const std::string& name,
                                                    const std::string& help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(m_->registry());
  }
  prometheus::Family<prometheus::Gauge>& Gauges(const std::string& name, const std::string& help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(m_->registry());
  }

  TaskMetrics* const m_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_seconds_;
  prometheus::Histogram& apply_seconds_;
  prometheus::Family<prometheus::Counter>& pulled_bytes_;
  prometheus::Family<prometheus::Counter>& pulled_rows_;
  prometheus::Family<prometheus::Counter>& pushed_bytes_;
  prometheus::Family<prometheus::Counter>& pushed_rows_;
  prometheus::Family<prometheus::Gauge>& rows_;
  prometheus::Family<prometheus::Gauge>& bytes_;
  absl::Mutex mu_;
  // Node-based: references handed out stay valid.
  std::map<std::string, Variable> variables_ ABSL_GUARDED_BY(mu_);
};

void TuneMallocForBulkTransfers() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void ToProto(const OptimizerConfig& c, ps::OptimizerConfigProto* p) {
  p->set_type(c.type);
  p->set_learning_rate(c.learning_rate);
  p->set_momentum(c.momentum);
  p->set_use_nesterov(c.use_nesterov);
  p->set_initial_accumulator_value(c.initial_accumulator_value);
  p->set_beta1(c.beta1);
  p->set_beta2(c.beta2);
  p->set_epsilon(c.epsilon);
  p->set_learning_rate_power(c.learning_rate_power);
  p->set_l1_regularization_strength(c.l1_regularization_strength);
  p->set_l2_regularization_strength(c.l2_regularization_strength);
  p->set_l2_shrinkage_regularization_strength(c.l2_shrinkage_regularization_strength);
  p->set_rho(c.rho);
  p->set_centered(c.centered);
}

OptimizerConfig FromProto(const ps::OptimizerConfigProto& p) {
  OptimizerConfig c;
  c.type = p.type();
  c.learning_rate = p.learning_rate();
  c.momentum = p.momentum();
  c.use_nesterov = p.use_nesterov();
  c.initial_accumulator_value = p.initial_accumulator_value();
  c.beta1 = p.beta1();
  c.beta2 = p.beta2();
  c.epsilon = p.epsilon();
  c.learning_rate_power = p.learning_rate_power();
  c.l1_regularization_strength = p.l1_regularization_strength();
  c.l2_regularization_strength = p.l2_regularization_strength();
  c.l2_shrinkage_regularization_strength = p.l2_shrinkage_regularization_strength();
  c.rho = p.rho();
  c.centered = p.centered();
  return c;
}

struct PsGrpcService::DataMethods {
  Metrics::Method push, pull;
};

PsGrpcService::~PsGrpcService() {
  // The data plane's threads use everything below: stop them first.
  data_.reset();
}

PsGrpcService::PsGrpcService(PsShard* shard, TaskMetrics* metrics)
    : shard_(shard), metrics_(metrics != nullptr ? std::make_unique<Metrics>(metrics) : nullptr) {
  AddRawMethod(ps_wire::kInitialize, &PsGrpcService::Initialize);
  AddRawMethod(ps_wire::kDescribe, &PsGrpcService::Describe);
  AddRawMethod(ps_wire::kPull, &PsGrpcService::Pull);
  AddRawMethod(ps_wire::kPush, &PsGrpcService::Push);
  AddRawMethod(ps_wire::kGlobalStep, &PsGrpcService::GlobalStep);
  AddRawMethod(ps_wire::kPause, &PsGrpcService::Pause);
  AddRawMethod(ps_wire::kSave, &PsGrpcService::Save);
}

std::string PsGrpcService::TimingSummary() const {
  return absl::StrCat("ps handler cpu: pull ", PhaseSummary(pull_times()), "; push ",
                      PhaseSummary(push_times()));
}

void PsGrpcService::AddRawMethod(const char* name, Handler handler) {
  std::optional<Metrics::Method> method;
  if (metrics_ != nullptr) method = metrics_->ForMethod(name);
  AddMethod(new grpc::internal::RpcServiceMethod(
      name, grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<PsGrpcService, grpc::ByteBuffer, grpc::ByteBuffer>(
          [handler, method, name](PsGrpcService* service, grpc::ServerContext* ctx,
                            const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
            if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
            if (grpc::Status id = CheckCallerIsATask(ctx, name); !id.ok()) return id;
            if (!method.has_value()) return (service->*handler)(ctx, *in, out);
            const absl::Time start = absl::Now();
            grpc::Status status = (service->*handler)(ctx, *in, out);
            service->metrics_->Count(*method, status, absl::Now() - start);
            return status;
          },
          this)));
}

grpc::Status PsGrpcService::Initialize(grpc::ServerContext*, const grpc::ByteBuffer& in,
                                       grpc::ByteBuffer* out) {
  ps::InitializeRequest req;
  FrameReader reader;
  if (absl::Status s = ParseRequest(in, &req, &reader); !s.ok()) return ToGrpcStatus(s);
  std::vector<PsVariablePart> parts;
  parts.reserve(req.variables_size());
  for (const ps::VariableMeta& m : req.variables()) {
    PsVariablePart p;
    p.name = m.name();
    p.partition = FromProto(m.partition());
    p.row_sparse = m.row_sparse();
    p.trainable = m.trainable();
    p.optimizer = FromProto(m.optimizer());
    p.updates = m.updates();
    absl::StatusOr<RowMatrixXf> value = reader.NextMatrix();
    if (!value.ok()) return ToGrpcStatus(value.status());
    p.value = *std::move(value);
    for (const std::string& slot : m.slots()) {
      absl::StatusOr<RowMatrixXf> v = reader.NextMatrix();
      if (!v.ok()) return ToGrpcStatus(v.status());
      p.slots[slot] = *std::move(v);
    }
    parts.push_back(std::move(p));
  }
  if (metrics_ != nullptr) {
    for (const PsVariablePart& p : parts) {
      int64_t floats = p.value.size();
      for (const auto& [slot, v] : p.slots) floats += v.size();
      Metrics::Variable& v = metrics_->ForVariable(p.name);
      v.rows->Set(static_cast<double>(p.value.rows()));
      v.bytes->Set(static_cast<double>(floats * sizeof(float)));
    }
  }
  std::optional<int64_t> step;
  if (req.has_global_step()) step = req.global_step();
  absl::Status s =
      shard_->Initialize(req.generation(), req.ps_index(), req.num_ps(), std::move(parts), step);
  if (!s.ok()) return ToGrpcStatus(s);
  ps::InitializeResponse resp;
  resp.set_data_port(data_port());
  *out = FrameWriter().Build(resp);
  return grpc::Status::OK;
}

grpc::Status PsGrpcService::Describe(grpc::ServerContext* ctx, const grpc::ByteBuffer& in,
                                     grpc::ByteBuffer* out) {
  ps::DescribeRequest req;
  FrameReader reader;
  if (absl::Status s = ParseRequest(in, &req, &reader); !s.ok()) return ToGrpcStatus(s);
  // Answer a little before the caller's deadline so it gets the reason.
  absl::Time deadline = ServerDeadline(ctx);
  deadline = std::min(deadline - absl::Milliseconds(100), absl::Now() + absl::Seconds(30));
  absl::StatusOr<PsLayout> layout = shard_->Describe(req.min_generation(), deadline);
  ps::DescribeResponse resp;
  if (layout.ok()) {
    resp.set_initialized(true);
    resp.set_generation(layout->generation);
    resp.set_ps_index(layout->ps_index);
    resp.set_num_ps(layout->num_ps);
    resp.set_data_port(data_port());
    resp.set_has_global_step(layout->has_global_step);
    for (const PsVariableInfo& v : layout->variables) {
      ps::VariableMeta* m = resp.add_variables();
      m->set_name(v.name);
      m->set_cols(v.cols);
      m->set_row_sparse(v.row_sparse);
      m->mutable_partition()->set_full_rows(v.partition.full_rows);
      m->mutable_partition()->set_index(v.partition.index);
      m->mutable_partition()->set_count(v.partition.count);
    }
  } else if (!absl::IsDeadlineExceeded(layout.status())) {
    return ToGrpcStatus(layout.status());
  }
  *out = FrameWriter().Build(resp);
  return grpc::Status::OK;
}

void PsGrpcService::CountPulled(const std::vector<PsPullItem>& items,
                                const std::vector<Tensor>& values) {
  if (metrics_ == nullptr) return;
  for (size_t i = 0; i < items.size() && i < values.size(); ++i) {
    const Tensor& t = values[i];
    Metrics::Variable& v = metrics_->ForVariable(items[i].name);
    v.pulled_rows->Increment(static_cast<double>(t.batch_size()));
    v.pulled_bytes->Increment(static_cast<double>(t.num_elements() * sizeof(float)));
  }
}

grpc::Status PsGrpcService::Pull(grpc::ServerContext*, const grpc::ByteBuffer& in,
                                 grpc::ByteBuffer* out) {
  PhaseTimer timer(&pull_times_);
  ps::PullRequest req;
  FrameReader reader;
  if (absl::Status s = ParseRequest(in, &req, &reader); !s.ok()) return ToGrpcStatus(s);
  std::vector<PsPullItem> items;
  if (absl::Status s = ReadPullItems(req.variables(), &reader, &items); !s.ok()) {
    return ToGrpcStatus(s);
  }
  timer.EndReceive();
  absl::StatusOr<std::vector<Tensor>> values = shard_->Pull(req.generation(), items);
  if (!values.ok()) return ToGrpcStatus(values.status());
  timer.EndApply();
  CountPulled(items, *values);
  FrameWriter writer;
  for (Tensor& t : *values) {
    if (absl::Status s = writer.AddTensor(std::move(t)); !s.ok()) return ToGrpcStatus(s);
  }
  ps::PullResponse resp;
  *out = writer.Finish(&resp);
  return grpc::Status::OK;
}

absl::Status PsGrpcService::StartDataPlane(const std::string& host) {
  if (metrics_ != nullptr) {
    data_methods_ = std::make_unique<DataMethods>(
        DataMethods{metrics_->ForMethod(ps_wire::kPush), metrics_->ForMethod(ps_wire::kPull)});
  }
  absl::StatusOr<std::unique_ptr<PsDataServer>> server = PsDataServer::Start(
      host, [this](uint32_t method, const grpc::ByteBuffer& in, grpc::ByteBuffer* out) {
        return ServeData(method, in, out);
      });
  if (!server.ok()) return server.status();
  data_ = *std::move(server);
  return absl::OkStatus();
}

int PsGrpcService::data_port() const { return data_ != nullptr ? data_->port() : 0; }

grpc::Status PsGrpcService::ServeData(uint32_t method, const grpc::ByteBuffer& in,
                                      grpc::ByteBuffer* out) {
  const absl::Time start = absl::Now();
  const bool push = method == ps_data::kPush;
  grpc::Status status = push ? DoPush(in, out, start + absl::Seconds(60)) : Pull(nullptr, in, out);
  if (data_methods_ != nullptr) {
    metrics_->Count(push ? data_methods_->push : data_methods_->pull, status, absl::Now() - start);
  }
  return status;
}

grpc::Status PsGrpcService::Push(grpc::ServerContext* ctx, const grpc::ByteBuffer& in,
                                 grpc::ByteBuffer* out) {
  return DoPush(in, out, ServerDeadline(ctx));
}

grpc::Status PsGrpcService::DoPush(const grpc::ByteBuffer& in, grpc::ByteBuffer* out,
                                   absl::Time deadline) {
  PhaseTimer timer(&push_times_);
  ps::PushRequest req;
  FrameReader reader;
  if (absl::Status s = ParseRequest(in, &req, &reader); !s.ok()) return ToGrpcStatus(s);
  std::vector<PsPushItem> items(req.variables_size());
  for (int i = 0; i < req.variables_size(); ++i) {
    const ps::PushVariable& v = req.variables(i);
    PsPushItem& item = items[i];
    item.name = v.name();
    item.any_rows = v.any_rows();
    switch (v.kind()) {
      case ps::PushVariable::SPARSE: {
        item.kind = PsPushItem::kSparse;
        absl::StatusOr<std::vector<int64_t>> rows = reader.NextInts();
        if (!rows.ok()) return ToGrpcStatus(rows.status());
        item.rows = *std::move(rows);
        break;
      }
      case ps::PushVariable::ASSIGN: item.kind = PsPushItem::kAssign; break;
      default: item.kind = PsPushItem::kDense; break;
    }
    absl::StatusOr<RowMatrixXf> values = reader.NextMatrix();
    if (!values.ok()) return ToGrpcStatus(absl::InvalidArgumentError(values.status().message()));
    item.values = *std::move(values);
  }
  // The pull answered after the push (PsClient::PushPull).
  std::vector<PsPullItem> pull;
  if (absl::Status s = ReadPullItems(req.pull(), &reader, &pull); !s.ok()) return ToGrpcStatus(s);
  timer.EndReceive();
  if (metrics_ != nullptr) {
    for (const PsPushItem& item : items) {
      Metrics::Variable& v = metrics_->ForVariable(item.name);
      v.pushed_rows->Increment(static_cast<double>(item.values.rows()));
      v.pushed_bytes->Increment(static_cast<double>(item.values.size() * sizeof(float)));
    }
  }
  const absl::Time apply_start = absl::Now();
  absl::StatusOr<int64_t> step = shard_->Push(req.generation(), std::move(items),
                                              req.advance_global_step(), deadline);
  if (!step.ok()) return ToGrpcStatus(step.status());
  if (metrics_ != nullptr) {
    metrics_->apply_seconds().Observe(absl::ToDoubleSeconds(absl::Now() - apply_start));
  }
  FrameWriter writer;
  if (!pull.empty()) {
    absl::StatusOr<std::vector<Tensor>> values = shard_->Pull(req.generation(), pull);
    if (!values.ok()) return ToGrpcStatus(values.status());
    CountPulled(pull, *values);
    for (Tensor& t : *values) {
      if (absl::Status s = writer.AddTensor(std::move(t)); !s.ok()) return ToGrpcStatus(s);
    }
  }
  timer.EndApply();
  ps::PushResponse resp;
  resp.set_global_step(*step);
  *out = writer.Finish(&resp);
  return grpc::Status::OK;
}

grpc::Status PsGrpcService::GlobalStep(grpc::ServerContext*, const grpc::ByteBuffer& in,
                                       grpc::ByteBuffer* out) {
  ps::GlobalStepRequest req;
  FrameReader reader;
  if (absl::Status s = ParseRequest(in, &req, &reader); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<int64_t> step = shard_->GlobalStep(req.generation());
  if (!step.ok()) return ToGrpcStatus(step.status());
  ps::GlobalStepResponse resp;
  resp.set_global_step(*step);
  *out = FrameWriter().Build(resp);
  return grpc::Status::OK;
}

grpc::Status PsGrpcService::Pause(grpc::ServerContext*, const grpc::ByteBuffer& in,
                                  grpc::ByteBuffer* out) {
  ps::PauseRequest req;
  FrameReader reader;
  if (absl::Status s = ParseRequest(in, &req, &reader); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<int64_t> step = shard_->Pause(
      req.generation(), req.pause_id(), absl::FromUnixMicros(req.expires_unix_micros()));
  if (!step.ok()) return ToGrpcStatus(step.status());
  ps::PauseResponse resp;
  resp.set_global_step(*step);
  *out = FrameWriter().Build(resp);
  return grpc::Status::OK;
}

grpc::Status PsGrpcService::Save(grpc::ServerContext*, const grpc::ByteBuffer& in,
                                 grpc::ByteBuffer* out) {
  ps::SaveRequest req;
  FrameReader reader;
  if (absl::Status s = ParseRequest(in, &req, &reader); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<ShardEntry> entry = shard_->Save(req.generation(), req.pause_id(),
                                                  req.model_dir(), req.step(), req.num_shards());
  if (!entry.ok()) return ToGrpcStatus(entry.status());
  ps::SaveResponse resp;
  *resp.mutable_shard() = *std::move(entry);
  *out = FrameWriter().Build(resp);
  return grpc::Status::OK;
}

}  // namespace estuary
