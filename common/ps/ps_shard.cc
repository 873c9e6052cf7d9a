#include "common/ps/ps_shard.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

std::string Shape(int64_t rows, int64_t cols) { return absl::StrCat("[", rows, ", ", cols, "]"); }

int64_t LocalRows(const PsPartition& p) {
  return p.full_rows > p.index ? (p.full_rows - p.index + p.count - 1) / p.count : 0;
}

// "<variable>/<optimizer>/<slot>", as estimator/strategy.h's SlotName.
std::string SlotName(const std::string& var, const std::string& optimizer,
                     const std::string& slot) {
  return absl::StrCat(var, "/", optimizer, "/", slot);
}

absl::Status CheckRows(const std::string& name, const std::vector<int64_t>& rows,
                       int64_t local_rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= local_rows || (i > 0 && rows[i] <= rows[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "variable '", name, "': local row ", rows[i], " is out of range [0, ", local_rows,
          ") or not ascending"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

PsShard::PsShard(PsShardOptions options) : options_(std::move(options)) {}

absl::Status PsShard::Initialize(uint64_t generation, int ps_index, int num_ps,
                                 std::vector<PsVariablePart> parts,
                                 std::optional<int64_t> global_step) {
  if (generation == 0) return absl::InvalidArgumentError("PS: generation 0 is reserved");
  if (num_ps < 1 || ps_index < 0 || ps_index >= num_ps) {
    return absl::InvalidArgumentError(absl::StrCat("PS: bad index ", ps_index, " of ", num_ps));
  }
  auto store = std::make_shared<Store>();
  for (PsVariablePart& part : parts) {
    const std::string what = absl::StrCat("variable '", part.name, "'");
    const PsPartition& p = part.partition;
    if (part.name.empty() || store->count(part.name)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": empty or duplicate name"));
    }
    if (p.count < 1 || p.index < 0 || p.index >= p.count || part.value.rows() != LocalRows(p)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", part.value.rows(),
                                                     " rows do not match partition ", p.index,
                                                     " of ", p.count, " of ", p.full_rows));
    }
    auto v = std::make_unique<Var>();
    v->name = part.name;
    v->partition = p;
    v->row_sparse = part.row_sparse;
    v->trainable = part.trainable;
    absl::StatusOr<std::unique_ptr<Optimizer>> optimizer = MakeOptimizer(part.optimizer);
    if (!optimizer.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", optimizer.status().message()));
    }
    v->optimizer = *std::move(optimizer);
    absl::MutexLock l(&v->mu);
    v->slots = v->optimizer->CreateSlots(part.value);
    for (auto& [slot, value] : part.slots) {
      auto it = v->slots.by_name.find(slot);
      if (it == v->slots.by_name.end()) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": optimizer ",
                                                       v->optimizer->name(), " has no slot '",
                                                       slot, "'"));
      }
      if (value.rows() != part.value.rows() || value.cols() != part.value.cols()) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": slot '", slot, "' is ", Shape(value.rows(), value.cols()), ", the variable ",
            Shape(part.value.rows(), part.value.cols())));
      }
      it->second = std::move(value);
    }
    v->value = std::move(part.value);
    v->updates = part.updates;
    store->emplace(part.name, std::move(v));
  }
  absl::MutexLock l(&mu_);
  generation_ = generation;
  ps_index_ = ps_index;
  num_ps_ = num_ps;
  store_ = std::move(store);
  global_step_ = global_step;
  paused_ = false;
  changed_.SignalAll();
  spdlog::info("ps {}: initialised generation {} with {} variables{}", ps_index, generation,
               store_->size(),
               global_step ? absl::StrCat(", global_step = ", *global_step) : std::string());
  return absl::OkStatus();
}

