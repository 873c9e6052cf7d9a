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
// Thread-compatibility: an Mlp is not thread-safe (Forward caches
// activations for Backward and, in training with batch_norm, updates the
// moving statistics); use one per thread or serialise. The ComputeContext
// may be shared.
#ifndef ESTUARY_ESTIMATOR_NN_MLP_H_
#define ESTUARY_ESTIMATOR_NN_MLP_H_

#include <cstdint>
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

struct MlpGradients {
  std::map<std::string, RowMatrixXf> by_name;  // one per trainable variable
  RowMatrixXf dx;                              // dL/dinput
};

class Mlp {
 public:
  // InvalidArgument for a bad config or input_dim < 1. Kernels are drawn
  // from Rng(seed) in layer order (hidden layers, then logits).
  static absl::StatusOr<std::unique_ptr<Mlp>> Create(const MlpConfig& config, int64_t input_dim,
                                                     uint64_t seed);

  const MlpConfig& config() const { return config_; }
  // Every variable, trainable or not, by TF name. Values may be changed in
  // place (e.g. by an optimizer or a checkpoint restore); shapes must not.
  std::map<std::string, RowMatrixXf>& variables() { return variables_; }
  const std::map<std::string, RowMatrixXf>& variables() const { return variables_; }
  // Names of the trainable variables, in layer order.
  const std::vector<std::string>& trainable_variable_names() const { return trainable_; }

  // Uses `ctx` for GEMMs (may be null; not owned; must outlive the calls).
  void set_compute_context(const ComputeContext* ctx) { ctx_ = ctx; }

  // logits [batch, logits_dimension] for x [batch, input_dim]. training
  // enables dropout (drawing from *rng, which may be null when dropout is
  // 0) and batch statistics (and updates the moving ones). Caches what
  // Backward needs. InvalidArgument on a shape mismatch.
  absl::StatusOr<RowMatrixXf> Forward(const RowMatrixXf& x, bool training, Rng* rng);

  // Gradients of every trainable variable and of the input, given
  // dlogits = dL/dlogits for the last Forward. FailedPrecondition without a
  // preceding Forward, InvalidArgument on a shape mismatch. Without
  // `input_gradient`, dx is left empty (saves the first layer's dy W^T GEMM
  // when the input is not trainable).
  absl::StatusOr<MlpGradients> Backward(const RowMatrixXf& dlogits,
                                        bool input_gradient = true) const;

 private:
  struct Layer {
    std::string prefix;  // "dnn/hiddenlayer_0"
    std::string bn_prefix;
    RowMatrixXf* kernel = nullptr;
    RowMatrixXf* bias = nullptr;
    std::unique_ptr<BatchNorm> bn;  // its vectors are mirrored in variables_
    // Cache of the last Forward.
    RowMatrixXf input, z, a, mask;
    BatchNorm::Cache bn_cache;
  };
  Mlp() = default;
  void SyncBatchNorm(Layer* l, bool to_variables);

  MlpConfig config_;
  int64_t input_dim_ = 0;
  std::map<std::string, RowMatrixXf> variables_;
  std::vector<std::string> trainable_;
  std::vector<Layer> hidden_;
  Layer logits_;
  bool has_forward_ = false;
  const ComputeContext* ctx_ = nullptr;
};

}  // namespace estuary::nn

#endif  // ESTUARY_ESTIMATOR_NN_MLP_H_
