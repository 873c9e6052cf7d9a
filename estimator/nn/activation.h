// Activation functions of tf.keras (the `activation_fn` of TF's DNN
// estimators), forward and backward.
//
// Formulas (as TF 2.15 computes them, checked in activation_test.cc):
//   relu     max(z, 0)                      (derivative 0 at z == 0)
//   tanh     tanh(z)
//   sigmoid  1 / (1 + exp(-z))
//   elu      z > 0 ? z : exp(z) - 1          (alpha 1)
//   selu     scale * (z > 0 ? z : alpha * (exp(z) - 1)),
//            alpha 1.6732632423543772, scale 1.0507009873554805
//   softplus log(1 + exp(z))
//   linear   z
// Pure functions; thread-safe.
#ifndef ESTUARY_ESTIMATOR_NN_ACTIVATION_H_
#define ESTUARY_ESTIMATOR_NN_ACTIVATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/tensor.h"

namespace estuary::nn {

enum class Activation { kRelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kLinear };

// "relu", "tanh", "sigmoid", "elu", "selu", "softplus", "linear" (also
// "tf.nn.relu" style prefixes "tf.nn." / "tf.keras.activations.");
// InvalidArgument otherwise.
absl::StatusOr<Activation> ParseActivation(const std::string& name);
const char* ActivationName(Activation a);

// y = f(z), elementwise.
RowMatrixXf Activate(Activation a, const RowMatrixXf& z);

// dz = dy * f'(z), given the pre-activation z and the output y = f(z)
// (both are used to avoid recomputation).
RowMatrixXf ActivationBackward(Activation a, const RowMatrixXf& z, const RowMatrixXf& y,
                               const RowMatrixXf& dy);

// The same, overwriting *dy with dz (no new [batch, units] buffer: writing
// a freshly allocated one costs page faults that showed up as a third of a
// DNN training step).
void ActivationBackwardInPlace(Activation a, const RowMatrixXf& z, const RowMatrixXf& y,
                               RowMatrixXf* dy);

}  // namespace estuary::nn

#endif  // ESTUARY_ESTIMATOR_NN_ACTIVATION_H_
