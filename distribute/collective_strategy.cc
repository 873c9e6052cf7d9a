#include "distribute/collective_strategy.h"

#include <algorithm>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

// The header elements fused at the front of the first bucket.
constexpr int kHasData = 0;   // replicas with data this step
constexpr int kLossSum = 1;   // sum over replicas of batch_size * loss
constexpr int kExamples = 2;  // sum of batch sizes
constexpr int64_t kHeaderSize = 3;

// Rows of one sparse gradient: `n` ids (ascending, distinct) and their
// rows [n, cols] scaled by `scale` when merged.
struct RowsPart {
  const int64_t* ids = nullptr;
  int64_t n = 0;
  const float* values = nullptr;
  float scale = 1;
};

// Sums `parts` row by row: ids ascending, rows with equal ids summed in the
// order of `parts` (so every worker that merges the same parts gets
// bit-identical rows).
SparseGradient MergeRows(const std::vector<RowsPart>& parts, int64_t cols) {
  struct Ref {
    int64_t id;
    int part;
    int64_t row;
  };
  std::vector<Ref> refs;
  size_t total = 0;
  for (const RowsPart& p : parts) total += static_cast<size_t>(p.n);
  refs.reserve(total);
  for (int p = 0; p < static_cast<int>(parts.size()); ++p) {
    for (int64_t i = 0; i < parts[p].n; ++i) refs.push_back({parts[p].ids[i], p, i});
  }
  std::stable_sort(refs.begin(), refs.end(),
                   [](const Ref& a, const Ref& b) { return a.id < b.id; });
  SparseGradient out;
  int64_t distinct = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (i == 0 || refs[i].id != refs[i - 1].id) ++distinct;
  }
  out.rows.reserve(distinct);
  out.values = RowMatrixXf::Zero(distinct, cols);
  int64_t r = -1;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (i == 0 || refs[i].id != refs[i - 1].id) {
      ++r;
      out.rows.push_back(refs[i].id);
    }
    const RowsPart& p = parts[refs[i].part];
    const float* src = p.values + refs[i].row * cols;
    float* dst = out.values.data() + r * cols;
    for (int64_t c = 0; c < cols; ++c) dst[c] += p.scale * src[c];
  }
  return out;
}

// dst[0, n) += weight * src[0, n): the one expression both ways of summing
// the local replicas use (with and without overlap), so that they round
// alike.
void AddWeighted(float* dst, const float* src, int64_t n, float weight) {
  Eigen::Map<Eigen::VectorXf>(dst, n) += weight * Eigen::Map<const Eigen::VectorXf>(src, n);
}

template <typename T>
void Append(std::string* out, const T* data, size_t n) {
  out->append(reinterpret_cast<const char*>(data), n * sizeof(T));
}

// Reads n T's at *pos of `in`; false when `in` is too short.
template <typename T>
bool Read(const std::string& in, size_t* pos, size_t n, const T** out) {
  if (n > (in.size() - *pos) / sizeof(T)) return false;
  *out = reinterpret_cast<const T*>(in.data() + *pos);
  *pos += n * sizeof(T);
  return true;
}

// collective_strategy.h's strategy: a OneDeviceStrategy holds this
// worker's copy (variables, slots, global_step) and applies the reduced
// step; this class reduces the local replicas and, with a communicator,
// the workers.
class CollectiveStrategy : public Strategy, private GradientObserver {
 public:
  CollectiveStrategy(const Model* model,
                     const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
                     CollectiveStrategyOptions options)
      : model_(model),
        options_(std::move(options)),
        is_chief_(options_.communicator == nullptr || options_.communicator->rank() == 0),
        local_(model, optimizers, LocalOptions(options_, is_chief_)) {
    if (options_.metrics != nullptr && options_.communicator != nullptr) {
      TaskMetrics* m = options_.metrics;
      auto& seconds = prometheus::BuildHistogram()
                          .Name("estuary_allreduce_seconds")
                          .Help("Latency of each collective of a training step between workers.")
                          .Register(m->registry());
      auto& bytes = prometheus::BuildCounter()
                        .Name("estuary_allreduce_bytes_total")
                        .Help("Bytes this worker contributed to the training steps' collectives.")
                        .Register(m->registry());
      allreduce_seconds_ = &seconds.Add(m->LabelsWith({{"op", "allreduce"}}), LatencyBuckets());
      allgather_seconds_ = &seconds.Add(m->LabelsWith({{"op", "allgather"}}), LatencyBuckets());
      allreduce_bytes_ = &bytes.Add(m->LabelsWith({{"op", "allreduce"}}));
      allgather_bytes_ = &bytes.Add(m->LabelsWith({{"op", "allgather"}}));
    }
  }

