// The premade models of tf.estimator as Models: Linear, Baseline (and, with
// estimator/nn, DNN and DNN+Linear). Variable names follow TensorFlow's.
#ifndef ESTUARY_ESTIMATOR_PREMADE_H_
#define ESTUARY_ESTIMATOR_PREMADE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "estimator/feature_column.h"
#include "estimator/linear_model.h"
#include "estimator/model.h"

namespace estuary {

// LinearClassifier / LinearRegressor: the LinearModel over `columns`.
absl::StatusOr<std::unique_ptr<Model>> MakeLinearModel(std::vector<ColumnPtr> columns,
                                                       int64_t logits_dimension);

// BaselineClassifier / BaselineRegressor: logits = a learned bias
// ("baseline/bias"), ignoring the features.
std::unique_ptr<Model> MakeBaselineModel(int64_t logits_dimension);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_PREMADE_H_
