// The service logic of one parameter-server task, without RPC (TSL style:
// a plain class; ps_service.h adapts it to gRPC): a shard of the model's
// variables (whole ones, and this PS's rows of row-partitioned ones), their
// optimizer slots and per-variable update counters, the store's
// generation, and global_step on PS 0.
//
// Apply runs common/optimizer exactly as estimator/one_device_strategy.cc
// does: assignments are copied in, dense gradients go to ApplyDense, sparse
// rows to ApplySparse, with `step` = the variable's update counter (the
// number of pushes that named it before; with one worker that pushes every
// variable each step it equals global_step, which is what one process
// passes). A push's rows of a partitioned variable are local rows
// (global / num_ps); optimizers that are not row-wise (Adam, RMSprop
// without momentum) update every local row when the step touched any row
// of the variable (`any_rows`), so the parts together equal the whole.
//
// Thread-safety: thread-safe. Pushes and pulls run concurrently; each
// variable has its own lock, so pushes from several workers apply to
// different variables at once (one variable's updates are serialised, in
// arrival order). A checkpoint pauses pushes on every PS (Pause), then Save
// copies the shard, resumes pushes and writes the copy (checkpoint::
// WriteShard) while training goes on. Starts no threads.
#ifndef ESTUARY_COMMON_PS_PS_SHARD_H_
#define ESTUARY_COMMON_PS_PS_SHARD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/io/env.h"
#include "common/optimizer.h"
#include "common/tensor.h"
#include "proto/checkpoint.pb.h"

namespace estuary {

// Rows of a variable held by one PS: global row r is local row r / count on
// partition r % count. A whole variable is partition 0 of 1.
struct PsPartition {
  int64_t full_rows = 0;
  int index = 0;
  int count = 1;
  bool whole() const { return count == 1; }
};

// A variable (or this PS's part of one) as Initialize receives it.
struct PsVariablePart {
  std::string name;
  RowMatrixXf value;  // the local rows
  PsPartition partition;
  bool row_sparse = false;
  bool trainable = true;
  OptimizerConfig optimizer;
  std::map<std::string, RowMatrixXf> slots;  // local rows; missing ones: CreateSlots
  int64_t updates = 0;
};

// What Describe reports of a variable.
struct PsVariableInfo {
  std::string name;
  int64_t cols = 0;
  PsPartition partition;
  bool row_sparse = false;
};

struct PsLayout {
  uint64_t generation = 0;
  int ps_index = 0;
  int num_ps = 1;
  bool has_global_step = false;
  std::vector<PsVariableInfo> variables;  // by name
};

// One variable of a pull; `rows` are local rows (all of them if !by_rows).
struct PsPullItem {
  std::string name;
  bool by_rows = false;
  std::vector<int64_t> rows;
};

// One entry of a push.
struct PsPushItem {
  enum Kind { kDense, kSparse, kAssign };
  std::string name;
  Kind kind = kDense;
  std::vector<int64_t> rows;  // kSparse: local rows, ascending, distinct
  RowMatrixXf values;         // the gradient, its rows, or the new value
  bool any_rows = false;      // kSparse: the step touched rows on some PS
};

// What a shard holds (the live view, common/status/): its variables (or
// parts), their local rows, and the bytes of their values and slots.
struct PsShardSizes {
  int64_t variables = 0;
  int64_t rows = 0;
  int64_t bytes = 0;
};

struct PsShardOptions {
  // Every file operation of Save goes through it; not owned, never null.
  const io::Env* env = &io::Env::Default();
  // The longest a push waits for a checkpoint pause to lift before failing
  // Unavailable (a pause lifts by itself when it expires).
  absl::Duration max_push_wait = absl::Seconds(60);
};

class PsShard {
 public:
  explicit PsShard(PsShardOptions options = {});

  // Replaces the store (variables, slots, counters, global_step when
  // `global_step` is set, i.e. on PS 0) and tags it `generation`; lifts a
  // pause. Errors: InvalidArgument (a bad optimizer config, a slot or
  // partition of the wrong shape, a duplicate name, generation 0); the
  // store is unchanged then.
  absl::Status Initialize(uint64_t generation, int ps_index, int num_ps,
                          std::vector<PsVariablePart> parts, std::optional<int64_t> global_step);

