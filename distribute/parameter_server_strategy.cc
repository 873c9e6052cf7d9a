#include "distribute/parameter_server_strategy.h"

#include <deque>
#include <functional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {

// Runs calls in the order they were queued on one thread of its own. After
// a call fails, the calls queued behind it are not run: they fail with the
// same status, until Drain hands that status out.
class ParameterServerStrategy::CallQueue {
 public:
  CallQueue() : thread_([this] { Serve(); }) {}
  // Runs the calls still queued, then ends the thread.
  ~CallQueue() {
    {
      absl::MutexLock lock(&mu_);
      shutdown_ = true;
      changed_.SignalAll();
    }
    thread_.join();
  }
  CallQueue(const CallQueue&) = delete;
  CallQueue& operator=(const CallQueue&) = delete;

  // Queues `call`; returns its ticket (> 0).
  int64_t Enqueue(std::function<absl::Status()> call) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(call));
    changed_.SignalAll();
    return ++queued_;
  }

  // Waits until call `ticket` has run (or was dropped); its status (a
  // dropped call's: the failure before it).
  absl::Status Wait(int64_t ticket) {
    absl::MutexLock lock(&mu_);
    while (done_ < ticket) changed_.Wait(&mu_);
    return !error_.ok() && error_ticket_ <= ticket ? error_ : absl::OkStatus();
  }

  // Waits until every queued call has run; the first failure since the
  // last Drain (then forgotten: calls queued later run again).
  absl::Status Drain() {
    absl::MutexLock lock(&mu_);
    while (done_ < queued_) changed_.Wait(&mu_);
    absl::Status error = std::move(error_);
    error_ = absl::OkStatus();
    return error;
  }

 private:
  void Serve() {
    for (;;) {
      std::function<absl::Status()> call;
      bool drop = false;
      {
        absl::MutexLock lock(&mu_);
        while (queue_.empty() && !shutdown_) changed_.Wait(&mu_);
        if (queue_.empty()) return;  // shut down, nothing left
        call = std::move(queue_.front());
        queue_.pop_front();
        drop = !error_.ok();
      }
      absl::Status status = drop ? absl::OkStatus() : call();
      absl::MutexLock lock(&mu_);
      ++done_;
      if (!status.ok() && error_.ok()) {
        error_ = std::move(status);
        error_ticket_ = done_;
      }
      changed_.SignalAll();
    }
  }

  absl::Mutex mu_;
  absl::CondVar changed_;
  std::deque<std::function<absl::Status()>> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;  // tickets handed out
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;    // calls run or dropped, in order
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  int64_t error_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started after the fields above
};


ParameterServerStrategy::ParameterServerStrategy(
    const Model* model, const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
    PsClient* client, ParameterServerStrategyOptions options)
    : model_(model),
      optimizers_(optimizers),
      client_(client),
      options_(std::move(options)),
      calls_(std::make_unique<CallQueue>()) {}

int64_t ParameterServerStrategy::global_step() const {
  absl::MutexLock lock(&step_mu_);
  return global_step_ + unanswered_pushes_;
}

void ParameterServerStrategy::SetGlobalStep(int64_t step) {
  absl::MutexLock lock(&step_mu_);
  global_step_ = step;
  unanswered_pushes_ = 0;
}

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
  SetGlobalStep(step);
  if (options_.on_initialized) RETURN_IF_ERROR(options_.on_initialized(generation_));
  return absl::OkStatus();
}

absl::Status ParameterServerStrategy::Recover(const absl::Status& why) {
  const bool ps_failure = absl::IsUnavailable(why) || absl::IsDeadlineExceeded(why) ||
                          absl::IsFailedPrecondition(why) || absl::IsAborted(why);
  if (!ps_failure) return why;
  // The calls in flight used the old generation: wait for them and drop
  // them (and their errors); the next step pulls again.
  (void)DrainCalls();
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
    ASSIGN_OR_RETURN(const int64_t step,
                     client_->GlobalStep(absl::Now() + options_.call_timeout));
    SetGlobalStep(step);
    spdlog::info("parameter servers at generation {}, global_step {}", generation, step);
  }
  LearnVariables();
  return absl::OkStatus();
}

