#include "estimator/train_loop.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "estimator/replica_threads.h"

namespace estuary {

absl::StatusOr<double> ComputeGradients(const Model& model, const Head& head, const Batch& batch,
                                        const Variables& vars, int64_t global_step,
                                        std::mt19937_64* rng, Gradients* grads,
                                        ModelSummaries* summaries, GradientObserver* observer,
                                        int replica) {
  if (!batch.has_labels) {
    return absl::InvalidArgumentError("training needs labels: set label_key in the input");
  }
  std::unique_ptr<Model::ForwardState> state;
  ASSIGN_OR_RETURN(RowMatrixXf logits, model.Forward(batch.features, vars, true, rng, &state));
  ASSIGN_OR_RETURN(const Tensor* weights, head.FindWeights(batch.features));
  ASSIGN_OR_RETURN(HeadLoss loss, head.Loss(logits, batch.labels, weights));
  if (!std::isfinite(loss.training_loss)) {
    return absl::InvalidArgumentError(
        absl::StrCat("NaN loss during training (global_step ", global_step,
                     "): lower the learning rate or check the input for NaN/inf values"));
  }
  if (summaries != nullptr) model.Summarize(*state, vars, summaries);
  grads->Clear();
  if (observer == nullptr) {
    RETURN_IF_ERROR(model.Backward(*state, loss.dlogits, vars, grads));
    return loss.training_loss;
  }
  observer->Loss(replica, loss.training_loss, batch.batch_size);
  grads->on_final = [observer, replica](const std::string& name, const RowMatrixXf& g) {
    observer->Final(replica, name, g);
  };
  absl::Status backward = model.Backward(*state, loss.dlogits, vars, grads);
  grads->on_final = nullptr;
  RETURN_IF_ERROR(backward);
  observer->Done(replica, *grads);
  return loss.training_loss;
}


absl::Status RunTrainLoop(const Model& model, const Head& head, Pipeline* input,
                          Strategy* strategy, const std::vector<TrainingHook*>& hooks,
                          std::mt19937_64* rng) {
  const int n = strategy->num_local_replicas();
  if (n < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the strategy has ", n, " local replicas; it needs at least 1"));
  }
  for (TrainingHook* hook : hooks) RETURN_IF_ERROR(hook->Begin(strategy->global_step()));
  // Replica 0 draws from *rng (one replica: exactly as before replicas
  // existed); replica i >= 1 from its own generator.
  std::vector<std::mt19937_64> rngs;
  for (int i = 1; i < n; ++i) rngs.emplace_back((*rng)());
  const bool read_ahead = strategy->PrefetchesVariables();
  // Replicas 1..n-1 compute on threads of their own; with read_ahead one
  // more thread reads the next step's batches and calls PrefetchVariables
  // while this step computes (off the step's critical path).
  const int helpers = n + (read_ahead ? 1 : 0);
  std::unique_ptr<ReplicaThreads> threads;
  if (helpers > 1) threads = std::make_unique<ReplicaThreads>(helpers);
  std::vector<ReplicaGradients> replicas(n);
  std::vector<absl::Status> statuses(n);
  // One step's batches; false when the input had fewer than n left.
  auto read_step = [&](std::vector<Batch>* out) -> absl::StatusOr<bool> {
    out->clear();
    while (static_cast<int>(out->size()) < n) {
      ASSIGN_OR_RETURN(std::optional<Batch> batch, input->Next());
      if (!batch.has_value()) return false;
      out->push_back(*std::move(batch));
    }
    return true;
  };
  RunContext run;
  std::vector<Batch> batches;
  std::vector<Batch> next;  // read ahead (read_ahead only)
  bool have_next = false;
  bool next_complete = false;
  while (!run.stop_requested()) {
    StepPhases phases;
    const absl::Time step_start = absl::Now();
    bool complete = false;
    if (have_next) {
      batches.swap(next);
      complete = next_complete;
      have_next = false;
    } else {
      ASSIGN_OR_RETURN(complete, read_step(&batches));
    }
    absl::Time mark = absl::Now();
    phases.input = mark - step_start;
    if (!complete) {  // the input ran out
      RETURN_IF_ERROR(strategy->EndOfInput());
      break;
    }
    const int64_t global_step = strategy->global_step();
    bool want_summaries = false;
    for (TrainingHook* hook : hooks) {
      RETURN_IF_ERROR(hook->BeforeStep(global_step));
      want_summaries = want_summaries || hook->WantsSummaries(global_step);
    }
    ModelSummaries summaries;
    mark = absl::Now();
    ASSIGN_OR_RETURN(const Variables* vars, strategy->VariablesForStep(batches[0].features));
    absl::Duration strategy_time = absl::Now() - mark;
    // read_ahead: the next step's batches and PrefetchVariables, on the
    // last helper thread while the replicas compute.
    absl::Status read_ahead_status;
    const auto read_next = [&] {
      absl::StatusOr<bool> read = read_step(&next);
      if (!read.ok()) {
        read_ahead_status = read.status();
        return;
      }
      next_complete = *read;
      have_next = true;
      if (next_complete) read_ahead_status = strategy->PrefetchVariables(next[0].features);
    };
    GradientObserver* const observer = strategy->ObserveStep();
    const std::function<void(int)> compute = [&](int i) {
      if (i == n) {
        read_next();
        return;
      }
      std::mt19937_64* replica_rng = i == 0 ? rng : &rngs[i - 1];
      absl::StatusOr<double> loss =
          ComputeGradients(model, head, batches[i], *vars, global_step, replica_rng,
                           &replicas[i].grads, i == 0 && want_summaries ? &summaries : nullptr,
                           observer, i);
      statuses[i] = loss.status();
      replicas[i].loss = loss.ok() ? *loss : 0;
      replicas[i].batch_size = batches[i].batch_size;
    };
    mark = absl::Now();
    if (threads != nullptr) {
      threads->Run(compute);
    } else {
      compute(0);
    }
    const absl::Time computed = absl::Now();
    phases.compute = computed - mark;
    for (const absl::Status& status : statuses) RETURN_IF_ERROR(status);
    RETURN_IF_ERROR(read_ahead_status);
    absl::StatusOr<double> loss = strategy->ApplyGradients(&replicas);
    const absl::Time applied = absl::Now();
    strategy_time += applied - computed;
    phases.communicate =
        std::min(std::max(strategy->TakeCommunicationTime(), absl::ZeroDuration()), strategy_time);
    phases.apply = strategy_time - phases.communicate;
    phases.total = applied - step_start;
    if (absl::IsOutOfRange(loss.status())) {
      spdlog::info("training ends at global_step {}: {}", strategy->global_step(),
                   loss.status().message());
      break;
    }
    RETURN_IF_ERROR(loss.status());
    int64_t examples = 0;
    for (const ReplicaGradients& r : replicas) examples += r.batch_size;
    const StepInfo step{strategy->global_step(), *loss, examples,
                        want_summaries ? &summaries : nullptr, phases};
    for (TrainingHook* hook : hooks) RETURN_IF_ERROR(hook->AfterStep(step, &run));
  }
  for (TrainingHook* hook : hooks) RETURN_IF_ERROR(hook->End(strategy->global_step()));
  return absl::OkStatus();
}

}  // namespace estuary