  // Waits until the store's generation is >= min_generation or `deadline`
  // passes, then describes it. Errors: DeadlineExceeded (not initialised
  // to that generation by the deadline).
  absl::StatusOr<PsLayout> Describe(uint64_t min_generation, absl::Time deadline) const;

  // The requested values, one float tensor [rows, cols] per item, in
  // order. Errors: FailedPrecondition (never initialised), Aborted
  // (`generation` is not the store's), InvalidArgument (unknown variable,
  // a row out of range).
  absl::StatusOr<std::vector<Tensor>> Pull(uint64_t generation,
                                           const std::vector<PsPullItem>& items) const;

  // Applies a push: every item is checked first (nothing is applied when
  // one is wrong), then applied; then, if `advance_global_step` (PS 0
  // only), global_step advances by one. Returns global_step (PS 0) or 0.
  // Waits while a checkpoint pause holds (until `deadline`). Errors:
  // FailedPrecondition, Aborted as Pull; InvalidArgument (unknown variable,
  // wrong shape, a dense gradient for a non-trainable variable, rows out of
  // range or not ascending, global_step not on this PS); Unavailable (a
  // pause did not lift in time).
  absl::StatusOr<int64_t> Push(uint64_t generation, std::vector<PsPushItem> items,
                               bool advance_global_step, absl::Time deadline);

  // Errors: FailedPrecondition, Aborted as Pull; InvalidArgument if this is
  // not PS 0.
  absl::StatusOr<int64_t> GlobalStep(uint64_t generation) const;

  // Pauses pushes (waits for those being applied to finish) until Save with
  // the same `pause_id` or until `expires`. Returns global_step (PS 0) or 0.
  // Errors: FailedPrecondition, Aborted as Pull; DeadlineExceeded (pushes
  // in flight did not finish by `expires`).
  absl::StatusOr<int64_t> Pause(uint64_t generation, uint64_t pause_id, absl::Time expires);

  // Under pause `pause_id`: copies the shard, resumes pushes, and writes the
  // copy as shard ps_index of `num_shards` of checkpoint `step` in
  // model_dir (variables; slots as "<var>/<optimizer>/<slot>"; update
  // counters as int64 "<var>/<optimizer>/updates" from partition 0; on PS 0
  // global_step = step); row-partitioned parts as checkpoint row partitions.
  // Returns when the shard is durable. Errors: FailedPrecondition (no such
  // pause: it expired or another replaced it), Aborted as Pull; I/O errors
  // of checkpoint::WriteShard.
  absl::StatusOr<ShardEntry> Save(uint64_t generation, uint64_t pause_id,
                                  const std::string& model_dir, int64_t step, int num_shards);

  // The shard's sizes now (zeros before initialisation).
  PsShardSizes Sizes() const;

 private:
  struct Var {
    std::string name;
    PsPartition partition;
    bool row_sparse = false;
    bool trainable = true;
    std::unique_ptr<Optimizer> optimizer;
    mutable absl::Mutex mu;
    RowMatrixXf value ABSL_GUARDED_BY(mu);
    Slots slots ABSL_GUARDED_BY(mu);
    int64_t updates ABSL_GUARDED_BY(mu) = 0;
  };
  using Store = std::map<std::string, std::unique_ptr<Var>>;

  // The store if initialised to `generation`.
  absl::StatusOr<std::shared_ptr<const Store>> StoreFor(uint64_t generation) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Lifts an expired pause.
  void ExpirePause() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PsShardOptions options_;
  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;  // generation, pause or in-flight pushes changed
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // 0: never initialised
  int ps_index_ ABSL_GUARDED_BY(mu_) = 0;
  int num_ps_ ABSL_GUARDED_BY(mu_) = 1;
  std::shared_ptr<const Store> store_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> global_step_ ABSL_GUARDED_BY(mu_);
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t pause_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time pause_expires_ ABSL_GUARDED_BY(mu_);
  int pushes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_PS_PS_SHARD_H_
