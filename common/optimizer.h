// Optimizers with TensorFlow's update rules, shared by the in-process
// Estimator and the parameter server (both run exactly this code).
//
// Semantics are those of the Keras legacy optimizers that TF 2.15's premade
// estimators build (tensorflow_estimator optimizers.py,
// get_optimizer_instance_v2: 'Adagrad', 'Adam', 'Ftrl', 'RMSProp', 'SGD' ->
// tf.keras.optimizers.legacy.*), verified against TF 2.15 in
// optimizer_test.cc (goldens from testdata/make_optimizer_goldens.py):
//
//   sgd       var -= lr * g
//   momentum  (SGD with momentum, slot "momentum" = 0)
//             m = momentum * m - lr * g;  var += m
//             nesterov: var += momentum * m - lr * g
//   adagrad   slot "accumulator" = initial_accumulator_value (0.1)
//             acc += g^2;  var -= lr * g / (sqrt(acc) + epsilon)  (eps 1e-7)
//   adam      slots "m", "v" = 0; t = step + 1
//             m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//             var -= lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + epsilon)
//             defaults b1 0.9, b2 0.999, epsilon 1e-7
//   ftrl      slots "accumulator" = initial_accumulator_value (0.1),
//             "linear" = 0; learning_rate_power -0.5 (p below), beta 0
//             gs = g + 2 * l2_shrinkage * var;  n' = acc + g^2
//             linear += gs - (n'^-p - acc^-p) / lr * var
//             var = |linear| > l1 ? (sign(linear) l1 - linear) /
//                                   (n'^-p / lr + 2 l2) : 0;   acc = n'
//   rmsprop   slots "rms" = 0, "momentum" = 0 (only when momentum > 0),
//             "mg" = 0 (only when centered); rho 0.9, epsilon 1e-7
//             rms = rho rms + (1-rho) g^2;  mg = rho mg + (1-rho) g
//             d = centered ? rms - mg^2 : rms
//             momentum == 0: var -= lr * g / (sqrt(d) + epsilon)
//             momentum > 0:  mom = momentum mom + lr g / sqrt(d + epsilon);
//                            var -= mom
//
// Sparse updates (IndexedSlices: `rows` of the variable with their gradient
// rows) follow TF too. Row-wise (untouched rows keep var and slots): sgd,
// momentum, adagrad, ftrl, rmsprop with momentum > 0. Adam and rmsprop
// without momentum are NOT row-wise in TF: Keras legacy Adam decays all of
// m and v (m *= b1, then m[rows] += (1-b1) g) and updates every row of var
// (rows with m != 0 move even when untouched); legacy RMSprop (momentum 0)
// decays all of rms (and mg) but updates var only at `rows`.
//
// Thread-safety: Optimizer objects are immutable after construction and hold
// no training state (it lives in Slots), so concurrent calls on one object
// are safe as long as they touch different variables/slots. Calls on the
// same var/slots must be serialised by the caller.
#ifndef ESTUARY_COMMON_OPTIMIZER_H_
#define ESTUARY_COMMON_OPTIMIZER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/json_schema.h"
#include "common/tensor.h"
#include "nlohmann/json.hpp"

namespace estuary {

// Per-variable optimizer state, keyed by TF's slot names ("accumulator",
// "linear", "m", "v", "momentum", "rms", "mg"). Every slot has the shape of
// its variable.
struct Slots {
  std::map<std::string, RowMatrixXf> by_name;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Lower-case type: "sgd", "momentum", "adagrad", "adam", "ftrl", "rmsprop".
  virtual std::string name() const = 0;

  // Slots for `var`, initialised as TF does (see the table above).
  virtual Slots CreateSlots(const RowMatrixXf& var) const = 0;

  // One update with a dense gradient (same shape as *var). `step` is the
  // number of updates applied to this variable before this one (0-based;
  // Keras' `iterations`), used by Adam's bias correction. `slots` must come
  // from CreateSlots for a variable of this shape.
  virtual void ApplyDense(RowMatrixXf* var, Slots* slots, const RowMatrixXf& grad,
                          int64_t step) const = 0;

  // One update with a sparse gradient: grads.row(i) is the gradient of
  // var->row(rows[i]). `rows` must be distinct and in range (sum duplicate
  // rows first, as TF's _deduplicate_indexed_slices does).
  virtual void ApplySparse(RowMatrixXf* var, Slots* slots, absl::Span<const int64_t> rows,
                           const RowMatrixXf& grads, int64_t step) const = 0;
};

// Hyper-parameters of every optimizer type; defaults are TF's.
struct OptimizerConfig {
  std::string type = "sgd";  // sgd|momentum|adagrad|adam|ftrl|rmsprop
  double learning_rate = 0.01;
  double momentum = 0.0;
  bool use_nesterov = false;
  double initial_accumulator_value = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-7;
  double learning_rate_power = -0.5;
  double l1_regularization_strength = 0.0;
  double l2_regularization_strength = 0.0;
  double l2_shrinkage_regularization_strength = 0.0;
  double rho = 0.9;
  bool centered = false;
};

// Builds an optimizer from a config. InvalidArgument "optimizer.<key>: ..."
// for an unknown type or out-of-range values (e.g. learning_rate <= 0).
absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const OptimizerConfig& config);

// The optimizer types a job file can name, and the keys each takes besides
// "type" and "learning_rate" (TF's names). The one list of optimizers: the
// job-file parse, its error hints and MakeOptimizer all read it.
struct OptimizerType {
  const char* name;  // lower case, as OptimizerConfig::type
  std::vector<std::string> keys;
};
const std::vector<OptimizerType>& OptimizerTypes();

// An optimizer as a job file chooses it.
struct OptimizerChoice {
  OptimizerConfig config;  // TF's defaults for every key not given
  // False when the job gave no learning_rate: the estimator's default
  // applies (config.learning_rate holds OptimizerConfig's until then).
  bool learning_rate_set = false;
};

// Parses and validates a job-file optimizer value:
//   null                 -> default_type
//   "Adagrad" | "ftrl"   -> that type (TF's get_optimizer_instance_v2 gives
//                           string optimizers the estimator's learning rate)
//   {"type": ..., ...}   -> type (default default_type) with the keys
//                           OptimizerTypes() lists for it.
// Type names are case-insensitive ('Adagrad', 'Adam', 'Ftrl', 'RMSProp',
// 'SGD' as TF spells them, or lower case; "momentum" is SGD with momentum
// and requires "momentum" > 0). "decay" is accepted for rmsprop as
// tf.compat.v1's name of rho. Null values count as absent. Errors are
// InvalidArgument from `where` ("job.json: $.estimator.optimizer.beta1: ...").
absl::StatusOr<OptimizerChoice> ParseOptimizer(const nlohmann::json& spec,
                                               const std::string& default_type,
                                               const JsonPath& where);

// The chosen optimizer, with `default_learning_rate` (the estimator's) when
// the job gave none. Errors as MakeOptimizer(config).
absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(OptimizerChoice choice,
                                                         double default_learning_rate);

// ParseOptimizer, then MakeOptimizer(choice, default_learning_rate). Errors start with `json_path`.
absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const nlohmann::json& spec,
                                                         const std::string& default_type,
                                                         double default_learning_rate,
                                                         const std::string& json_path);

}  // namespace estuary

#endif  // ESTUARY_COMMON_OPTIMIZER_H_
