// What an Estimator trains: a model maps a batch of features to logits and
// back-propagates d(loss)/d(logits) into variable gradients. Premade
// estimators (linear, DNN, DNN+linear, baseline) and custom models (the C++
// counterpart of a model_fn) implement it; a Strategy (strategy.h) owns the
// variables and optimizers, the Estimator the head, checkpoints and
// summaries.
//
// Re-entrant: implementations are immutable after construction and hold no
// variables and no per-batch state. Variables are passed in by the caller
// (read-only), per-batch state lives in the ForwardState a Forward call
// returns, and whatever a step changes comes back in Gradients. So one
// const Model can be driven by several threads at once, each with its own
// Variables (or sharing one read-only), e.g. replicas of a mirrored
// strategy.
#ifndef ESTUARY_ESTIMATOR_MODEL_H_
#define ESTUARY_ESTIMATOR_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "common/variables.h"

namespace estuary {

// TensorBoard summaries a model adds to a training step's (TF's premade
// estimators' extra summaries: tf.compat.v1.summary.scalar / histogram in
// their model functions), written by the SummarySaverHook next to "loss".
struct ModelSummaries {
  std::vector<std::pair<std::string, double>> scalars;
  std::vector<std::pair<std::string, std::vector<double>>> histograms;

  // TF's _add_hidden_layer_summary (canned/dnn.py): the scalar
  // "<tag>/fraction_of_zero_values" (tf.math.zero_fraction: exact zeros /
  // size) and the histogram "<tag>/activation" of `value`'s elements.
  void AddLayer(const std::string& tag, const RowMatrixXf& value) {
    const int64_t n = value.size();
    const int64_t zeros = n == 0 ? 0 : (value.array() == 0.0f).count();
    scalars.emplace_back(tag + "/fraction_of_zero_values",
                         n == 0 ? 0.0 : static_cast<float>(zeros) / static_cast<float>(n));
    histograms.emplace_back(tag + "/activation",
                            std::vector<double>(value.data(), value.data() + n));
  }
};

class Model {
 public:
  // Whatever Backward needs from the forward pass.
  class ForwardState {
   public:
    virtual ~ForwardState() = default;
  };

  virtual ~Model() = default;

  virtual int64_t logits_dimension() const = 0;

  // Adds the model's variables with their initial values to vars->floats;
  // `seed` makes the initialisation deterministic (RunConfig's
  // tf_random_seed).
  virtual absl::Status InitVariables(uint64_t seed, Variables* vars) const = 0;

  // The optimizer group a variable belongs to ("linear" and "dnn" for the
  // combined estimator; "" for one optimizer).
  virtual std::string OptimizerGroup(const std::string& variable) const { return ""; }

  // The rows of row-sparse variables (embedding tables, a linear model's
  // categorical weights) that Forward on `features` reads, distinct and
  // ascending, by variable name; variables not listed are read whole. A
  // strategy that keeps variables elsewhere (parameter servers) fetches
  // exactly these rows before Forward. Default: none (every variable whole).
  // InvalidArgument from the feature columns.
  virtual absl::StatusOr<std::map<std::string, std::vector<int64_t>>> RowsRead(
      const FeatureMap& features) const {
    return std::map<std::string, std::vector<int64_t>>{};
  }

  // The variables RowsRead may name (read and updated by rows), so a
  // strategy can place them before it sees a batch. Default: none.
  virtual std::vector<std::string> RowSparseVariables() const { return {}; }

  // [batch, logits_dimension], reading `vars`. `training` enables dropout
  // and batch-norm batch statistics; `rng` drives dropout. Thread-safe for
  // distinct `rng` and `state`.
  virtual absl::StatusOr<RowMatrixXf> Forward(const FeatureMap& features, const Variables& vars,
                                              bool training, std::mt19937_64* rng,
                                              std::unique_ptr<ForwardState>* state) const = 0;

  // Adds d(loss)/d(variable) for every trainable variable to grads->dense
  // or grads->sparse given d(loss)/d(logits), and the new values of
  // non-trainable variables the training forward pass computed (batch-norm
  // moving statistics) to grads->assign. `vars` must be the variables the
  // Forward that made `state` read, unchanged since. Thread-safe for
  // distinct `grads`.
  virtual absl::Status Backward(const ForwardState& state, const RowMatrixXf& dlogits,
                                const Variables& vars, Gradients* grads) const = 0;

  // Adds the summaries TF's estimator of this kind writes for a training
  // step to *out: values of the Forward (training) that made `state`, and
  // of `vars`, the variables it read (before the step's update), e.g.
  // "dnn/hiddenlayer_0/fraction_of_zero_values" or the linear "bias".
  // Called only on the steps whose summaries are saved. Thread-safe for
  // distinct `out`. Default: none.
  virtual void Summarize(const ForwardState& state, const Variables& vars,
                         ModelSummaries* out) const {}
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_MODEL_H_
