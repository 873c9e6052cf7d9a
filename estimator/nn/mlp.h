// The feed-forward network of TF's DNN estimators (canned/dnn.py,
// _DNNModelV2): per hidden layer i, Dense(units, activation) named
// "dnn/hiddenlayer_i", then Dropout(rate) in training when dropout is set,
// then BatchNormalization(momentum=0.999) named
// "dnn/hiddenlayer_i/batchnorm_i" when batch_norm is set; then the linear
// Dense "dnn/logits". Kernels are glorot_uniform, biases zeros.
//
// Variable names (as in TF 2.15 checkpoints):
//   dnn/hiddenlayer_<i>/kernel [in, units]      dnn/hiddenlayer_<i>/bias [1, units]
//   dnn/hiddenlayer_<i>/batchnorm_<i>/{gamma,beta}                 (trainable)
//   dnn/hiddenlayer_<i>/batchnorm_<i>/{moving_mean,moving_variance} (not trainable)
//   dnn/logits/kernel [last, logits_dimension]  dnn/logits/bias [1, logits_dimension]
// (TF stores biases and batch-norm vectors as rank 1; here they are [1, n].)
//
// Re-entrant: an Mlp holds only its configuration. The variables live in
// the caller's map (read by Forward and Backward, never copied or written)
// and everything one batch needs between Forward and Backward lives in the
// caller's MlpState, so one const Mlp serves any number of threads, each
// with its own variables and state (e.g. replicas). The ComputeContext may
// be shared.
#ifndef ESTUARY_ESTIMATOR_NN_MLP_H_
#define ESTUARY_ESTIMATOR_NN_MLP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "estimator/nn/activation.h"
#include "estimator/nn/layers.h"

namespace estuary::nn {

struct MlpConfig {
  std::vector<int64_t> hidden_units;  // each >= 1
  Activation activation = Activation::kRelu;
  float dropout = 0.0f;  // [0, 1); 0 = no dropout layer
  bool batch_norm = false;
  int64_t logits_dimension = 1;
};

// The variables an Mlp reads, by TF name (Variables::floats).
using VariableMap = std::map<std::string, RowMatrixXf>;

struct MlpGradients {
  std::map<std::string, RowMatrixXf> by_name;  // one per trainable variable
  RowMatrixXf dx;                              // dL/dinput
  // Training with batch_norm: the moving statistics after this batch, by
  // name (to be assigned to the non-trainable variables).
  std::map<std::string, RowMatrixXf> moving;
};

// What Backward needs from one Forward (activation caches). Owned by the
// caller; one per batch in flight.
struct MlpState {
  struct Layer {
    RowMatrixXf input, z, a, mask;
    BatchNorm::Cache bn;
  };
  std::vector<Layer> hidden;
  RowMatrixXf logits_input;
  bool valid = false;  // set by a successful Forward
};

class Mlp {
 public:
  // InvalidArgument for a bad config or input_dim < 1. GEMMs use `ctx`
  // (may be null: single-threaded; not owned; must outlive the Mlp).
  static absl::StatusOr<std::unique_ptr<Mlp>> Create(const MlpConfig& config, int64_t input_dim,
                                                     const ComputeContext* ctx = nullptr);

  const MlpConfig& config() const { return config_; }
  int64_t input_dim() const { return input_dim_; }

  // Adds every variable (trainable or not) with its initial value to
  // `vars`. Kernels are drawn from Rng(seed) in layer order (hidden layers,
  // then logits); biases and beta are zeros, gamma ones, moving_mean zeros,
  // moving_variance ones.
  void InitVariables(uint64_t seed, VariableMap* vars) const;
  // Names of every variable, and of the trainable ones, in layer order.
  const std::vector<std::string>& variable_names() const { return all_; }
  const std::vector<std::string>& trainable_variable_names() const { return trainable_; }

  // logits [batch, logits_dimension] for x [batch, input_dim], reading the
  // variables from `vars`. training enables dropout (drawing from *rng,
  // which may be null when dropout is 0) and batch statistics. Fills
  // *state for Backward. InvalidArgument on a shape mismatch or a missing
  // variable.
  absl::StatusOr<RowMatrixXf> Forward(const VariableMap& vars, const RowMatrixXf& x, bool training,
                                      Rng* rng, MlpState* state) const;

  // Gradients of every trainable variable and of the input, given
  // dlogits = dL/dlogits for the Forward that filled `state`; `vars` must
  // be the variables that Forward read, unchanged since. FailedPrecondition
  // without a successful Forward, InvalidArgument on a shape mismatch.
  // Without `input_gradient`, dx is left empty (saves the first layer's
  // dy W^T GEMM when the input is not trainable). `on_final` (optional) is
  // told each layer's gradients as soon as they are computed, top layer
  // first (Gradients::on_final).
  absl::StatusOr<MlpGradients> Backward(
      const VariableMap& vars, const MlpState& state, const RowMatrixXf& dlogits,
      bool input_gradient = true,
      const std::function<void(const std::string&, const RowMatrixXf&)>& on_final = {}) const;

 private:
  struct Layer {
    std::string prefix;  // "dnn/hiddenlayer_0"
    std::string kernel, bias;
    bool batch_norm = false;
    std::string gamma, beta, moving_mean, moving_variance;
  };
  Mlp() = default;

  MlpConfig config_;
  int64_t input_dim_ = 0;
  std::vector<std::string> all_, trainable_;
  std::vector<Layer> hidden_;
  Layer logits_;
  BatchNorm bn_;
  const ComputeContext* ctx_ = nullptr;
};

}  // namespace estuary::nn

#endif  // ESTUARY_ESTIMATOR_NN_MLP_H_