  ~CollectiveStrategy() override {
    if (!comm_thread_.joinable()) return;
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    comm_thread_.join();
  }

  int num_local_replicas() const override { return options_.local_replicas; }
  GradientObserver* ObserveStep() override;

  absl::Status Restore() override;
  int64_t global_step() const override { return local_.global_step(); }
  absl::StatusOr<const Variables*> VariablesForStep(const FeatureMap& features) override {
    return local_.VariablesForStep(features);
  }
  absl::StatusOr<double> ApplyGradients(std::vector<ReplicaGradients>* replicas) override;
  // The all-reduces and the sparse all-gather of ApplyGradients.
  absl::Duration TakeCommunicationTime() override {
    return std::exchange(communication_, absl::ZeroDuration());
  }
  absl::Status EndOfInput() override;
  absl::StatusOr<std::string> SaveCheckpoint() override {
    if (!is_chief_) return absl::FailedPreconditionError("only the chief saves checkpoints");
    return local_.SaveCheckpoint();
  }
  const Variables& variables() const override { return local_.variables(); }

 private:
  // One dense variable's place in the flat buffer.
  struct Slot {
    std::string name;
    int64_t offset = 0;  // into buffer_
    int64_t rows = 0, cols = 0;
  };
  struct SparseVar {
    std::string name;
    int64_t cols = 0;
  };

  static OneDeviceStrategyOptions LocalOptions(const CollectiveStrategyOptions& options,
                                               bool is_chief) {
    OneDeviceStrategyOptions local = options.local;
    // Only the chief reads model_dir; the others get its state by broadcast.
    if (!is_chief) local.restore_from_checkpoint = false;
    return local;
  }

  int world() const {
    return options_.communicator == nullptr ? 1 : options_.communicator->size();
  }
  absl::Time Deadline() const { return absl::Now() + options_.collective_timeout; }
  // The dense layout and the buckets, from the model's variables.
  void BuildLayout();
  // The chief's variables, slots and global_step to every worker.
  absl::Status BroadcastState();
  // All-reduces bucket `b` of buffer_ (no-op in one process).
  absl::Status ReduceBucket(size_t b);
  // Overlap (options_.overlap_backward): GradientObserver, called by the
  // replicas' threads during the step.
  void Loss(int replica, double loss, int64_t batch_size) override;
  void Final(int replica, const std::string& variable, const RowMatrixXf& grad) override;
  void Done(int replica, const Gradients& grads) override;
  // Marks replica r's gradient of slot s final (data: its gradient, or null
  // for none). Requires mu_.
  void MarkFinal(int r, size_t s, const RowMatrixXf* grad) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The communication thread: reduces the observed step's buckets in
  // order, each once every replica finished it.
  void CommLoop();
  // Bucket b's part of buffer_: the replicas' gradients weighted by batch
  // size and summed in replica order (bucket 0: and the header), exactly as
  // ApplyGradients does without overlap.
  absl::Status FillBucket(size_t b);
  // The sparse rows of every replica of every worker, merged by id and
  // scaled by `scale`.
  absl::StatusOr<std::map<std::string, SparseGradient>> ReduceSparse(
      std::vector<ReplicaGradients>* replicas, float scale);

