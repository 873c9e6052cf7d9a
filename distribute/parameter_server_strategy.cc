#include "distribute/parameter_server_strategy.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {


ParameterServerStrategy::ParameterServerStrategy(
    const Model* model, const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
    PsClient* client, ParameterServerStrategyOptions options)
    : model_(model), optimizers_(optimizers), client_(client), options_(std::move(options)) {}

std::vector<PsVariableInit> ParameterServerStrategy::InitsFromLoaded(
    const Model& model, const std::map<std::string, std::unique_ptr<Optimizer>>& optimizers,
    LoadedModel loaded) {
  std::set<std::string> row_sparse;
  for (std::string& name : model.RowSparseVariables()) row_sparse.insert(std::move(name));
  std::vector<PsVariableInit> inits;
  inits.reserve(loaded.vars.floats.size());
  for (auto& [name, value] : loaded.vars.floats) {
    const Optimizer& optimizer = OptimizerFor(model, optimizers, name);
    PsVariableInit init;
    init.name = name;
    init.value = std::move(value);
    init.row_sparse = row_sparse.count(name) > 0;
    init.optimizer = optimizer.config();
    // Slots saved as "<variable>/<optimizer>/<slot>" (one process or a
    // cluster); none: the PS creates them.
    const std::string prefix = SlotName(name, optimizer.name(), "");
    for (auto it = loaded.others.lower_bound(prefix);
         it != loaded.others.end() && absl::StartsWith(it->first, prefix);) {
      init.slots[it->first.substr(prefix.size())] = std::move(it->second);
      it = loaded.others.erase(it);
    }
    // A cluster's checkpoint counts each variable's updates; one process
    // applies every variable at every step (updates = global_step).
    auto updates = loaded.other_ints.find(SlotName(name, optimizer.name(), "updates"));
    init.updates =
        updates != loaded.other_ints.end() ? updates->second : loaded.global_step;
    inits.push_back(std::move(init));
  }
  return inits;
}

void ParameterServerStrategy::LearnVariables() {
  const Placement placement = client_->placement();
  row_sparse_.clear();
  dense_.clear();
  std::set<std::string> sparse_names;
  for (std::string& name : model_->RowSparseVariables()) sparse_names.insert(std::move(name));
  std::set<std::string> all(placement.row_partitioned);
  for (const auto& [name, ps] : placement.dense_ps) all.insert(name);
  for (const std::string& name : all) {
    if (name == kGlobalStepName) continue;
    if (sparse_names.count(name) > 0) {
      row_sparse_.insert(name);
    } else {
      dense_.push_back(name);
    }
  }
}

absl::Status ParameterServerStrategy::InitializeFromCheckpoint() {
  ModelCheckpointOptions load = options_.checkpoint;
  load.init_if_missing = true;
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(*model_, load));
  const int64_t step = loaded.global_step;
  std::vector<PsVariableInit> inits = InitsFromLoaded(*model_, *optimizers_, std::move(loaded));
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(
      client_->Initialize(generation_, inits, step, absl::Now() + options_.init_timeout));
  spdlog::info("initialized {} ps tasks with {} variables at global_step {} (generation {}, "
               "{:.3f} sec)",
               client_->num_ps(), inits.size(), step, generation_,
               absl::ToDoubleSeconds(absl::Now() - start));
  global_step_ = step;
  if (options_.on_initialized) RETURN_IF_ERROR(options_.on_initialized(generation_));
  return absl::OkStatus();
}

absl::Status ParameterServerStrategy::Recover(const absl::Status& why) {
  const bool ps_failure = absl::IsUnavailable(why) || absl::IsDeadlineExceeded(why) ||
                          absl::IsFailedPrecondition(why) || absl::IsAborted(why);
  if (!ps_failure) return why;
  // A prefetch in flight read the old generation: wait for it and drop it
  // (the next step pulls again), as what the last push pulled.
  (void)FinishPrefetch();
  next_rows_.reset();
  mirror_ready_ = false;
  if (options_.is_chief) {
    ++generation_;
    spdlog::warn("parameter servers failed ({}); reinitialising them from the latest "
                 "checkpoint as generation {}",
                 why.message(), generation_);
    RETURN_IF_ERROR(InitializeFromCheckpoint());
  } else {
    // Aborted / FailedPrecondition: the chief is reinitialising (or a PS
    // came back empty), so a newer generation is coming. Otherwise (a PS
    // is down, or slow) wait for every PS to hold the current one again;
    // a PS that comes back empty waits for the chief's newer one.
    const uint64_t current = client_->generation();
    const uint64_t min = absl::IsAborted(why) || absl::IsFailedPrecondition(why) ? current + 1
                                                                                : current;
    spdlog::warn("parameter servers failed ({}); waiting for generation >= {}", why.message(),
                 min);
    ASSIGN_OR_RETURN(uint64_t generation,
                     client_->WaitInitialized(min, absl::Now() + options_.init_timeout));
    ASSIGN_OR_RETURN(global_step_, client_->GlobalStep(absl::Now() + options_.call_timeout));
    spdlog::info("parameter servers at generation {}, global_step {}", generation,
                 global_step_);
  }
  LearnVariables();
  return absl::OkStatus();
}

