// Estuary's checkpoint variables <-> the variables of a TF 2.15 premade
// Estimator's checkpoint (what tf.train.list_variables shows on its
// model_dir), for reading and writing TF checkpoints (common/checkpoint.h,
// checkpoint_format "tf").
//
//   Estuary                                TF
//   dnn/hiddenlayer_0/kernel  [r, c]       dnn/hiddenlayer_0/kernel  [r, c]
//   dnn/hiddenlayer_0/bias    [1, n]       dnn/hiddenlayer_0/bias    [n]
//   linear/linear_model/bias_weights [1,1] linear/linear_model/bias_weights [1]
//   <var>/<opt>/<slot>                     training/<Opt>/<var>/<slot>
//     (opt: adagrad adam ftrl rmsprop       (Opt: Adagrad Adam Ftrl RMSprop
//      momentum; slot: accumulator linear    SGD: the Keras legacy optimizer's
//      m v vhat rms mg momentum)             class name and slot names)
//   global_step (int64)                    global_step (int64 [])
//   <var>/<opt>/updates (int64, a PS's      (none: dropped)
//     per-variable update counter)
//   (none: ignored when read)              training/<Opt>/learning_rate, decay,
//                                          beta_1, ... (float []) and
//                                          training/<Opt>/iter (int64 [])
//
// Shapes: TF rank-1 variables (biases, bias_weights, batch normalization's
// gamma/beta/moving_mean/moving_variance, and their slots) are Estuary
// 1 x n matrices; a TF scalar is 1 x 1; rank 2 is kept. Estuary -> TF
// chooses rank 1 by that name rule (the last component of the variable's
// name) when the matrix has one row.
//
// The optimizers' hyper-parameter variables (and `iter` when the optimizer
// does not count global_step) exist in TF's training graph only; Estuary
// keeps the values in the job file, so they are written from the
// OptimizerConfig (TfOptimizerVariables) and ignored when read.
//
// Pure functions; thread-safe.
#ifndef ESTUARY_COMMON_TF_BUNDLE_TF_VARIABLES_H_
#define ESTUARY_COMMON_TF_BUNDLE_TF_VARIABLES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/optimizer.h"
#include "common/tensor.h"
#include "common/variables.h"

namespace estuary {
namespace tf_bundle {

// TF's Keras optimizer class for an Estuary optimizer type: "adagrad" ->
// "Adagrad", "adam" -> "Adam", "ftrl" -> "Ftrl", "rmsprop" -> "RMSprop",
// "sgd" and "momentum" -> "SGD". "" for an unknown type.
std::string TfOptimizerClass(const std::string& estuary_type);

// The TF name of an Estuary checkpoint variable; nullopt for one TF has no
// counterpart of (a PS's per-variable update counter).
std::optional<std::string> TfVariableName(const std::string& estuary_name);

// The TF shape of an Estuary float variable (see the file comment).
std::vector<int64_t> TfShape(const std::string& estuary_name, int64_t rows, int64_t cols);

// Estuary's variables as TF's tensors (TF names and shapes), plus `extra`
// (TfOptimizerVariables' tensors) as they are. InvalidArgument if a name
// of `extra` is also a converted variable's.
absl::StatusOr<std::map<std::string, Tensor>> ToTfTensors(
    const Variables& vars, const std::map<std::string, Tensor>& extra);

// TF's tensors as Estuary's variables: the reverse of ToTfTensors, without
// the optimizers' hyper-parameters and `iter`. `where` prefixes errors
// (the checkpoint's index file): InvalidArgument "<where>: tensor '<name>':
// rank 3 is not supported" / "dtype int32 is not supported" (an int64
// other than a scalar included).
absl::StatusOr<Variables> FromTfTensors(const std::map<std::string, Tensor>& tensors,
                                        const std::string& where);

// The variables TF's graph holds for a Keras legacy optimizer besides its
// slots: "training/<Opt>/<hyper>" float scalars with the config's values
// (Adagrad: learning_rate, decay; Adam: + beta_1, beta_2; Ftrl: + beta,
// learning_rate_power, l1_/l2_regularization_strength; RMSprop: + rho,
// momentum; SGD: + momentum), and "training/<Opt>/iter" = `iterations` if
// given (TF creates it for an optimizer whose iterations are not
// global_step: the linear optimizer of a DNNLinearCombined estimator).
std::map<std::string, Tensor> TfOptimizerVariables(const OptimizerConfig& config,
                                                   std::optional<int64_t> iterations);

}  // namespace tf_bundle
}  // namespace estuary

#endif  // ESTUARY_COMMON_TF_BUNDLE_TF_VARIABLES_H_