  const Model* const model_;
  const CollectiveStrategyOptions options_;
  const bool is_chief_;
  OneDeviceStrategy local_;
  std::vector<Slot> dense_;                 // in buffer order
  std::map<std::string, size_t> slot_of_;   // name -> index into dense_
  std::vector<SparseVar> sparse_;           // by name
  std::map<std::string, size_t> sparse_of_;  // name -> index into sparse_
  std::vector<float> buffer_;               // header + dense slots
  std::vector<int64_t> bucket_ends_;        // buffer_ offsets; bucket b ends at [b]
  std::vector<size_t> bucket_of_slot_;      // by index into dense_

  // Overlap state (options_.overlap_backward with a communicator). The
  // step's replicas write it through the observer; the comm thread reads
  // it and writes buffer_ (one bucket at a time, while the step is
  // observed; the training thread touches buffer_ only after the comm
  // thread finished the step).
  struct FinalGrad {
    bool final = false;
    const float* data = nullptr;  // null: this replica has no gradient for the slot
    int64_t rows = 0, cols = 0;
  };
  absl::Mutex mu_;
  std::thread comm_thread_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool observing_ ABSL_GUARDED_BY(mu_) = false;  // a step is observed
  std::vector<std::vector<FinalGrad>> finals_ ABSL_GUARDED_BY(mu_);  // [replica][slot]
  std::vector<double> losses_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> batch_sizes_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> loss_known_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> pending_ ABSL_GUARDED_BY(mu_);  // per bucket: finals still missing
  size_t next_bucket_ ABSL_GUARDED_BY(mu_) = 0;    // the comm thread's next bucket
  bool comm_done_ ABSL_GUARDED_BY(mu_) = false;    // the step's buckets are reduced (or failed)
  bool comm_busy_ ABSL_GUARDED_BY(mu_) = false;    // the comm thread is filling / reducing
  absl::Status comm_status_ ABSL_GUARDED_BY(mu_);
  absl::Duration communication_;            // since the last TakeCommunicationTime
  // options_.metrics' collective metrics; null without them.
  prometheus::Histogram* allreduce_seconds_ = nullptr;
  prometheus::Histogram* allgather_seconds_ = nullptr;
  prometheus::Counter* allreduce_bytes_ = nullptr;
  prometheus::Counter* allgather_bytes_ = nullptr;
};

void CollectiveStrategy::BuildLayout() {
  dense_.clear();
  slot_of_.clear();
  sparse_.clear();
  sparse_of_.clear();
  bucket_ends_.clear();
  std::set<std::string> row_sparse;
  for (std::string& name : model_->RowSparseVariables()) row_sparse.insert(std::move(name));
  const Variables& vars = local_.variables();
  // Reverse name order: for premade models the logits first and the input
  // layer last, i.e. reverse layer order, the order Backward finishes them.
  const int64_t max_floats = std::max<int64_t>(
      static_cast<int64_t>(options_.bucket_bytes / sizeof(float)), kHeaderSize + 1);
  int64_t offset = kHeaderSize;  // bucket 0 starts with the header
  int64_t bucket_start = 0;
  int in_bucket = 0;  // variables in the open bucket
  for (auto it = vars.floats.rbegin(); it != vars.floats.rend(); ++it) {
    const std::string& name = it->first;
    const RowMatrixXf& v = it->second;
    if (row_sparse.count(name) > 0) continue;
    // A variable that does not fit closes the open bucket (one larger than
    // a bucket travels alone).
    if (in_bucket > 0 && offset - bucket_start + v.size() > max_floats) {
      bucket_ends_.push_back(offset);
      bucket_start = offset;
      in_bucket = 0;
    }
    slot_of_[name] = dense_.size();
    dense_.push_back(Slot{name, offset, v.rows(), v.cols()});
    offset += v.size();
    ++in_bucket;
  }
  bucket_ends_.push_back(offset);
  buffer_.assign(static_cast<size_t>(offset), 0.0f);
  bucket_of_slot_.clear();
  for (const Slot& slot : dense_) {
    const size_t b = static_cast<size_t>(
        std::upper_bound(bucket_ends_.begin(), bucket_ends_.end(), slot.offset) -
        bucket_ends_.begin());
    bucket_of_slot_.push_back(std::min(b, bucket_ends_.size() - 1));
  }
  for (const std::string& name : row_sparse) {
    auto it = vars.floats.find(name);
    if (it == vars.floats.end()) continue;
    sparse_of_[name] = sparse_.size();
    sparse_.push_back(SparseVar{name, it->second.cols()});
  }
}