absl::Status ParameterServerStrategy::Restore() {
  (void)DrainCalls();
  mirror_ = Variables();
  next_mirror_ = Variables();
  if (options_.is_chief) {
    generation_ = options_.generation;
    RETURN_IF_ERROR(InitializeFromCheckpoint());
  } else {
    const absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(uint64_t generation,
                     client_->WaitInitialized(options_.generation,
                                              absl::Now() + options_.init_timeout));
    ASSIGN_OR_RETURN(const int64_t step,
                     client_->GlobalStep(absl::Now() + options_.call_timeout));
    SetGlobalStep(step);
    spdlog::info("ps tasks initialized (generation {}, global_step {}) after {:.3f} sec",
                 generation, step, absl::ToDoubleSeconds(absl::Now() - start));
  }
  LearnVariables();
  return absl::OkStatus();
}

ParameterServerStrategy::~ParameterServerStrategy() {
  absl::Status pushed = DrainCalls();
  if (!pushed.ok()) spdlog::warn("a push at the end of training failed: {}", pushed.message());
}

absl::Status ParameterServerStrategy::DrainCalls() {
  prefetch_ticket_ = 0;
  return calls_->Drain();
}

absl::Status ParameterServerStrategy::FinishPrefetch() {
  if (prefetch_ticket_ == 0) return absl::OkStatus();
  const int64_t ticket = prefetch_ticket_;
  prefetch_ticket_ = 0;
  return calls_->Wait(ticket);
}

absl::Status ParameterServerStrategy::PrefetchVariables(const FeatureMap& next_features) {
  RETURN_IF_ERROR(FinishPrefetch());  // none in flight normally
  ASSIGN_OR_RETURN(auto rows, model_->RowsRead(next_features));
  for (const std::string& name : row_sparse_) rows[name];
  // Behind this worker's pushes queued so far. dense_ changes only in
  // Recover, after the queue has drained.
  prefetch_ticket_ = calls_->Enqueue([this, rows = std::move(rows)] {
    return client_->Pull(dense_, rows, &next_mirror_, absl::Now() + options_.call_timeout);
  });
  return absl::OkStatus();
}

absl::StatusOr<const Variables*> ParameterServerStrategy::VariablesForStep(
    const FeatureMap& features) {
  if (prefetch_ticket_ != 0) {
    absl::Status st = FinishPrefetch();
    if (st.ok()) {
      std::swap(mirror_, next_mirror_);
      return &mirror_;
    }
    // Pull again below (after recovering, if the PS tasks failed).
    (void)DrainCalls();
    RETURN_IF_ERROR(Recover(st));
  }
  // While the last push is still in flight.
  ASSIGN_OR_RETURN(auto rows, model_->RowsRead(features));
  // Every row-sparse variable is in the mirror, with no rows if this batch
  // reads none (Forward looks every variable up).
  for (const std::string& name : row_sparse_) rows[name];
  // This worker's pushes so far are applied before the pull.
  absl::Status pushed = DrainCalls();
  if (!pushed.ok()) RETURN_IF_ERROR(Recover(pushed));
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
  ReplicaGradients& replica = replicas->front();
  // The push sends views of the gradients: they live in the call.
  auto grads = std::make_shared<Gradients>(std::move(replica.grads));
  replica.grads.Clear();
  {
    absl::MutexLock lock(&step_mu_);
    ++unanswered_pushes_;
  }
  calls_->Enqueue([this, grads = std::move(grads)]() -> absl::Status {
    absl::StatusOr<int64_t> step = client_->Push(*grads, absl::Now() + options_.call_timeout);
    // The gradients were computed from variables of a generation that is
    // gone (or of one that may be): Recover drops them.
    RETURN_IF_ERROR(step.status());
    absl::MutexLock lock(&step_mu_);
    global_step_ = *step;
    if (unanswered_pushes_ > 0) --unanswered_pushes_;
    return absl::OkStatus();
  });
  return replica.loss;
}

absl::Status ParameterServerStrategy::WaitForPushes() {
  (void)FinishPrefetch();
  absl::Status pushed = DrainCalls();
  return pushed.ok() ? pushed : Recover(pushed);
}

absl::StatusOr<std::string> ParameterServerStrategy::SaveCheckpoint() {
  if (!options_.is_chief) {
    return absl::FailedPreconditionError("only the chief saves checkpoints");
  }
  RETURN_IF_ERROR(WaitForPushes());
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
  if (step > global_step()) SetGlobalStep(step);
  return prefix;
}

}  // namespace estuary
