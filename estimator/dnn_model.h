// The DNN models of tf.estimator as Models: DNNClassifier/Regressor's
// network over the dense feature columns (DenseFeatures with trainable
// embedding tables, then nn::Mlp), and DNNLinearCombined's sum of that and
// the LinearModel.
//
// Variable names as in TF 2.15:
//   dnn/input_from_feature_columns/input_layer/<col>_embedding/embedding_weights
//       (embedding tables, truncated_normal(0, 1/sqrt(dimension)) like TF)
//   dnn/hiddenlayer_<i>/{kernel,bias}, dnn/logits/{kernel,bias}, ...
//   linear/linear_model/<col>/weights, linear/linear_model/bias_weights
// Optimizer groups: "dnn" and "linear" (combined), "" otherwise.
//
// Re-entrant (see model.h): the network reads its variables from the
// Variables passed in and keeps its activations in the ForwardState; new
// batch-norm moving statistics come back in Gradients::assign. With
// num_threads > 1 concurrent calls share one GEMM thread pool.
#ifndef ESTUARY_ESTIMATOR_DNN_MODEL_H_
#define ESTUARY_ESTIMATOR_DNN_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "estimator/feature_column.h"
#include "estimator/model.h"
#include "estimator/nn/mlp.h"

namespace estuary {

struct DnnModelOptions {
  std::vector<ColumnPtr> dnn_columns;     // dense columns (numeric, bucketized, indicator, embedding)
  std::vector<ColumnPtr> linear_columns;  // non-empty: DNNLinearCombined
  nn::MlpConfig mlp;                      // hidden_units, activation, dropout, batch_norm, logits_dimension
  int num_threads = 1;                    // GEMM threads (Eigen thread pool)
};

absl::StatusOr<std::unique_ptr<Model>> MakeDnnModel(DnnModelOptions options);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DNN_MODEL_H_