absl::Status CollectiveStrategy::BroadcastState() {
  Communicator* comm = options_.communicator;
  std::vector<RowMatrixXf*> buffers = local_.StateBuffers();
  int64_t floats = 0;
  for (const RowMatrixXf* b : buffers) floats += b->size();
  // [global_step, buffers, floats] from the chief; every worker checks its
  // own layout agrees before the bulk broadcasts (whose sizes must match).
  int64_t header[3] = {local_.global_step(), static_cast<int64_t>(buffers.size()), floats};
  RETURN_IF_ERROR(comm->Broadcast(absl::Span<char>(reinterpret_cast<char*>(header),
                                                   sizeof(header)),
                                  0, Deadline()));
  int64_t mismatch = header[1] != static_cast<int64_t>(buffers.size()) || header[2] != floats;
  RETURN_IF_ERROR(comm->AllReduce(absl::Span<int64_t>(&mismatch, 1), ReduceOp::kSum,
                                  Deadline()));
  if (mismatch > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the chief's model state (", header[1], " buffers, ", header[2], " floats) and ",
        comm->PeerName(comm->rank()), "'s (", buffers.size(), " buffers, ", floats,
        ") differ, or another worker's does: every worker must run the same model and "
        "optimizers (", mismatch, " differ)"));
  }
  for (RowMatrixXf* b : buffers) {
    RETURN_IF_ERROR(comm->Broadcast(
        absl::Span<char>(reinterpret_cast<char*>(b->data()), sizeof(float) * b->size()), 0,
        Deadline()));
  }
  local_.set_global_step(header[0]);
  return absl::OkStatus();
}

absl::Status CollectiveStrategy::Restore() {
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(local_.Restore());
  BuildLayout();
  if (options_.communicator != nullptr) {
    RETURN_IF_ERROR(BroadcastState());
    spdlog::info("{}: variables, slots and global_step {} from the chief ({} workers x {} "
                 "replicas, {:.3f} sec)",
                 options_.communicator->PeerName(options_.communicator->rank()),
                 local_.global_step(), world(), options_.local_replicas,
                 absl::ToDoubleSeconds(absl::Now() - start));
  }
  return absl::OkStatus();
}

absl::Status CollectiveStrategy::ReduceBucket(size_t b) {
  if (options_.communicator == nullptr) return absl::OkStatus();
  const absl::Time start = absl::Now();
  const int64_t begin = b == 0 ? 0 : bucket_ends_[b - 1];
  absl::Status st = options_.communicator->AllReduce(
      absl::Span<float>(buffer_.data() + begin, static_cast<size_t>(bucket_ends_[b] - begin)),
      ReduceOp::kSum, Deadline());
  const absl::Duration took = absl::Now() - start;
  communication_ += took;
  if (allreduce_seconds_ != nullptr) {
    allreduce_seconds_->Observe(absl::ToDoubleSeconds(took));
    allreduce_bytes_->Increment(static_cast<double>(sizeof(float) * (bucket_ends_[b] - begin)));
  }
  return st;
}

absl::Status CollectiveStrategy::EndOfInput() {
  if (options_.communicator == nullptr) return absl::OkStatus();
  if (bucket_ends_.empty()) return absl::FailedPreconditionError("EndOfInput before Restore");
  // This worker's part of the next step's first collective: no data (the
  // header's counts are 0), zeros for the gradients. Every worker sees
  // fewer replicas with data than are in sync and stops (OutOfRange).
  std::fill(buffer_.begin(), buffer_.begin() + bucket_ends_[0], 0.0f);
  absl::Status st = ReduceBucket(0);
  if (!st.ok()) return st;
  spdlog::info("input ended at global_step {}; told the other workers", global_step());
  return absl::OkStatus();
}