absl::StatusOr<PsLayout> PsShard::Describe(uint64_t min_generation, absl::Time deadline) const {
  absl::MutexLock l(&mu_);
  while (generation_ == 0 || generation_ < min_generation) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "PS not initialised to generation ", min_generation, " (it holds ", generation_, ")"));
    }
    changed_.WaitWithDeadline(&mu_, deadline);
  }
  PsLayout out;
  out.generation = generation_;
  out.ps_index = ps_index_;
  out.num_ps = num_ps_;
  out.has_global_step = global_step_.has_value();
  for (const auto& [name, v] : *store_) {
    absl::MutexLock vl(&v->mu);
    out.variables.push_back({name, v->value.cols(), v->partition, v->row_sparse});
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const PsShard::Store>> PsShard::StoreFor(
    uint64_t generation) const {
  if (generation_ == 0) {
    return absl::FailedPreconditionError("PS not initialised (it started or restarted since)");
  }
  if (generation != generation_) {
    return absl::AbortedError(absl::StrCat("stale generation ", generation, ": the PS holds ",
                                           generation_, " (reinitialised)"));
  }
  return store_;
}

absl::StatusOr<std::vector<Tensor>> PsShard::Pull(uint64_t generation,
                                                  const std::vector<PsPullItem>& items) const {
  std::shared_ptr<const Store> store;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(store, StoreFor(generation));
  }
  std::vector<Tensor> out;
  out.reserve(items.size());
  for (const PsPullItem& item : items) {
    auto it = store->find(item.name);
    if (it == store->end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pull of '", item.name, "', which this PS does not hold"));
    }
    const Var& v = *it->second;
    absl::MutexLock vl(&v.mu);
    const int64_t cols = v.value.cols();
    Tensor t;
    if (!item.by_rows) {
      t = Tensor::Floats({v.value.rows(), cols},
                         std::vector<float>(v.value.data(), v.value.data() + v.value.size()));
    } else {
      RETURN_IF_ERROR(CheckRows(item.name, item.rows, v.value.rows()));
      std::vector<float> values(item.rows.size() * cols);
      const float* src = v.value.data();
      if (cols == 1) {  // the linear part's weights: no memmove call per float
        for (size_t i = 0; i < item.rows.size(); ++i) values[i] = src[item.rows[i]];
      } else {
        for (size_t i = 0; i < item.rows.size(); ++i) {
          std::copy_n(src + item.rows[i] * cols, cols, values.data() + i * cols);
        }
      }
      t = Tensor::Floats({static_cast<int64_t>(item.rows.size()), cols}, std::move(values));
    }
    out.push_back(std::move(t));
  }
  return out;
}

void PsShard::ExpirePause() {
  if (paused_ && absl::Now() >= pause_expires_) {
    spdlog::warn("ps {}: checkpoint pause {} expired without a save; resuming", ps_index_,
                 pause_id_);
    paused_ = false;
    changed_.SignalAll();
  }
}

absl::StatusOr<int64_t> PsShard::Push(uint64_t generation, std::vector<PsPushItem> items,
                                      bool advance_global_step, absl::Time deadline) {
  std::shared_ptr<const Store> store;
  {
    absl::MutexLock l(&mu_);
    const absl::Time give_up = std::min(deadline, absl::Now() + options_.max_push_wait);
    while (true) {
      ExpirePause();
      if (!paused_) break;
      if (absl::Now() >= give_up) {
        return absl::UnavailableError("PS paused for a checkpoint too long");
      }
      changed_.WaitWithDeadline(&mu_, std::min(give_up, pause_expires_));
    }
    ASSIGN_OR_RETURN(store, StoreFor(generation));
    if (advance_global_step && !global_step_) {
      return absl::InvalidArgumentError(
          absl::StrCat("global_step lives on ps 0, not on ps ", ps_index_));
    }
    ++pushes_in_flight_;
  }
  // Check everything before applying anything.
  std::vector<Var*> vars;
  absl::Status check;
  for (const PsPushItem& item : items) {
    auto it = store->find(item.name);
    if (it == store->end()) {
      check = absl::InvalidArgumentError(absl::StrCat(
          "a gradient for '", item.name, "', which is not a variable of this PS"));
      break;
    }
    Var& v = *it->second;
    vars.push_back(&v);
    const int64_t rows = LocalRows(v.partition);
    const int64_t cols = [&] {
      absl::MutexLock vl(&v.mu);
      return v.value.cols();
    }();
    const std::string what = absl::StrCat("variable '", item.name, "'");
    if (item.kind != PsPushItem::kAssign && !v.trainable) {
      check = absl::InvalidArgumentError(absl::StrCat(what, " is not trainable (assign only)"));
    } else if (item.kind == PsPushItem::kSparse) {
      check = CheckRows(item.name, item.rows, rows);
      if (check.ok() && (item.values.rows() != static_cast<int64_t>(item.rows.size()) ||
                         item.values.cols() != cols)) {
        check = absl::InvalidArgumentError(absl::StrCat(
            what, ": sparse gradient of ", item.rows.size(), " rows is ",
            Shape(item.values.rows(), item.values.cols()), ", expected ",
            Shape(item.rows.size(), cols)));
      }
    } else if (item.values.rows() != rows || item.values.cols() != cols) {
      check = absl::InvalidArgumentError(
          absl::StrCat(what, ": ", item.kind == PsPushItem::kAssign ? "value" : "gradient", " is ",
                       Shape(item.values.rows(), item.values.cols()), ", the variable ",
                       Shape(rows, cols)));
    }
    if (!check.ok()) break;
  }
  if (check.ok()) {
    for (size_t i = 0; i < items.size(); ++i) {
      PsPushItem& item = items[i];
      Var& v = *vars[i];
      absl::MutexLock vl(&v.mu);
      switch (item.kind) {
        case PsPushItem::kAssign:
          v.value = std::move(item.values);
          break;
        case PsPushItem::kDense:
          v.optimizer->ApplyDense(&v.value, &v.slots, item.values, v.updates);
          ++v.updates;
          break;
        case PsPushItem::kSparse:
          if (!item.rows.empty() || item.any_rows) {
            v.optimizer->ApplySparse(&v.value, &v.slots, item.rows, item.values, v.updates);
          }
          ++v.updates;
          break;
      }
    }
  }
  absl::MutexLock l(&mu_);
  --pushes_in_flight_;
  changed_.SignalAll();
  if (!check.ok()) return check;
  if (generation != generation_) {
    return absl::AbortedError("the PS was reinitialised during the push");
  }
  if (advance_global_step) return ++*global_step_;
  return global_step_.value_or(0);
}

