#include "common/ps/ps_client.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/ps/ps_data_plane.h"
#include "common/ps/ps_service.h"
#include "common/ps/ps_wire.h"
#include "common/status_macros.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "proto/ps.pb.h"

namespace estuary {

using ps_wire::FrameReader;
using ps_wire::FrameWriter;

struct PsClient::Ps {
  std::string name;
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  // The PS's data plane (ps_data_plane.h) as its last Initialize / Describe
  // answer named it; null: none (Push and Pull over gRPC).
  absl::Mutex data_mu;
  std::shared_ptr<PsDataConnection> data ABSL_GUARDED_BY(data_mu);
  bool data_logged ABSL_GUARDED_BY(data_mu) = false;
};

void PsClient::LearnDataPort(int ps, int port) {
  Ps& p = *ps_[ps];
  const bool secured = options_.channel.security != nullptr && options_.channel.security->any();
  absl::MutexLock l(&p.data_mu);
  if (!options_.data_plane || secured || port <= 0) {
    p.data.reset();
    return;
  }
  const std::string address = JoinHostPort(HostOf(p.address), port);
  if (p.data != nullptr && p.data->address() == address) return;
  p.data = std::make_shared<PsDataConnection>(address, p.name);
  p.data_logged = false;
}

struct PsClient::Layout {
  struct Route {
    int64_t rows = 0, cols = 0;
    bool row_sparse = false;
    int ps = -1;  // the PS holding it whole; -1: partitioned over every PS
  };
  uint64_t generation = 0;
  Placement placement;
  std::map<std::string, Route> routes;
};

namespace {

// Runs fn(i) for i in [0, n) at once (fn(0) on this thread); returns the
// first error by index.
absl::Status ParallelFor(int n, const std::function<absl::Status(int)>& fn) {
  std::vector<absl::Status> status(n);
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([&, i] { status[i] = fn(i); });
  if (n > 0) status[0] = fn(0);
  for (std::thread& t : threads) t.join();
  for (absl::Status& s : status) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Rows p, p + n, ... of m (partition p of n) as a float tensor.
Tensor PartitionRows(const RowMatrixXf& m, int p, int n) {
  const int64_t cols = m.cols();
  const int64_t local = m.rows() > p ? (m.rows() - p + n - 1) / n : 0;
  std::vector<float> values(local * cols);
  for (int64_t r = 0; r < local; ++r) {
    std::copy_n(m.data() + (r * n + p) * cols, cols, values.data() + r * cols);
  }
  return Tensor::Floats({local, cols}, std::move(values));
}

// The given rows of m as a float tensor.
Tensor GatherRows(const RowMatrixXf& m, const std::vector<int64_t>& rows) {
  const int64_t cols = m.cols();
  std::vector<float> values(rows.size() * cols);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(m.data() + rows[i] * cols, cols, values.data() + i * cols);
  }
  return Tensor::Floats({static_cast<int64_t>(rows.size()), cols}, std::move(values));
}

absl::Status CheckGlobalRows(const std::string& name, const std::vector<int64_t>& rows,
                             int64_t num_rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= num_rows || (i > 0 && rows[i] <= rows[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat("variable '", name, "': row ", rows[i],
                                                     " out of range [0, ", num_rows,
                                                     ") or rows not ascending"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PsClient>> PsClient::Create(std::vector<std::string> ps_addresses,
                                                           PsClientOptions options) {
  if (ps_addresses.empty()) return absl::InvalidArgumentError("PsClient: no ps addresses");
  if (!options.task_names.empty() && options.task_names.size() != ps_addresses.size()) {
    return absl::InvalidArgumentError(absl::StrCat("PsClient: ", options.task_names.size(),
                                                   " task names for ", ps_addresses.size(),
                                                   " addresses"));
  }
  std::vector<std::unique_ptr<Ps>> ps;
  for (size_t i = 0; i < ps_addresses.size(); ++i) {
    auto p = std::make_unique<Ps>();
    p->name = options.task_names.empty() ? absl::StrCat("ps:", i) : options.task_names[i];
    p->address = ps_addresses[i];
    p->channel = CreateChannel(p->address, options.channel);
    ps.push_back(std::move(p));
  }
  return std::unique_ptr<PsClient>(new PsClient(std::move(ps), std::move(options)));
}

PsClient::PsClient(std::vector<std::unique_ptr<Ps>> ps, PsClientOptions options)
    : options_(std::move(options)), ps_(std::move(ps)) {
  std::random_device rd;
  next_pause_id_ = (static_cast<uint64_t>(rd()) << 32) | 1;
}

PsClient::~PsClient() = default;

uint64_t PsClient::generation() const {
  absl::MutexLock l(&mu_);
  return layout_ ? layout_->generation : 0;
}

Placement PsClient::placement() const {
  absl::MutexLock l(&mu_);
  return layout_ ? layout_->placement : Placement{};
}

absl::StatusOr<std::shared_ptr<const PsClient::Layout>> PsClient::CurrentLayout() const {
  absl::MutexLock l(&mu_);
  if (!layout_) {
    return absl::FailedPreconditionError(
        "PsClient: the variables' placement is unknown (call Initialize or WaitInitialized first)");
  }
  return layout_;
}

absl::Status PsClient::Call(int ps, const char* what, const char* method,
                            const grpc::ByteBuffer& request, grpc::ByteBuffer* response,
                            absl::Time deadline, bool wait_for_ready) const {
  Ps& p = *ps_[ps];
  if (std::strcmp(method, ps_wire::kPush) == 0 || std::strcmp(method, ps_wire::kPull) == 0) {
    std::shared_ptr<PsDataConnection> data;
    {
      absl::MutexLock l(&p.data_mu);
      data = p.data;
    }
    if (data != nullptr) {
      if (options_.canceller != nullptr && options_.canceller->cancelled()) {
        return absl::CancelledError(absl::StrCat(what, " to ", p.name, ": cancelled (shutting down)"));
      }
      // A PS that is gone (or a data port nobody can reach) refuses the
      // connection: the call then takes gRPC, which answers for a dead PS
      // as always (Unavailable, or FailedPrecondition once it is back,
      // empty).
      absl::Status connected = data->EnsureConnected(deadline, options_.data_connect_timeout);
      {
        absl::MutexLock l(&p.data_mu);
        // Unreachable (a PS that died, or a port a network policy blocks):
        // gRPC until the PS names a port again (Initialize / Describe of a
        // recovery), not one connect timeout per call.
        if (!connected.ok() && p.data == data) p.data.reset();
        if (!p.data_logged) {
          p.data_logged = true;
          if (connected.ok()) {
            spdlog::info("push and pull to {} over its data plane at {}", p.name, data->address());
          } else {
            spdlog::warn("{}: {}; push and pull go over gRPC", p.name, connected.message());
          }
        }
      }
      if (connected.ok()) {
        return data->Call(
            std::strcmp(method, ps_wire::kPush) == 0 ? ps_data::kPush : ps_data::kPull, request,
            response, deadline, absl::StrCat(what, " to ", p.name, " at ", data->address()));
      }
    }
  }
  CallOptions o;
  o.deadline = deadline;
  o.wait_for_ready = wait_for_ready;
  o.what = absl::StrCat(what, " to ", p.name, " at ", p.address);
  o.canceller = options_.canceller;
  return rpc_internal::CallWithContext(o, [&](grpc::ClientContext* ctx) {
    return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        p.channel.get(), grpc::internal::RpcMethod(method, grpc::internal::RpcMethod::NORMAL_RPC),
        ctx, request, response);
  });
}

// Parses a response frame, naming the PS on error.
template <typename Header>
static absl::Status ParseResponse(const grpc::ByteBuffer& buffer, const std::string& what,
                                  Header* header, FrameReader* reader) {
  absl::Status s = reader->Parse(buffer, header);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  return s;
}

absl::Status PsClient::Initialize(uint64_t generation, const std::vector<PsVariableInit>& vars,
                                  int64_t global_step, absl::Time deadline) {
  const int n = num_ps();
  std::vector<VariableSpec> specs;
  std::set<std::string> names;
  for (const PsVariableInit& v : vars) {
    if (!names.insert(v.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("PsClient: variable '", v.name, "' twice"));
    }
    specs.push_back({v.name, v.value.rows(), v.value.cols(), v.row_sparse});
  }
  auto layout = std::make_shared<Layout>();
  layout->generation = generation;
  layout->placement = PlaceVariables(specs, n);
  for (const VariableSpec& s : specs) {
    Layout::Route& r = layout->routes[s.name];
    r.rows = s.rows;
    r.cols = s.cols;
    r.row_sparse = s.row_sparse;
    r.ps = layout->placement.row_partitioned.count(s.name) ? -1 : layout->placement.dense_ps.at(s.name);
  }
  const Placement& placement = layout->placement;
  absl::Status s = ParallelFor(n, [&](int p) -> absl::Status {
    ps::InitializeRequest req;
    req.set_generation(generation);
    req.set_ps_index(p);
    req.set_num_ps(n);
    if (p == 0) {
      req.set_has_global_step(true);
      req.set_global_step(global_step);
    }
    FrameWriter writer;
    for (const PsVariableInit& v : vars) {
      const bool partitioned = placement.row_partitioned.count(v.name) > 0;
      if (!partitioned && placement.dense_ps.at(v.name) != p) continue;
      ps::VariableMeta* m = req.add_variables();
      m->set_name(v.name);
      m->set_cols(v.value.cols());
      m->mutable_partition()->set_full_rows(v.value.rows());
      m->mutable_partition()->set_index(partitioned ? p : 0);
      m->mutable_partition()->set_count(partitioned ? n : 1);
      m->set_row_sparse(v.row_sparse);
      m->set_trainable(v.trainable);
      ToProto(v.optimizer, m->mutable_optimizer());
      m->set_updates(v.updates);
      auto add = [&](const RowMatrixXf& value) {
        return partitioned ? writer.AddTensor(PartitionRows(value, p, n)) : writer.AddMatrix(value);
      };
      RETURN_IF_ERROR(add(v.value));
      for (const auto& [slot, value] : v.slots) {
        if (value.rows() != v.value.rows() || value.cols() != v.value.cols()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "PsClient: slot '", slot, "' of '", v.name, "' has another shape than the variable"));
        }
        m->add_slots(slot);
        RETURN_IF_ERROR(add(value));
      }
    }
    grpc::ByteBuffer request = writer.Finish(&req), response;
    // A call sent on the connection to a PS that was killed just before
    // fails Unavailable ("Socket closed") even with wait-for-ready; it never
    // reached the PS's new incarnation: send it again (the next call waits
    // for that incarnation) until the deadline, as WaitInitialized asks again.
    while (true) {
      absl::Status called =
          Call(p, "Initialize", ps_wire::kInitialize, request, &response, deadline, true);
      if (called.ok()) break;
      if (!absl::IsUnavailable(called) || absl::Now() + absl::Milliseconds(100) >= deadline) {
        return called;
      }
    }
    ps::InitializeResponse resp;
    FrameReader reader;
    RETURN_IF_ERROR(
        ParseResponse(response, absl::StrCat("Initialize of ", ps_[p]->name), &resp, &reader));
    LearnDataPort(p, resp.data_port());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  absl::MutexLock l(&mu_);
  layout_ = std::move(layout);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> PsClient::WaitInitialized(uint64_t min_generation, absl::Time deadline) {
  const int n = num_ps();
  std::vector<ps::DescribeResponse> described(n);
  while (true) {
    absl::Status asked = ParallelFor(n, [&](int p) -> absl::Status {
      ps::DescribeRequest req;
      req.set_min_generation(min_generation);
      grpc::ByteBuffer request = FrameWriter().Build(req), response;
      RETURN_IF_ERROR(Call(p, "Describe", ps_wire::kDescribe, request, &response, deadline, true));
      FrameReader reader;
      return ParseResponse(response, absl::StrCat("Describe to ", ps_[p]->name), &described[p],
                           &reader);
    });
    // A PS that dies or restarts while we wait breaks the call in flight
    // ("Broken pipe", Unavailable): ask again (wait-for-ready: the next
    // call waits for its new incarnation) until the deadline.
    if (absl::IsUnavailable(asked) && absl::Now() + absl::Milliseconds(100) < deadline) continue;
    RETURN_IF_ERROR(asked);
    uint64_t lowest = ~uint64_t{0}, highest = 0;
    bool all = true;
    for (const ps::DescribeResponse& d : described) {
      all = all && d.initialized();
      lowest = std::min<uint64_t>(lowest, d.generation());
      highest = std::max<uint64_t>(highest, d.generation());
    }
    if (all && lowest == highest) break;
    // Some PS is not there yet, or the chief is reinitialising: ask again
    // for the newest generation seen (each Describe waits on the PS).
    min_generation = std::max(min_generation, highest);
    // (A PS answers "not yet" 100 ms before the deadline.)
    if (absl::Now() + absl::Milliseconds(100) >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "PsClient: the parameter servers were not initialised to one generation >= ",
          min_generation, " by the deadline"));
    }
  }
  // The layout, from what the PS tasks hold.
  auto layout = std::make_shared<Layout>();
  layout->placement.num_ps = n;
  layout->generation = described[0].generation();
  for (int p = 0; p < n; ++p) {
    const ps::DescribeResponse& d = described[p];
    LearnDataPort(p, d.data_port());
    if (d.generation() != layout->generation || d.ps_index() != p || d.num_ps() != n) {
      return absl::FailedPreconditionError(absl::StrCat(
          "PsClient: ", ps_[p]->name, " holds generation ", d.generation(), " as ps ",
          d.ps_index(), " of ", d.num_ps(), "; expected generation ", layout->generation,
          " as ps ", p, " of ", n, " (reinitialised meanwhile? call again)"));
    }
    for (const ps::VariableMeta& m : d.variables()) {
      Layout::Route& r = layout->routes[m.name()];
      r.rows = m.partition().full_rows();
      r.cols = m.cols();
      r.row_sparse = m.row_sparse();
      if (m.partition().count() <= 1) {
        r.ps = p;
        layout->placement.dense_ps[m.name()] = p;
      } else {
        r.ps = -1;
        layout->placement.row_partitioned.insert(m.name());
      }
    }
  }
  const uint64_t generation = layout->generation;
  absl::MutexLock l(&mu_);
  layout_ = std::move(layout);
  return generation;
}

// What a pull asks one PS for and where the answer goes.
struct PsClient::PullTarget {
  RowMatrixXf* dst = nullptr;
  bool whole = false;            // the answer is the whole variable
  int partition = 0;             // else: rows of partition `partition` of `count`
  int count = 1;
  std::vector<int64_t> global;   // the global rows answered (empty: every local row)
};

absl::Status PsClient::PlanPull(const Layout& layout, const std::vector<std::string>& dense,
                                const std::map<std::string, std::vector<int64_t>>& rows,
                                Variables* mirror, const std::vector<PullFields*>& fields,
                                std::vector<FrameWriter>* writers,
                                std::vector<std::vector<PullTarget>>* targets) const {
  const int n = num_ps();
  auto route = [&](const std::string& name) -> absl::StatusOr<const Layout::Route*> {
    auto it = layout.routes.find(name);
    if (it == layout.routes.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("PsClient: pull of '", name, "', which no parameter server holds"));
    }
    return &it->second;
  };
  auto mirror_of = [&](const std::string& name, const Layout::Route& r) {
    RowMatrixXf& m = mirror->floats[name];
    if (m.rows() != r.rows || m.cols() != r.cols) m = RowMatrixXf::Zero(r.rows, r.cols);
    return &m;
  };
  for (const std::string& name : dense) {
    ASSIGN_OR_RETURN(const Layout::Route* r, route(name));
    RowMatrixXf* dst = mirror_of(name, *r);
    for (int p = 0; p < n; ++p) {
      if (r->ps >= 0 && r->ps != p) continue;
      fields[p]->Add()->set_name(name);
      (*targets)[p].push_back({dst, r->ps >= 0, p, n, {}});
    }
  }
  for (const auto& [name, global] : rows) {
    ASSIGN_OR_RETURN(const Layout::Route* r, route(name));
    RETURN_IF_ERROR(CheckGlobalRows(name, global, r->rows));
    RowMatrixXf* dst = mirror_of(name, *r);
    std::vector<std::vector<int64_t>> local(n), ids(n);
    if (r->ps >= 0 || n == 1) {  // local rows = global rows
      const int p = r->ps >= 0 ? r->ps : 0;
      local[p] = global;
      ids[p] = global;
    } else {
      for (int64_t g : global) {
        const int p = static_cast<int>(g % n);
        local[p].push_back(g / n);
        ids[p].push_back(g);
      }
    }
    for (int p = 0; p < n; ++p) {
      if (ids[p].empty()) continue;
      ps::PullVariable* v = fields[p]->Add();
      v->set_name(name);
      v->set_rows(true);
      RETURN_IF_ERROR((*writers)[p].AddInts(std::move(local[p])));
      (*targets)[p].push_back({dst, false, p, n, std::move(ids[p])});
    }
  }
  return absl::OkStatus();
}

absl::Status PsClient::ReadPulled(const std::string& what, FrameReader* reader,
                                  const std::vector<PullTarget>& targets) {
  for (const PullTarget& t : targets) {
    absl::StatusOr<RowMatrixXf> m = reader->NextMatrix();
    if (!m.ok()) return absl::Status(m.status().code(), absl::StrCat(what, ": ", m.status().message()));
    const int64_t cols = t.dst->cols();
    if (m->cols() != cols) {
      return absl::DataLossError(absl::StrCat(what, ": ", m->cols(), " columns, expected ", cols));
    }
    if (t.whole) {
      if (m->rows() != t.dst->rows()) {
        return absl::DataLossError(absl::StrCat(what, ": ", m->rows(), " rows, expected ",
                                                t.dst->rows()));
      }
      *t.dst = *std::move(m);
    } else if (t.global.empty()) {  // every row of a partition
      for (int64_t r = 0; r < m->rows(); ++r) {
        const int64_t g = r * t.count + t.partition;
        if (g >= t.dst->rows()) return absl::DataLossError(absl::StrCat(what, ": too many rows"));
        std::copy_n(m->data() + r * cols, cols, t.dst->data() + g * cols);
      }
    } else {
      if (m->rows() != static_cast<int64_t>(t.global.size())) {
        return absl::DataLossError(absl::StrCat(what, ": ", m->rows(), " rows, expected ",
                                                t.global.size()));
      }
      float* dst = t.dst->data();
      if (cols == 1) {  // the linear part's weights: no memmove call per float
        for (size_t i = 0; i < t.global.size(); ++i) dst[t.global[i]] = m->data()[i];
      } else {
        for (size_t i = 0; i < t.global.size(); ++i) {
          std::copy_n(m->data() + i * cols, cols, dst + t.global[i] * cols);
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status PsClient::Pull(const std::vector<std::string>& dense,
                            const std::map<std::string, std::vector<int64_t>>& rows,
                            Variables* mirror, absl::Time deadline) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Layout> layout, CurrentLayout());
  const int n = num_ps();
  std::vector<ps::PullRequest> reqs(n);
  std::vector<FrameWriter> writers(n);
  std::vector<std::vector<PullTarget>> targets(n);
  std::vector<PullFields*> fields(n);
  for (int p = 0; p < n; ++p) fields[p] = reqs[p].mutable_variables();
  RETURN_IF_ERROR(PlanPull(*layout, dense, rows, mirror, fields, &writers, &targets));
  return ParallelFor(n, [&](int p) -> absl::Status {
    if (reqs[p].variables_size() == 0) return absl::OkStatus();
    reqs[p].set_generation(layout->generation);
    grpc::ByteBuffer request = writers[p].Finish(&reqs[p]), response;
    RETURN_IF_ERROR(Call(p, "Pull", ps_wire::kPull, request, &response, deadline, false));
    const std::string what = absl::StrCat("Pull from ", ps_[p]->name);
    ps::PullResponse resp;
    FrameReader reader;
    RETURN_IF_ERROR(ParseResponse(response, what, &resp, &reader));
    return ReadPulled(what, &reader, targets[p]);
  });
}

absl::StatusOr<int64_t> PsClient::Push(const Gradients& grads, absl::Time deadline) {
  return PushPull(grads, {}, {}, nullptr, deadline);
}

absl::StatusOr<int64_t> PsClient::PushPull(const Gradients& grads,
                                           const std::vector<std::string>& dense,
                                           const std::map<std::string, std::vector<int64_t>>& rows,
                                           Variables* mirror, absl::Time deadline) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Layout> layout, CurrentLayout());
  const int n = num_ps();
  std::vector<ps::PushRequest> reqs(n);
  std::vector<FrameWriter> writers(n);
  auto route = [&](const std::string& name, int64_t rows,
                   int64_t cols) -> absl::StatusOr<const Layout::Route*> {
    auto it = layout->routes.find(name);
    if (it == layout->routes.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PsClient: a gradient for '", name, "', which no parameter server holds"));
    }
    if ((rows >= 0 && rows != it->second.rows) || cols != it->second.cols) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PsClient: variable '", name, "' is [", it->second.rows, ", ", it->second.cols,
          "], the gradient [", rows, ", ", cols, "]"));
    }
    return &it->second;
  };
  auto add_whole = [&](const std::string& name, const RowMatrixXf& m,
                       ps::PushVariable::Kind kind) -> absl::Status {
    ASSIGN_OR_RETURN(const Layout::Route* r, route(name, m.rows(), m.cols()));
    for (int p = 0; p < n; ++p) {
      if (r->ps >= 0 && r->ps != p) continue;
      ps::PushVariable* v = reqs[p].add_variables();
      v->set_name(name);
      v->set_kind(kind);
      // The gradients outlive the synchronous calls below: no copy.
      RETURN_IF_ERROR(r->ps >= 0 ? writers[p].AddMatrixView(m)
                                 : writers[p].AddTensor(PartitionRows(m, p, n)));
    }
    return absl::OkStatus();
  };
  for (const auto& [name, m] : grads.assign) {
    RETURN_IF_ERROR(add_whole(name, m, ps::PushVariable::ASSIGN));
  }
  for (const auto& [name, m] : grads.dense) {
    RETURN_IF_ERROR(add_whole(name, m, ps::PushVariable::DENSE));
  }
  for (const auto& [name, g] : grads.sparse) {
    ASSIGN_OR_RETURN(const Layout::Route* r, route(name, -1, g.values.cols()));
    if (g.values.rows() != static_cast<int64_t>(g.rows.size())) {
      return absl::InvalidArgumentError(absl::StrCat("PsClient: sparse gradient of '", name,
                                                     "' has ", g.values.rows(), " value rows for ",
                                                     g.rows.size(), " rows"));
    }
    RETURN_IF_ERROR(CheckGlobalRows(name, g.rows, r->rows));
    for (int p = 0; p < n; ++p) {
      if (r->ps >= 0 && r->ps != p) continue;
      ps::PushVariable* v = reqs[p].add_variables();
      v->set_name(name);
      v->set_kind(ps::PushVariable::SPARSE);
      v->set_any_rows(!g.rows.empty());
      if (r->ps >= 0 || n == 1) {  // local rows = global rows: no copy
        RETURN_IF_ERROR(writers[p].AddInts(g.rows));
        RETURN_IF_ERROR(writers[p].AddMatrixView(g.values));
        continue;
      }
      std::vector<int64_t> local, index;
      for (size_t i = 0; i < g.rows.size(); ++i) {
        if (g.rows[i] % n != p) continue;
        local.push_back(g.rows[i] / n);
        index.push_back(static_cast<int64_t>(i));
      }
      RETURN_IF_ERROR(writers[p].AddInts(std::move(local)));
      RETURN_IF_ERROR(writers[p].AddTensor(GatherRows(g.values, index)));
    }
  }
  // The pull's rows follow the push's tensors in each request.
  std::vector<std::vector<PullTarget>> targets(n);
  if (!dense.empty() || !rows.empty()) {
    std::vector<PullFields*> fields(n);
    for (int p = 0; p < n; ++p) fields[p] = reqs[p].mutable_pull();
    RETURN_IF_ERROR(PlanPull(*layout, dense, rows, mirror, fields, &writers, &targets));
  }
  int64_t global_step = 0;
  RETURN_IF_ERROR(ParallelFor(n, [&](int p) -> absl::Status {
    if (p != 0 && reqs[p].variables_size() == 0 && reqs[p].pull_size() == 0) {
      return absl::OkStatus();
    }
    reqs[p].set_generation(layout->generation);
    reqs[p].set_advance_global_step(p == 0);
    grpc::ByteBuffer request = writers[p].Finish(&reqs[p]), response;
    RETURN_IF_ERROR(Call(p, "Push", ps_wire::kPush, request, &response, deadline, false));
    const std::string what = absl::StrCat("Push to ", ps_[p]->name);
    ps::PushResponse resp;
    FrameReader reader;
    RETURN_IF_ERROR(ParseResponse(response, what, &resp, &reader));
    if (p == 0) global_step = resp.global_step();
    return ReadPulled(what, &reader, targets[p]);
  }));
  return global_step;
}

absl::StatusOr<int64_t> PsClient::GlobalStep(absl::Time deadline) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Layout> layout, CurrentLayout());
  ps::GlobalStepRequest req;
  req.set_generation(layout->generation);
  grpc::ByteBuffer request = FrameWriter().Build(req), response;
  RETURN_IF_ERROR(Call(0, "GlobalStep", ps_wire::kGlobalStep, request, &response, deadline, false));
  ps::GlobalStepResponse resp;
  FrameReader reader;
  RETURN_IF_ERROR(ParseResponse(response, absl::StrCat("GlobalStep from ", ps_[0]->name), &resp, &reader));
  return resp.global_step();
}