GradientObserver* CollectiveStrategy::ObserveStep() {
  if (!options_.overlap_backward || options_.communicator == nullptr || world() < 2 ||
      bucket_ends_.empty()) {
    return nullptr;
  }
  if (!comm_thread_.joinable()) comm_thread_ = std::thread([this] { CommLoop(); });
  const int replicas = options_.local_replicas;
  absl::MutexLock l(&mu_);
  // A step abandoned by a failed replica may still be reducing a bucket.
  mu_.Await(absl::Condition(+[](bool* busy) { return !*busy; }, &comm_busy_));
  finals_.assign(replicas, std::vector<FinalGrad>(dense_.size()));
  losses_.assign(replicas, 0.0);
  batch_sizes_.assign(replicas, 0);
  loss_known_.assign(replicas, false);
  pending_.assign(bucket_ends_.size(), 0);
  for (size_t b : bucket_of_slot_) pending_[b] += replicas;
  pending_[0] += replicas;  // bucket 0's header: every replica's loss
  next_bucket_ = 0;
  comm_done_ = false;
  comm_status_ = absl::OkStatus();
  observing_ = true;
  return this;
}

void CollectiveStrategy::Loss(int replica, double loss, int64_t batch_size) {
  absl::MutexLock l(&mu_);
  if (loss_known_[replica]) return;
  loss_known_[replica] = true;
  losses_[replica] = loss;
  batch_sizes_[replica] = batch_size;
  --pending_[0];
}

void CollectiveStrategy::MarkFinal(int r, size_t s, const RowMatrixXf* grad) {
  FinalGrad& f = finals_[r][s];
  if (f.final) {
    // Reported during Backward: the data must not have moved since.
    if (grad != nullptr && f.data != grad->data() && comm_status_.ok()) {
      comm_status_ = absl::InternalError(absl::StrCat(
          "the gradient of '", dense_[s].name,
          "' moved after the model reported it final (Gradients::on_final)"));
    }
    return;
  }
  f.final = true;
  if (grad != nullptr) {
    f.data = grad->data();
    f.rows = grad->rows();
    f.cols = grad->cols();
  }
  --pending_[bucket_of_slot_[s]];
}

void CollectiveStrategy::Final(int replica, const std::string& variable,
                               const RowMatrixXf& grad) {
  auto it = slot_of_.find(variable);
  if (it == slot_of_.end()) return;  // ApplyGradients names it
  absl::MutexLock l(&mu_);
  MarkFinal(replica, it->second, &grad);
}

void CollectiveStrategy::Done(int replica, const Gradients& grads) {
  absl::MutexLock l(&mu_);
  for (const auto* m : {&grads.dense, &grads.assign}) {
    for (const auto& [name, g] : *m) {
      auto it = slot_of_.find(name);
      if (it != slot_of_.end()) MarkFinal(replica, it->second, &g);
    }
  }
  for (size_t s = 0; s < dense_.size(); ++s) MarkFinal(replica, s, nullptr);
}

