// Embedding combiners with tf.nn.safe_embedding_lookup_sparse semantics, and
// their gradient with respect to the embedding table (as sparse rows, the
// form a parameter server applies).
#ifndef ESTUARY_ESTIMATOR_EMBEDDING_H_
#define ESTUARY_ESTIMATOR_EMBEDDING_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tensor.h"

namespace estuary {

// Ids of a categorical feature column for one batch, as a list of
// (row, id, weight) entries sorted by row; within a row, in the order TF
// produces them (the source feature's order, or the cross product's order).
//
// An id may be -1 (categorical_column_with_vocabulary_* with
// default_value -1 for an out-of-vocabulary value), and an identity column
// without default_value passes out-of-range values through (as TF 2.15
// does). Indicator outputs ignore ids outside [0, num_buckets), embedding
// lookups ignore ids < 0 and fail on ids >= num_buckets, crossed columns
// hash whatever id they get: all as TF does.
struct CategoricalIds {
  int64_t batch_size = 0;
  int64_t num_buckets = 0;
  std::vector<int64_t> rows;        // ascending
  std::vector<int64_t> ids;
  std::vector<float> weights;       // empty (all 1) or one per id

  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  bool has_weights() const { return !weights.empty(); }
  float weight(int64_t k) const { return weights.empty() ? 1.0f : weights[k]; }
};

enum class Combiner { kSum, kMean, kSqrtn };

// "sum" | "mean" | "sqrtn".
absl::StatusOr<Combiner> ParseCombiner(absl::string_view s);
const char* CombinerName(Combiner c);

// Combines the rows of `table` ([num_buckets, dimension]) named by `ids`
// into one [batch_size, dimension] matrix, like
// tf.nn.safe_embedding_lookup_sparse(table, ids, weights, combiner,
// max_norm): entries with id < 0 are dropped; for mean and sqrtn (not sum,
// as in TF 2.15) so are entries with weight <= 0; a row with no entries left
// gives zeros. sum = Σ w·e; mean = Σ w·e / Σ w; sqrtn = Σ w·e / sqrt(Σ w²).
// max_norm clips each looked-up row to that L2 norm before combining.
// InvalidArgument for an id >= table.rows().
absl::StatusOr<RowMatrixXf> CombineEmbeddings(const RowMatrixXf& table,
                                              const CategoricalIds& ids, Combiner combiner,
                                              std::optional<float> max_norm = std::nullopt);

// Gradient of CombineEmbeddings (without max_norm) with respect to the
// table, given d(loss)/d(output) [batch_size, dimension]: the distinct
// touched row ids, ascending, and one gradient row for each (duplicates
// summed).
struct EmbeddingGrad {
  std::vector<int64_t> ids;
  RowMatrixXf grads;  // [ids.size(), dimension]
};
absl::StatusOr<EmbeddingGrad> CombineEmbeddingsGrad(int64_t num_buckets,
                                                    const CategoricalIds& ids, Combiner combiner,
                                                    const RowMatrixXf& output_grad);

// The distinct values of `ids`, ascending (Model::RowsRead's rows). A hash
// set drops the repeats first, so only distinct ids are sorted (a batch
// repeats a column's ids a lot: bucketized columns, frequent values).
std::vector<int64_t> SortedDistinct(const std::vector<int64_t>& ids);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_EMBEDDING_H_