absl::StatusOr<std::vector<ShardEntry>> PsClient::SaveShards(const std::string& model_dir,
                                                             absl::Time deadline,
                                                             int64_t* saved_step) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Layout> layout, CurrentLayout());
  const int n = num_ps();
  uint64_t pause_id;
  {
    absl::MutexLock l(&mu_);
    pause_id = next_pause_id_++;
  }
  const absl::Time expires = std::min(deadline, absl::Now() + options_.max_pause);
  int64_t step = 0;
  RETURN_IF_ERROR(ParallelFor(n, [&](int p) -> absl::Status {
    ps::PauseRequest req;
    req.set_generation(layout->generation);
    req.set_pause_id(pause_id);
    req.set_expires_unix_micros(absl::ToUnixMicros(expires));
    grpc::ByteBuffer request = FrameWriter().Build(req), response;
    RETURN_IF_ERROR(Call(p, "Pause", ps_wire::kPause, request, &response, deadline, false));
    if (p != 0) return absl::OkStatus();
    ps::PauseResponse resp;
    FrameReader reader;
    RETURN_IF_ERROR(ParseResponse(response, absl::StrCat("Pause of ", ps_[p]->name), &resp, &reader));
    step = resp.global_step();
    return absl::OkStatus();
  }));
  std::vector<ShardEntry> entries(n);
  RETURN_IF_ERROR(ParallelFor(n, [&](int p) -> absl::Status {
    ps::SaveRequest req;
    req.set_generation(layout->generation);
    req.set_pause_id(pause_id);
    req.set_model_dir(model_dir);
    req.set_step(step);
    req.set_num_shards(n);
    grpc::ByteBuffer request = FrameWriter().Build(req), response;
    RETURN_IF_ERROR(Call(p, "Save", ps_wire::kSave, request, &response, deadline, false));
    ps::SaveResponse resp;
    FrameReader reader;
    RETURN_IF_ERROR(ParseResponse(response, absl::StrCat("Save of ", ps_[p]->name), &resp, &reader));
    entries[p] = std::move(*resp.mutable_shard());
    return absl::OkStatus();
  }));
  if (saved_step != nullptr) *saved_step = step;
  return entries;
}

}  // namespace estuary