absl::Status CollectiveStrategy::FillBucket(size_t b) {
  const int64_t begin = b == 0 ? 0 : bucket_ends_[b - 1];
  const int replicas = options_.local_replicas;
  std::vector<size_t> slots;
  std::vector<FinalGrad> finals;  // [slot index in `slots`][replica]
  std::vector<double> losses;
  std::vector<int64_t> sizes;
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(comm_status_);
    for (size_t s = 0; s < dense_.size(); ++s) {
      if (bucket_of_slot_[s] != b) continue;
      slots.push_back(s);
      for (int r = 0; r < replicas; ++r) finals.push_back(finals_[r][s]);
    }
    losses = losses_;
    sizes = batch_sizes_;
  }
  std::fill(buffer_.begin() + begin, buffer_.begin() + bucket_ends_[b], 0.0f);
  if (b == 0) {
    buffer_[kHasData] = static_cast<float>(replicas);
    for (int r = 0; r < replicas; ++r) {
      buffer_[kLossSum] += static_cast<float>(losses[r] * sizes[r]);
      buffer_[kExamples] += static_cast<float>(sizes[r]);
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = dense_[slots[i]];
    for (int r = 0; r < replicas; ++r) {
      const FinalGrad& f = finals[i * replicas + r];
      if (f.data == nullptr) continue;
      if (f.rows != slot.rows || f.cols != slot.cols) {
        return absl::InvalidArgumentError(
            absl::StrCat("the gradient of '", slot.name, "' is [", f.rows, ", ", f.cols,
                         "] but the variable is [", slot.rows, ", ", slot.cols, "]"));
      }
      AddWeighted(buffer_.data() + slot.offset, f.data, slot.rows * slot.cols,
                  static_cast<float>(sizes[r]));
    }
  }
  return absl::OkStatus();
}

void CollectiveStrategy::CommLoop() {
  const int64_t in_sync = static_cast<int64_t>(world()) * options_.local_replicas;
  while (true) {
    size_t b;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || (observing_ && !comm_done_ && pending_[next_bucket_] == 0);
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      b = next_bucket_;
      comm_busy_ = true;
    }
    absl::Status s = FillBucket(b);
    if (s.ok()) s = ReduceBucket(b);
    absl::MutexLock l(&mu_);
    comm_busy_ = false;
    if (!s.ok()) {
      if (comm_status_.ok()) comm_status_ = std::move(s);
      comm_done_ = true;
      continue;
    }
    // A worker without data: the others stop after bucket 0 (ApplyGradients
    // returns OutOfRange), so this one does too.
    if (b == 0 && static_cast<int64_t>(buffer_[kHasData]) < in_sync) {
      comm_done_ = true;
      continue;
    }
    if (++next_bucket_ == bucket_ends_.size()) comm_done_ = true;
  }
}

absl::StatusOr<std::map<std::string, SparseGradient>> CollectiveStrategy::ReduceSparse(
    std::vector<ReplicaGradients>* replicas, float scale) {
  // This worker's rows: its replicas merged (each scaled by its batch size).
  std::vector<SparseGradient> local(sparse_.size());
  for (size_t v = 0; v < sparse_.size(); ++v) {
    std::vector<RowsPart> parts;
    for (ReplicaGradients& r : *replicas) {
      auto it = r.grads.sparse.find(sparse_[v].name);
      if (it == r.grads.sparse.end() || it->second.rows.empty()) continue;
      parts.push_back(RowsPart{it->second.rows.data(),
                               static_cast<int64_t>(it->second.rows.size()),
                               it->second.values.data(), static_cast<float>(r.batch_size)});
    }
    local[v] = MergeRows(parts, sparse_[v].cols);
  }
  std::map<std::string, SparseGradient> out;
  if (sparse_.empty()) return out;  // every worker has the same model: no AllGather
  if (options_.communicator == nullptr) {
    for (size_t v = 0; v < sparse_.size(); ++v) {
      if (local[v].rows.empty()) continue;
      local[v].values *= scale;
      out[sparse_[v].name] = std::move(local[v]);
    }
    return out;
  }
  // One AllGather for every sparse variable: per variable in name order,
  // [int64 n][int64 ids[n]][float rows[n * cols]].
  std::string mine;
  for (const SparseGradient& g : local) {
    const int64_t n = static_cast<int64_t>(g.rows.size());
    Append(&mine, &n, 1);
    Append(&mine, g.rows.data(), g.rows.size());
    Append(&mine, g.values.data(), static_cast<size_t>(g.values.size()));
  }
  Communicator* comm = options_.communicator;
  std::vector<std::string> all;
  {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<std::string>> gathered = comm->AllGather(mine, Deadline());
    const absl::Duration took = absl::Now() - start;
    communication_ += took;
    if (allgather_seconds_ != nullptr) {
      allgather_seconds_->Observe(absl::ToDoubleSeconds(took));
      allgather_bytes_->Increment(static_cast<double>(mine.size()));
    }
    ASSIGN_OR_RETURN(all, std::move(gathered));
  }
  std::vector<std::vector<RowsPart>> parts(sparse_.size());
  for (size_t rank = 0; rank < all.size(); ++rank) {
    size_t pos = 0;
    for (size_t v = 0; v < sparse_.size(); ++v) {
      const int64_t* n = nullptr;
      const int64_t* ids = nullptr;
      const float* rows = nullptr;
      if (!Read(all[rank], &pos, 1, &n) || *n < 0 ||
          !Read(all[rank], &pos, static_cast<size_t>(*n), &ids) ||
          !Read(all[rank], &pos, static_cast<size_t>(*n * sparse_[v].cols), &rows)) {
        return absl::InvalidArgumentError(
            absl::StrCat("the sparse gradients from ", comm->PeerName(static_cast<int>(rank)),
                         " are cut short at variable '", sparse_[v].name,
                         "': every worker must run the same model"));
      }
      if (*n > 0) parts[v].push_back(RowsPart{ids, *n, rows, 1.0f});
    }
  }
  for (size_t v = 0; v < sparse_.size(); ++v) {
    SparseGradient merged = MergeRows(parts[v], sparse_[v].cols);
    if (merged.rows.empty()) continue;
    merged.values *= scale;
    out[sparse_[v].name] = std::move(merged);
  }
  return out;
}

