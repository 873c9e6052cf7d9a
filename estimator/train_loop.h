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
// InvalidArgument for a batch without labels, for a NaN/inf loss ("NaN
// loss during training ..."), and from the model and head.
absl::StatusOr<double> ComputeGradients(const Model& model, const Head& head, const Batch& batch,
                                        const Variables& vars, int64_t global_step,
                                        std::mt19937_64* rng, Gradients* grads);

// Runs steps until `input` runs out or a hook requests a stop: per batch,
// hooks' BeforeStep, strategy->VariablesForStep, ComputeGradients,
// strategy->ApplyGradients, hooks' AfterStep; hooks' Begin before and End
// after. A strategy that PrefetchesVariables() gets the next batch's
// features (PrefetchVariables) right after VariablesForStep, before the
// step computes. Not thread-safe: the strategy, hooks and rng belong to this call.
// Errors: the first of the input, the step body, the strategy and the hooks
// (training stops there; End is not called).
absl::Status RunTrainLoop(const Model& model, const Head& head, Pipeline* input,
                          Strategy* strategy, const std::vector<TrainingHook*>& hooks,
                          std::mt19937_64* rng);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_TRAIN_LOOP_H_