absl::StatusOr<int64_t> PsShard::GlobalStep(uint64_t generation) const {
  absl::MutexLock l(&mu_);
  RETURN_IF_ERROR(StoreFor(generation).status());
  if (!global_step_) {
    return absl::InvalidArgumentError(
        absl::StrCat("global_step lives on ps 0, not on ps ", ps_index_));
  }
  return *global_step_;
}

absl::StatusOr<int64_t> PsShard::Pause(uint64_t generation, uint64_t pause_id, absl::Time expires) {
  absl::MutexLock l(&mu_);
  RETURN_IF_ERROR(StoreFor(generation).status());
  // A newer pause replaces an older one (its client gave up or died).
  paused_ = true;
  pause_id_ = pause_id;
  pause_expires_ = expires;
  while (pushes_in_flight_ > 0) {
    if (absl::Now() >= expires) {
      if (pause_id_ == pause_id) {
        paused_ = false;
        changed_.SignalAll();
      }
      return absl::DeadlineExceededError("pushes in flight did not finish for the checkpoint");
    }
    changed_.WaitWithDeadline(&mu_, expires);
  }
  if (!paused_ || pause_id_ != pause_id) {
    return absl::AbortedError("the checkpoint pause was replaced");
  }
  return global_step_.value_or(0);
}

absl::StatusOr<ShardEntry> PsShard::Save(uint64_t generation, uint64_t pause_id,
                                         const std::string& model_dir, int64_t step,
                                         int num_shards) {
  Variables copy;
  std::map<std::string, checkpoint::RowPartition> partitions;
  int ps_index;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(std::shared_ptr<const Store> store, StoreFor(generation));
    ExpirePause();
    if (!paused_ || pause_id_ != pause_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("no checkpoint pause ", pause_id, " (it expired or was replaced)"));
    }
    ps_index = ps_index_;
    for (const auto& [name, v] : *store) {
      absl::MutexLock vl(&v->mu);
      copy.floats[name] = v->value;
      const std::string opt = v->optimizer->name();
      for (const auto& [slot, value] : v->slots.by_name) {
        copy.floats[SlotName(name, opt, slot)] = value;
      }
      if (v->partition.index == 0 && v->trainable) {
        copy.ints[SlotName(name, opt, "updates")] = v->updates;
      }
      if (!v->partition.whole()) {
        const checkpoint::RowPartition p{v->partition.full_rows, v->partition.index,
                                         v->partition.count};
        partitions[name] = p;
        for (const auto& [slot, value] : v->slots.by_name) {
          partitions[SlotName(name, opt, slot)] = p;
        }
      }
    }
    if (global_step_) copy.ints["global_step"] = step;
    paused_ = false;
    changed_.SignalAll();
  }
  // Pushes go on while the copy is written.
  return checkpoint::WriteShard(model_dir, step, ps_index, num_shards, copy, partitions,
                                *options_.env);
}

PsShardSizes PsShard::Sizes() const {
  std::shared_ptr<const Store> store;
  {
    absl::MutexLock l(&mu_);
    store = store_;
  }
  PsShardSizes out;
  if (store == nullptr) return out;
  for (const auto& [name, v] : *store) {
    absl::MutexLock vl(&v->mu);
    ++out.variables;
    out.rows += v->value.rows();
    int64_t floats = v->value.size();
    for (const auto& [slot, m] : v->slots.by_name) floats += m.size();
    out.bytes += floats * static_cast<int64_t>(sizeof(float));
  }
  return out;
}

}  // namespace estuary