absl::StatusOr<double> CollectiveStrategy::ApplyGradients(
    std::vector<ReplicaGradients>* replicas) {
  if (static_cast<int>(replicas->size()) != options_.local_replicas) {
    return absl::InvalidArgumentError(
        absl::StrCat("this strategy has ", options_.local_replicas,
                     " local replicas but the step brought ", replicas->size()));
  }
  if (bucket_ends_.empty()) return absl::FailedPreconditionError("ApplyGradients before Restore");
  // Overlap: the comm thread reduced the buckets while the replicas
  // computed (replicas it was not told about are reported now); wait for it.
  bool observed = false;
  {
    absl::MutexLock l(&mu_);
    observed = observing_;
  }
  if (observed) {
    for (int r = 0; r < options_.local_replicas; ++r) {
      bool known;
      {
        absl::MutexLock l(&mu_);
        known = loss_known_[r];
      }
      if (!known) Loss(r, (*replicas)[r].loss, (*replicas)[r].batch_size);
      Done(r, (*replicas)[r].grads);
    }
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(&comm_done_));
    observing_ = false;
    RETURN_IF_ERROR(comm_status_);
  }
  // The local sum, each replica's gradients weighted by its batch size, so
  // that dividing by the global example count gives the gradient of the
  // mean loss over the global batch (also when batches are ragged). With
  // overlap, FillBucket did it; this checks the gradients.
  if (!observed) {
    std::fill(buffer_.begin(), buffer_.end(), 0.0f);
    buffer_[kHasData] = static_cast<float>(replicas->size());
  }
  for (ReplicaGradients& r : *replicas) {
    const float weight = static_cast<float>(r.batch_size);
    if (!observed) {
      buffer_[kLossSum] += static_cast<float>(r.loss * r.batch_size);
      buffer_[kExamples] += weight;
    }
    for (const auto* m : {&r.grads.dense, &r.grads.assign}) {
      for (const auto& [name, g] : *m) {
        auto it = slot_of_.find(name);
        if (it == slot_of_.end()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "a dense gradient or assignment for '", name,
              "', which is not a dense variable of the model (nothing applied)"));
        }
        const Slot& slot = dense_[it->second];
        if (g.rows() != slot.rows || g.cols() != slot.cols) {
          return absl::InvalidArgumentError(
              absl::StrCat("the gradient of '", name, "' is [", g.rows(), ", ", g.cols(),
                           "] but the variable is [", slot.rows, ", ", slot.cols, "]"));
        }
        if (!observed) AddWeighted(buffer_.data() + slot.offset, g.data(), g.size(), weight);
      }
    }
    for (const auto& [name, g] : r.grads.sparse) {
      if (sparse_of_.count(name) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("a sparse gradient for '", name,
                         "', which is not a row-sparse variable of the model (nothing applied)"));
      }
    }
  }
  // Bucket 0 carries the header: after it every worker knows whether every
  // replica in sync had data, and stops together if not.
  if (!observed) RETURN_IF_ERROR(ReduceBucket(0));
  const int64_t in_sync = static_cast<int64_t>(world()) * options_.local_replicas;
  if (static_cast<int64_t>(buffer_[kHasData]) < in_sync) {
    return absl::OutOfRangeError(absl::StrCat(
        "the input of another worker ran out (", static_cast<int64_t>(buffer_[kHasData]),
        " of ", in_sync, " replicas had a batch at global_step ", global_step(),
        "); nothing applied"));
  }
  if (!observed) {
    for (size_t b = 1; b < bucket_ends_.size(); ++b) RETURN_IF_ERROR(ReduceBucket(b));
  }
  const double examples = buffer_[kExamples];
  if (examples <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a step of empty batches at global_step ", global_step()));
  }
  const float scale = static_cast<float>(1.0 / examples);
  using SparseMap = std::map<std::string, SparseGradient>;
  ASSIGN_OR_RETURN(SparseMap sparse, ReduceSparse(replicas, scale));
  // The reduced step, in replica 0's maps (their matrices are reused).
  Gradients& reduced = replicas->front().grads;
  for (auto* m : {&reduced.dense, &reduced.assign}) {
    for (auto& [name, g] : *m) {
      const Slot& slot = dense_[slot_of_.at(name)];
      Eigen::Map<Eigen::VectorXf>(g.data(), g.size()) =
          scale * Eigen::Map<const Eigen::VectorXf>(buffer_.data() + slot.offset, g.size());
    }
  }
  reduced.sparse = std::move(sparse);
  RETURN_IF_ERROR(local_.Apply(&reduced));
  return buffer_[kLossSum] / examples;
}

}  // namespace

