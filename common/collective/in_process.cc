#include "common/collective/in_process.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace estuary {
namespace {

enum class OpKind { kAllReduceF32, kAllReduceI64, kBroadcast, kAllGather, kBarrier };

// One rank's arguments to one operation.
struct Call {
  OpKind kind = OpKind::kBarrier;
  size_t length = 0;  // elements (AllReduce) or bytes (Broadcast)
  ReduceOp op = ReduceOp::kSum;
  int root = 0;
  void* data = nullptr;  // float*, int64_t* or char*
  absl::string_view mine;
  std::vector<std::string>* gathered = nullptr;
};

// What every rank must agree on, e.g. "AllReduce(float32, 10 elements, sum)".
std::string Describe(const Call& call) {
  const char* op = call.op == ReduceOp::kSum ? "sum" : "mean";
  switch (call.kind) {
    case OpKind::kAllReduceF32:
      return absl::StrCat("AllReduce(float32, ", call.length, " elements, ", op, ")");
    case OpKind::kAllReduceI64:
      return absl::StrCat("AllReduce(int64, ", call.length, " elements, ", op, ")");
    case OpKind::kBroadcast:
      return absl::StrCat("Broadcast(", call.length, " bytes, root ", call.root, ")");
    case OpKind::kAllGather:
      return "AllGather";
    case OpKind::kBarrier:
      return "Barrier";
  }
  return "?";
}

const char* OpName(OpKind kind) {
  switch (kind) {
    case OpKind::kAllReduceF32:
    case OpKind::kAllReduceI64:
      return "AllReduce";
    case OpKind::kBroadcast:
      return "Broadcast";
    case OpKind::kAllGather:
      return "AllGather";
    case OpKind::kBarrier:
      return "Barrier";
  }
  return "?";
}

// The rendezvous of one operation (the k-th call of every rank).
struct Operation {
  explicit Operation(int size) : calls(size), arrived(size, false) {}
  std::vector<Call> calls;
  std::vector<bool> arrived;
  int num_arrived = 0;
  bool started = false;  // every rank arrived with the group intact: data moves
  int num_done = 0;      // ranks whose slice has moved
  int num_left = 0;      // ranks that returned
};

struct Group {
  explicit Group(std::vector<std::string> names) : names(std::move(names)) {}
  const std::vector<std::string> names;
  absl::Mutex mu;
  std::map<int64_t, std::unique_ptr<Operation>> ops ABSL_GUARDED_BY(mu);
  // The first failure of any rank; OK while the group is intact.
  absl::Status broken ABSL_GUARDED_BY(mu);
};

// Moves rank `rank`'s slice of operation `op` (every rank has arrived; the
// slices are disjoint, so no lock is needed).
void MoveSlice(const Operation& op, int rank, int size) {
  const Call& first = op.calls[0];
  const size_t n = first.length;
  const size_t lo = n * rank / size;
  const size_t hi = n * (rank + 1) / size;
  switch (first.kind) {
    case OpKind::kAllReduceF32: {
      // Rank 0's buffer holds the sum, taken in rank order.
      float* out = static_cast<float*>(op.calls[0].data);
      for (int i = 1; i < size; ++i) {
        const float* in = static_cast<const float*>(op.calls[i].data);
        for (size_t j = lo; j < hi; ++j) out[j] += in[j];
      }
      if (first.op == ReduceOp::kMean) {
        const float divisor = static_cast<float>(size);
        for (size_t j = lo; j < hi; ++j) out[j] /= divisor;
      }
      for (int i = 1; i < size; ++i) {
        if (hi > lo) {
          std::memcpy(static_cast<float*>(op.calls[i].data) + lo, out + lo, (hi - lo) * sizeof(float));
        }
      }
      break;
    }
    case OpKind::kAllReduceI64: {
      // Unsigned arithmetic: an overflowing sum wraps instead of being undefined.
      int64_t* out = static_cast<int64_t*>(op.calls[0].data);
      for (int i = 1; i < size; ++i) {
        const int64_t* in = static_cast<const int64_t*>(op.calls[i].data);
        for (size_t j = lo; j < hi; ++j) {
          out[j] = static_cast<int64_t>(static_cast<uint64_t>(out[j]) + static_cast<uint64_t>(in[j]));
        }
      }
      if (first.op == ReduceOp::kMean) {
        for (size_t j = lo; j < hi; ++j) out[j] /= size;
      }
      for (int i = 1; i < size; ++i) {
        if (hi > lo) {
          std::memcpy(static_cast<int64_t*>(op.calls[i].data) + lo, out + lo,
                      (hi - lo) * sizeof(int64_t));
        }
      }
      break;
    }
    case OpKind::kBroadcast: {
      const char* from = static_cast<const char*>(op.calls[first.root].data);
      for (int i = 0; i < size; ++i) {
        if (i != first.root && hi > lo) {
          std::memcpy(static_cast<char*>(op.calls[i].data) + lo, from + lo, hi - lo);
        }
      }
      break;
    }
    case OpKind::kAllGather: {
      std::vector<std::string>& gathered = *op.calls[rank].gathered;
      gathered.resize(size);
      for (int i = 0; i < size; ++i) gathered[i] = std::string(op.calls[i].mine);
      break;
    }
    case OpKind::kBarrier:
      break;
  }
}

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<Group> group, int rank)
      : group_(std::move(group)), rank_(rank) {}

  // Leaving the group breaks it, as a process that exits closes its
  // connections: peers still waiting fail at once instead of at their
  // deadline.
  ~InProcessCommunicator() override {
    absl::MutexLock lock(&group_->mu);
    if (group_->broken.ok()) {
      group_->broken = absl::UnavailableError(
          absl::StrCat(PeerName(rank_), " left the group (its communicator was destroyed)"));
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(group_->names.size()); }
  std::string PeerName(int r) const override {
    if (r < 0 || r >= size()) return absl::StrCat("rank ", r);
    return absl::StrCat(group_->names[r], " (rank ", r, ")");
  }

  absl::Status AllReduce(absl::Span<float> data, ReduceOp op, absl::Time deadline) override {
    Call call;
    call.kind = OpKind::kAllReduceF32;
    call.length = data.size();
    call.op = op;
    call.data = data.data();
    return Run(call, deadline);
  }

  absl::Status AllReduce(absl::Span<int64_t> data, ReduceOp op, absl::Time deadline) override {
    Call call;
    call.kind = OpKind::kAllReduceI64;
    call.length = data.size();
    call.op = op;
    call.data = data.data();
    return Run(call, deadline);
  }

  absl::Status Broadcast(absl::Span<char> data, int root, absl::Time deadline) override {
    Call call;
    call.kind = OpKind::kBroadcast;
    call.length = data.size();
    call.root = root;
    call.data = data.data();
    return Run(call, deadline);
  }

  absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view mine,
                                                     absl::Time deadline) override {
    std::vector<std::string> gathered;
    Call call;
    call.kind = OpKind::kAllGather;
    call.mine = mine;
    call.gathered = &gathered;
    absl::Status status = Run(call, deadline);
    if (!status.ok()) return status;
    return gathered;
  }

  absl::Status Barrier(absl::Time deadline) override {
    Call call;
    call.kind = OpKind::kBarrier;
    return Run(call, deadline);
  }

  void Abort() override {
    absl::MutexLock lock(&group_->mu);
    if (aborted_) return;
    aborted_ = true;
    if (group_->broken.ok()) {
      group_->broken = absl::UnavailableError(absl::StrCat(PeerName(rank_), " aborted its communicator"));
    }
  }

 private:
  absl::Status Cancelled() const {
    return absl::CancelledError(absl::StrCat(PeerName(rank_), ": the communicator was aborted"));
  }

  // Records `status` as this communicator's failure and breaks the group.
  absl::Status Fail(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(group_->mu) {
    if (broken_.ok()) broken_ = status;
    if (group_->broken.ok()) group_->broken = status;
    return status;
  }

  // Joins this rank's next operation and waits for every rank (or a
  // failure). Returns the operation once its data may move.
  absl::StatusOr<Operation*> Arrive(const Call& call, absl::Time deadline, int64_t* seq) {
    Group& group = *group_;
    const int n = size();
    absl::MutexLock lock(&group.mu);
    if (aborted_) return Cancelled();
    if (!broken_.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the communicator broke earlier: ", broken_.message()));
    }
    *seq = next_seq_++;
    if (!group.broken.ok()) return Fail(group.broken);
    if (call.kind == OpKind::kBroadcast && (call.root < 0 || call.root >= n)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          PeerName(rank_), ": Broadcast root ", call.root, " is out of range [0, ", n, ")")));
    }
    std::unique_ptr<Operation>& slot = group.ops[*seq];
    if (slot == nullptr) slot = std::make_unique<Operation>(n);
    Operation* op = slot.get();
    for (int i = 0; i < n; ++i) {
      if (!op->arrived[i]) continue;
      const std::string theirs = Describe(op->calls[i]);
      const std::string ours = Describe(call);
      if (theirs != ours) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            "ranks disagree on collective #", *seq, ": ", PeerName(i), " calls ", theirs, " but ",
            PeerName(rank_), " calls ", ours)));
      }
      break;
    }
    op->calls[rank_] = call;
    op->arrived[rank_] = true;
    if (++op->num_arrived == n) op->started = true;
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(group.mu) {
      return op->started || !group.broken.ok() || aborted_;
    };
    group.mu.AwaitWithDeadline(absl::Condition(&ready), deadline);
    // Once started, other ranks read and write this rank's buffer: it
    // must take part whatever happened meanwhile.
    if (op->started) return op;
    if (aborted_) return Cancelled();
    if (!group.broken.ok()) return Fail(group.broken);
    std::vector<std::string> missing;
    for (int i = 0; i < n; ++i) {
      if (!op->arrived[i]) missing.push_back(PeerName(i));
    }
    return Fail(absl::DeadlineExceededError(absl::StrCat(
        PeerName(rank_), ": deadline exceeded in ", OpName(call.kind), " (collective #", *seq,
        ") waiting for ", absl::StrJoin(missing, ", "))));
  }

  absl::Status Run(const Call& call, absl::Time deadline) {
    int64_t seq = 0;
    absl::StatusOr<Operation*> op = Arrive(call, deadline, &seq);
    if (!op.ok()) return op.status();
    MoveSlice(**op, rank_, size());
    Group& group = *group_;
    absl::MutexLock lock(&group.mu);
    Operation* operation = *op;
    ++operation->num_done;
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(group.mu) {
      return operation->num_done == size();
    };
    group.mu.Await(absl::Condition(&done));
    if (++operation->num_left == size()) group.ops.erase(seq);
    if (aborted_) return Cancelled();
    return absl::OkStatus();
  }

  const std::shared_ptr<Group> group_;
  const int rank_;
  int64_t next_seq_ ABSL_GUARDED_BY(group_->mu) = 0;
  bool aborted_ ABSL_GUARDED_BY(group_->mu) = false;
  absl::Status broken_ ABSL_GUARDED_BY(group_->mu);  // this rank's first failure
};

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateInProcessGroup(
    const InProcessGroupOptions& options) {
  if (options.size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("in-process group: size must be at least 1, got ", options.size));
  }
  std::vector<std::string> names = options.peer_names;
  if (names.empty()) {
    for (int r = 0; r < options.size; ++r) names.push_back(absl::StrCat("replica ", r));
  } else if (static_cast<int>(names.size()) != options.size) {
    return absl::InvalidArgumentError(absl::StrCat("in-process group: ", names.size(),
                                                   " peer_names for size ", options.size));
  }
  auto group = std::make_shared<Group>(std::move(names));
  std::vector<std::unique_ptr<Communicator>> communicators;
  for (int r = 0; r < options.size; ++r) {
    communicators.push_back(std::make_unique<InProcessCommunicator>(group, r));
  }
  return communicators;
}

}  // namespace estuary
