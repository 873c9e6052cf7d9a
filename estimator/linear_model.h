// tf.estimator's linear model (feature_column_v2's LinearModel, as used by
// LinearClassifier/Regressor and the wide part of DNNLinearCombined):
//   logits = sum over columns of (weighted sum of the column's weights rows)
//          + bias
// Categorical columns (incl. bucketized, crossed, weighted) look up rows of
// a [num_buckets, logits_dimension] weight variable and sum them (weights
// multiply), like embedding_lookup_sparse with combiner "sum"; other dense
// columns multiply their [batch, width] output by a [width,
// logits_dimension] weight. Columns are visited sorted by name, variables
// are named "<scope>/<column name>/weights" and "<scope>/bias_weights"
// (scope "linear/linear_model"), all initialised to zero, as in TF.
// Thread-compatible.
#ifndef ESTUARY_ESTIMATOR_LINEAR_MODEL_H_
#define ESTUARY_ESTIMATOR_LINEAR_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "estimator/embedding.h"
#include "estimator/feature_column.h"
#include "estimator/model.h"
#include "common/variables.h"

namespace estuary {

class LinearModel {
 public:
  // InvalidArgument if a column is neither categorical nor dense, or two
  // share a name.
  static absl::StatusOr<LinearModel> Create(std::vector<ColumnPtr> columns,
                                            int64_t logits_dimension,
                                            std::string scope = "linear/linear_model");

  // Adds this model's variables (zeros) to `vars`.
  void InitVariables(Variables* vars) const;
  const std::vector<std::string>& variable_names() const { return variable_names_; }
  int64_t logits_dimension() const { return logits_dimension_; }

  // The rows of each categorical weight variable that Forward on
  // `features` reads (distinct, ascending); dense columns' weights and the
  // bias are read whole. InvalidArgument from the feature columns.
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> RowsRead(
      const FeatureMap& features) const;
  // The categorical weight variables (those RowsRead names).
  std::vector<std::string> RowSparseVariables() const;
  // The weight variable of `column` when it is one of this model's
  // categorical columns (the same object), else nullptr: a caller that
  // computed that column's ids (an embedding of the same column) can reuse
  // them (RowsRead's rows, Forward's `known`).
  const std::string* CategoricalWeightName(const FeatureColumn* column) const;

  // Ids of some of this model's categorical columns that the caller already
  // computed from the same features, by column object.
  using KnownIds = std::map<const FeatureColumn*, const CategoricalIds*>;

  // What Backward needs from the forward pass.
  struct Cache {
    std::vector<CategoricalIds> ids;  // per column (empty if dense)
    std::vector<RowMatrixXf> dense;   // per column (empty if categorical)
    int64_t batch_size = 0;
  };

  // [batch, logits_dimension]. InvalidArgument from the feature columns.
  // `known` (optional): ids to use instead of computing them again.
  absl::StatusOr<RowMatrixXf> Forward(const FeatureMap& features, const Variables& vars,
                                      Cache* cache, const KnownIds* known = nullptr) const;
  // Adds d(loss)/d(variables) for `dlogits` [batch, logits_dimension]:
  // sparse gradients for categorical weights, dense for the rest.
  absl::Status Backward(const Cache& cache, const RowMatrixXf& dlogits, Gradients* grads) const;

  // TF's linear summaries (canned/linear.py, linear_logit_fn_builder_v2)
  // of the variables in `vars`: "bias" (the bias_weights value: a scalar
  // when logits_dimension is 1, else a histogram of its values) and the
  // scalar "fraction_of_zero_weights" (exact zeros over every weight
  // variable but the bias). Variables missing from `vars` are skipped.
  void Summarize(const Variables& vars, ModelSummaries* out) const;

 private:
  LinearModel() = default;

  std::vector<ColumnPtr> columns_;  // sorted by name
  std::vector<std::string> weight_names_;
  std::string bias_name_;
  std::vector<std::string> variable_names_;
  int64_t logits_dimension_ = 1;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_LINEAR_MODEL_H_