CollectiveStrategyOptions CollectiveStrategyOptionsFromJob(const JobSpec& job) {
  CollectiveStrategyOptions o;
  o.local.checkpoint.model_dir = job.model_dir;
  o.local.checkpoint.seed =
      job.run_config.has_tf_random_seed ? job.run_config.tf_random_seed : 0;
  if (job.estimator.has_value()) o.local.checkpoint.warm_start_from = job.estimator->warm_start_from;
  o.local.keep_checkpoint_max = static_cast<int>(job.run_config.keep_checkpoint_max);
  if (job.run_config.checkpoint_format == "tf") {  // the chief saves (local_.SaveCheckpoint)
    o.local.checkpoint_format = checkpoint::CheckpointFormat::kTf;
  }
  o.local_replicas = job.distribution.num_replicas_per_worker;
  o.collective_timeout = job.distribution.collective_timeout;
  o.overlap_backward = job.distribution.overlap_backward;
  if (job.distribution.bucket_bytes > 0) o.bucket_bytes = job.distribution.bucket_bytes;
  return o;
}

bool IsCollectiveStrategy(const std::string& strategy) {
  return strategy == "mirrored" || strategy == "central_storage" ||
         strategy == "multi_worker_mirrored";
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeCollectiveStrategy(
    const Model* model, const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
    CollectiveStrategyOptions options) {
  if (options.local_replicas < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_replicas_per_worker must be at least 1, not ", options.local_replicas));
  }
  if (optimizers == nullptr || optimizers->empty()) {
    return absl::InvalidArgumentError("a collective strategy needs at least one optimizer");
  }
  return std::unique_ptr<Strategy>(
      new CollectiveStrategy(model, optimizers, std::move(options)));
}

}  // namespace estuary
