#include "estimator/train_loop.h"

#include <cmath>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace estuary {

absl::StatusOr<double> ComputeGradients(const Model& model, const Head& head, const Batch& batch,
                                        const Variables& vars, int64_t global_step,
                                        std::mt19937_64* rng, Gradients* grads) {
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
  grads->Clear();
  RETURN_IF_ERROR(model.Backward(*state, loss.dlogits, vars, grads));
  return loss.training_loss;
}

absl::Status RunTrainLoop(const Model& model, const Head& head, Pipeline* input,
                          Strategy* strategy, const std::vector<TrainingHook*>& hooks,
                          std::mt19937_64* rng) {
  for (TrainingHook* hook : hooks) RETURN_IF_ERROR(hook->Begin(strategy->global_step()));
  Gradients grads;
  RunContext run;
  const bool read_ahead = strategy->PrefetchesVariables();
  std::optional<Batch> next;  // read ahead (read_ahead only)
  bool have_next = false;
  while (!run.stop_requested()) {
    std::optional<Batch> batch;
    if (have_next) {
      batch = std::move(next);
      have_next = false;
    } else {
      ASSIGN_OR_RETURN(batch, input->Next());
    }
    if (!batch.has_value()) break;  // the input ran out
    for (TrainingHook* hook : hooks) RETURN_IF_ERROR(hook->BeforeStep(strategy->global_step()));
    ASSIGN_OR_RETURN(const Variables* vars, strategy->VariablesForStep(batch->features));
    if (read_ahead) {
      ASSIGN_OR_RETURN(next, input->Next());
      have_next = true;
      if (next.has_value()) RETURN_IF_ERROR(strategy->PrefetchVariables(next->features));
    }
    ASSIGN_OR_RETURN(double loss, ComputeGradients(model, head, *batch, *vars,
                                                   strategy->global_step(), rng, &grads));
    RETURN_IF_ERROR(strategy->ApplyGradients(&grads));
    const StepInfo step{strategy->global_step(), loss, batch->batch_size};
    for (TrainingHook* hook : hooks) RETURN_IF_ERROR(hook->AfterStep(step, &run));
  }
  for (TrainingHook* hook : hooks) RETURN_IF_ERROR(hook->End(strategy->global_step()));
  return absl::OkStatus();
}

}  // namespace estuary
