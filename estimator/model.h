// What an Estimator trains: a model maps a batch of features to logits and
// back-propagates d(loss)/d(logits) into variable gradients. Premade
// estimators (linear, DNN, DNN+linear, baseline) and custom models (the C++
// counterpart of a model_fn) implement it; the Estimator owns variables,
// optimizers, the head, checkpoints and summaries.
//
// Implementations are immutable after construction and thread-compatible:
// per-batch state lives in the ForwardState a Forward call returns.
#ifndef ESTUARY_ESTIMATOR_MODEL_H_
#define ESTUARY_ESTIMATOR_MODEL_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "estimator/variables.h"

namespace estuary {

class Model {
 public:
  // Whatever Backward needs from the forward pass.
  class ForwardState {
   public:
    virtual ~ForwardState() = default;
  };

  virtual ~Model() = default;

  virtual int64_t logits_dimension() const = 0;

  // Adds the model's variables with their initial values; `seed` makes the
  // initialisation deterministic (RunConfig's tf_random_seed).
  virtual absl::Status InitVariables(uint64_t seed, Variables* vars) const = 0;

  // The optimizer group a variable belongs to ("linear" and "dnn" for the
  // combined estimator; "" for one optimizer).
  virtual std::string OptimizerGroup(const std::string& variable) const { return ""; }

  // [batch, logits_dimension]. `training` enables dropout and batch-norm
  // statistics; `rng` drives dropout.
  virtual absl::StatusOr<RowMatrixXf> Forward(const FeatureMap& features, const Variables& vars,
                                              bool training, std::mt19937_64* rng,
                                              std::unique_ptr<ForwardState>* state) const = 0;

  // Adds d(loss)/d(variable) for every trainable variable given
  // d(loss)/d(logits). May update non-trainable variables (batch-norm moving
  // averages) in `vars`.
  virtual absl::Status Backward(const ForwardState& state, const RowMatrixXf& dlogits,
                                Variables* vars, Gradients* grads) const = 0;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_MODEL_H_
