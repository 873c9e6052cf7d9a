// Model variables and their gradients, as the Estimator's model code, the
// optimizers, checkpoints and (later) the parameter server exchange them.
// Names follow TensorFlow's variable names ("dnn/hiddenlayer_0/kernel",
// "linear/linear_model/age/weights") so checkpoints read alike. Value
// types; thread-compatible.
#ifndef ESTUARY_ESTIMATOR_VARIABLES_H_
#define ESTUARY_ESTIMATOR_VARIABLES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/tensor.h"

namespace estuary {

using Variables = std::map<std::string, RowMatrixXf>;

// Gradient rows for a few rows of a large variable (an embedding or a
// linear model's categorical weights): only the touched rows travel.
struct SparseGradient {
  std::vector<int64_t> rows;  // distinct, ascending
  RowMatrixXf values;         // [rows.size(), cols]
};

struct Gradients {
  std::map<std::string, RowMatrixXf> dense;
  std::map<std::string, SparseGradient> sparse;

  void Clear() {
    dense.clear();
    sparse.clear();
  }
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_VARIABLES_H_
