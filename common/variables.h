// Model variables and their gradients: the one representation that the
// Estimator's model code, the optimizers' callers, checkpoints, and (next)
// the parameter server and the collectives store and exchange.
//
// Names follow TensorFlow's variable names ("dnn/hiddenlayer_0/kernel",
// "linear/linear_model/age/weights", "global_step") so checkpoints read
// alike. Value types; thread-compatible.
#ifndef ESTUARY_COMMON_VARIABLES_H_
#define ESTUARY_COMMON_VARIABLES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/tensor.h"

namespace estuary {

// Named variables: float matrices (a vector is a 1 x n or n x 1 matrix; the
// shape is kept exactly) and int64 scalars such as "global_step". A name is
// in at most one of the two maps.
struct Variables {
  std::map<std::string, RowMatrixXf> floats;
  std::map<std::string, int64_t> ints;

  size_t size() const { return floats.size() + ints.size(); }
  bool Contains(const std::string& name) const {
    return floats.count(name) > 0 || ints.count(name) > 0;
  }
};

// Gradient rows for a few rows of a large variable (an embedding table or a
// linear model's categorical weights; TF's IndexedSlices): only the touched
// rows travel.
struct SparseGradient {
  std::vector<int64_t> rows;  // distinct, ascending
  RowMatrixXf values;         // [rows.size(), cols]
};

// What one step's backward pass produces for the variables it read.
struct Gradients {
  // d(loss)/d(variable) for trainable variables, whole (same shape).
  std::map<std::string, RowMatrixXf> dense;
  // d(loss)/d(variable) for the touched rows of row-sparse variables.
  std::map<std::string, SparseGradient> sparse;
  // New values of non-trainable variables computed by the step (batch-norm
  // moving statistics): assigned as they are, never given to an optimizer.
  std::map<std::string, RowMatrixXf> assign;
  // Optional: told as soon as a dense gradient is final (Backward writes it
  // no more), so a strategy can start reducing it while Backward computes
  // the rest (estimator/strategy.h GradientObserver). A model calls it
  // where it can (the DNN: per layer, top first); `grad` is the matrix that
  // ends up in `dense` (its data stays put). Not cleared by Clear().
  std::function<void(const std::string& name, const RowMatrixXf& grad)> on_final;

  void Clear() {
    dense.clear();
    sparse.clear();
    assign.clear();
  }
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_VARIABLES_H_
