// The training loop every strategy shares: the step body (one batch ->
// gradients) and the loop around it with hooks. See strategy.h for the
// seam and hooks.h for what runs around each step.
#ifndef ESTUARY_ESTIMATOR_TRAIN_LOOP_H_
#define ESTUARY_ESTIMATOR_TRAIN_LOOP_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "common/variables.h"
#include "estimator/data/pipeline.h"
#include "estimator/head/head.h"
#include "estimator/hooks.h"
#include "estimator/model.h"
#include "estimator/strategy.h"

namespace estuary {

// The step body: Model::Forward on `batch` reading `vars` (training mode,
// dropout from *rng), the head's training loss, a NaN check, and
// Model::Backward into *grads (cleared first). Returns the loss. Touches
// nothing but *rng and *grads, so replicas may run it concurrently on one
// const Model and Head. `global_step` only names the step in errors.
// With `summaries`, also the model's summaries of this forward pass
// (Model::Summarize) into it. InvalidArgument for a batch without labels,
// for a NaN/inf loss ("NaN loss during training ..."), and from the model
// and head. With `observer` (Strategy::ObserveStep), tells it this
// replica's loss before Backward, each gradient the model reports final
// during Backward (Gradients::on_final), and Done after it.
absl::StatusOr<double> ComputeGradients(const Model& model, const Head& head, const Batch& batch,
                                        const Variables& vars, int64_t global_step,
                                        std::mt19937_64* rng, Gradients* grads,
                                        ModelSummaries* summaries = nullptr,
                                        GradientObserver* observer = nullptr, int replica = 0);

// Runs steps until `input` runs out or a hook requests a stop. Per step,
// with N = strategy->num_local_replicas(): reads N batches (fewer left:
// strategy->EndOfInput() once, the partial step is dropped and training
// ends), hooks' BeforeStep, strategy->VariablesForStep(replica 0's
// features), ComputeGradients for the N replicas in parallel (replica 0 on
// the calling thread, the others on threads this call owns; replica i >= 1
// draws dropout from its own mt19937_64 seeded once from *rng at the
// start; replica 0 adds the model's summaries when a hook WantsSummaries
// for the step), strategy->ApplyGradients(all N), hooks' AfterStep with the
// loss ApplyGradients returned, the sum of the N batch sizes, those
// summaries and the step's time split (StepPhases: input / compute /
// communicate / apply). Hooks' Begin
// before and End after. ApplyGradients' OutOfRange (a peer's input ran
// out) ends training as if the input had run out. A strategy that
// PrefetchesVariables() gets the next step's replica-0 features
// (PrefetchVariables) right after VariablesForStep, before the step
// computes. Not thread-safe: the strategy, hooks and rng belong to this
// call. Errors: the first of the input, the step body (lowest replica
// first), the strategy and the hooks (training stops there; End is not
// called).
absl::Status RunTrainLoop(const Model& model, const Head& head, Pipeline* input,
                          Strategy* strategy, const std::vector<TrainingHook*>& hooks,
                          std::mt19937_64* rng);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_TRAIN_LOOP_H_