absl::Status ParameterServerStrategy::Restore() {
  (void)FinishPrefetch();
  mirror_ = Variables();
  next_mirror_ = Variables();
  next_rows_.reset();
  mirror_ready_ = false;
  if (options_.is_chief) {
    generation_ = options_.generation;
    RETURN_IF_ERROR(InitializeFromCheckpoint());
  } else {
    const absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(uint64_t generation,
                     client_->WaitInitialized(options_.generation,
                                              absl::Now() + options_.init_timeout));
    ASSIGN_OR_RETURN(global_step_, client_->GlobalStep(absl::Now() + options_.call_timeout));
    spdlog::info("ps tasks initialized (generation {}, global_step {}) after {:.3f} sec",
                 generation, global_step_, absl::ToDoubleSeconds(absl::Now() - start));
  }
  LearnVariables();
  return absl::OkStatus();
}

ParameterServerStrategy::~ParameterServerStrategy() { (void)FinishPrefetch(); }

absl::Duration ParameterServerStrategy::TakeCommunicationTime() {
  return std::exchange(communication_, absl::ZeroDuration());
}

absl::Status ParameterServerStrategy::FinishPrefetch() {
  if (!prefetch_.valid()) return absl::OkStatus();
  return prefetch_.get();
}

absl::Status ParameterServerStrategy::PrefetchVariables(const FeatureMap& next_features) {
  RETURN_IF_ERROR(FinishPrefetch());  // none in flight normally
  ASSIGN_OR_RETURN(auto rows, model_->RowsRead(next_features));
  // Every row-sparse variable is in the mirror, with no rows if this batch
  // reads none (Forward looks every variable up).
  for (const std::string& name : row_sparse_) rows[name];
  if (!options_.prefetch) {  // pull_with_push
    next_rows_ = std::move(rows);
    return absl::OkStatus();
  }
  prefetch_ = std::async(std::launch::async, [this, dense = dense_, rows = std::move(rows)] {
    return client_->Pull(dense, rows, &next_mirror_, absl::Now() + options_.call_timeout);
  });
  return absl::OkStatus();
}

absl::StatusOr<const Variables*> ParameterServerStrategy::VariablesForStep(
    const FeatureMap& features) {
  const CommunicationTimer timer(&communication_);  // all of it waits on the PS tasks
  if (mirror_ready_) {  // pulled with the last push
    mirror_ready_ = false;
    return &mirror_;
  }
  if (prefetch_.valid()) {
    absl::Status st = FinishPrefetch();
    if (st.ok()) {
      std::swap(mirror_, next_mirror_);
      return &mirror_;
    }
    // Pull again below (after recovering, if the PS tasks failed).
    RETURN_IF_ERROR(Recover(st));
  }
  ASSIGN_OR_RETURN(auto rows, model_->RowsRead(features));
  for (const std::string& name : row_sparse_) rows[name];
  for (int recoveries = 0;; ++recoveries) {
    absl::Status st = client_->Pull(dense_, rows, &mirror_, absl::Now() + options_.call_timeout);
    if (st.ok()) return &mirror_;
    if (recoveries == options_.max_recoveries_per_step) return st;
    RETURN_IF_ERROR(Recover(st));
  }
}

absl::StatusOr<double> ParameterServerStrategy::ApplyGradients(
    std::vector<ReplicaGradients>* replicas) {
  if (replicas->size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter_server applies one replica's gradients per step, not ", replicas->size()));
  }
  const ReplicaGradients& replica = replicas->front();
  const CommunicationTimer timer(&communication_);  // the optimizer runs on the PS tasks
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  absl::StatusOr<int64_t> step;
  if (next_rows_.has_value()) {
    step = client_->PushPull(replica.grads, dense_, *next_rows_, &mirror_, deadline);
    next_rows_.reset();
    mirror_ready_ = step.ok();
  } else {
    step = client_->Push(replica.grads, deadline);
  }
  if (step.ok()) {
    global_step_ = *step;
    return replica.loss;
  }
  // The gradients were computed from variables of a generation that is
  // gone (or of one that may be): they are dropped.
  RETURN_IF_ERROR(Recover(step.status()));
  return replica.loss;
}

absl::StatusOr<std::string> ParameterServerStrategy::SaveCheckpoint() {
  if (!options_.is_chief) {
    return absl::FailedPreconditionError("only the chief saves checkpoints");
  }
  absl::StatusOr<std::vector<ShardEntry>> saved;
  int64_t step = 0;
  for (int recoveries = 0;; ++recoveries) {
    saved = client_->SaveShards(options_.checkpoint.model_dir,
                                absl::Now() + options_.init_timeout, &step);
    if (saved.ok() || recoveries == options_.max_recoveries_per_step) break;
    // A PS died while saving: recover (from the latest checkpoint), then
    // save what the PS tasks hold now.
    RETURN_IF_ERROR(Recover(saved.status()));
  }
  RETURN_IF_ERROR(saved.status());
  std::vector<ShardEntry>& shards = *saved;
  checkpoint::SaveOptions save;
  save.keep_checkpoint_max = options_.keep_checkpoint_max;
  save.may_delete = options_.may_delete;
  ASSIGN_OR_RETURN(std::string prefix,
                   checkpoint::CommitCheckpoint(options_.checkpoint.model_dir, step, shards, save));
  if (step > global_step_) global_step_ = step;
  return prefix;
}

}  // namespace estuary
