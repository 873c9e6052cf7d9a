// Feature columns with tf.feature_column's semantics (TF 2.15, checked by
// golden tests against TensorFlow): they turn a batch's raw features
// (FeatureMap: key -> Tensor | SparseTensor) into dense model inputs
// (RowMatrixXf [batch, width]) or categorical ids (CategoricalIds).
//
// Raw inputs. A feature may be a dense Tensor ([batch] or [batch, ...]; all
// of a row's elements are its values) or a SparseTensor (variable length).
// As in TF, categorical columns drop "missing" values of a *dense* input
// before looking them up: "" for strings, -1 for integers; sparse inputs are
// used as given. A crossed column reads raw keys without dropping anything.
// A feature key absent from the FeatureMap is InvalidArgument naming it.
//
// Columns are immutable and shared (std::shared_ptr<const FeatureColumn>);
// they are thread-safe.
#ifndef ESTUARY_ESTIMATOR_FEATURE_COLUMN_H_
#define ESTUARY_ESTIMATOR_FEATURE_COLUMN_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/job_config.h"
#include "common/tensor.h"
#include "estimator/embedding.h"

namespace estuary {

// The column kinds: the one list is the job file's (common/job_config.h).
using ColumnType = FeatureColumnKind;

// Embedding tables by embedding column name, each [num_buckets, dimension].
using EmbeddingTables = std::map<std::string, RowMatrixXf>;

class FeatureColumn {
 public:
  virtual ~FeatureColumn() = default;

  // TF's column name: numeric/categorical: the key; "<src>_bucketized";
  // "<cat>_indicator"; "<cat>_embedding"; "<cat>_weighted_by_<weight key>";
  // crossed: the sorted key names joined with "_X_".
  const std::string& name() const { return name_; }
  ColumnType type() const { return type_; }

  // Dense columns (numeric, bucketized, indicator, embedding) have a fixed
  // width per example and implement Dense().
  virtual bool is_dense() const { return false; }
  virtual int64_t dense_width() const { return 0; }
  // [batch, dense_width()]. `tables` is needed by embedding columns only.
  virtual absl::StatusOr<RowMatrixXf> Dense(const FeatureMap& features,
                                            const EmbeddingTables* tables = nullptr) const;

  // Categorical columns (vocabulary, hash bucket, identity, crossed,
  // weighted, and bucketized) implement Ids().
  virtual bool is_categorical() const { return false; }
  virtual int64_t num_buckets() const { return 0; }
  virtual absl::StatusOr<CategoricalIds> Ids(const FeatureMap& features) const;

 protected:
  FeatureColumn(ColumnType type, std::string name) : type_(type), name_(std::move(name)) {}

 private:
  ColumnType type_;
  std::string name_;
};

using ColumnPtr = std::shared_ptr<const FeatureColumn>;

// (x - mean) / stddev, applied before bucketizing.
struct Normalizer {
  double mean = 0.0;
  double stddev = 1.0;
};

// tf.feature_column.numeric_column. Output [batch, prod(shape)] float; int
// inputs are cast. `default_value` fills a missing feature (and the absent
// entries of a SparseTensor input); without it both are InvalidArgument.
absl::StatusOr<ColumnPtr> NumericColumn(std::string key, std::vector<int64_t> shape = {1},
                                        std::optional<float> default_value = std::nullopt,
                                        std::optional<Normalizer> normalizer = std::nullopt);

// tf.feature_column.bucketized_column over a numeric column with a 1-D
// shape [d]. Bucket of x: the number of boundaries <= x (TF's Bucketize:
// std::upper_bound, float32 comparisons). Dense: one-hot, width
// d * (len(boundaries) + 1), element j's block first. Ids: bucket + j *
// (len(boundaries) + 1). Boundaries must be sorted ascending.
absl::StatusOr<ColumnPtr> BucketizedColumn(ColumnPtr source_numeric, std::vector<float> boundaries);

// tf.feature_column.categorical_column_with_vocabulary_list. A value's id is
// its vocabulary index; an unknown value gets vocab_size +
// Fingerprint64(value) % num_oov_buckets when num_oov_buckets > 0 (int64
// values are hashed as decimal strings), else default_value (-1: ignored
// downstream). Setting both num_oov_buckets > 0 and default_value != -1 is
// InvalidArgument, as in TF. Duplicate vocabulary entries are rejected.
absl::StatusOr<ColumnPtr> VocabularyListColumn(std::string key, std::vector<std::string> vocabulary,
                                               int64_t num_oov_buckets = 0,
                                               int64_t default_value = -1);
absl::StatusOr<ColumnPtr> Int64VocabularyListColumn(std::string key,
                                                    std::vector<int64_t> vocabulary,
                                                    int64_t num_oov_buckets = 0,
                                                    int64_t default_value = -1);

// tf.feature_column.categorical_column_with_vocabulary_file: one entry per
// line (dtype kString or kInt64; a trailing "\r" is dropped; an empty line
// is InvalidArgument, as in TF), the first `vocabulary_size` lines if set
// (more than the file has is InvalidArgument). Otherwise as the list.
absl::StatusOr<ColumnPtr> VocabularyFileColumn(std::string key, const std::string& path,
                                               std::optional<int64_t> vocabulary_size,
                                               int64_t num_oov_buckets = 0,
                                               int64_t default_value = -1,
                                               DType dtype = DType::kString,
                                               const io::Env& env = io::Env::Default());

// tf.feature_column.categorical_column_with_hash_bucket:
// Fingerprint64(value) % hash_bucket_size; int64 values are hashed as their
// decimal strings. An input whose dtype differs from `dtype` (kString or
// kInt64) is InvalidArgument, as in TF.
absl::StatusOr<ColumnPtr> HashBucketColumn(std::string key, int64_t hash_bucket_size,
                                           DType dtype = DType::kString);

// tf.feature_column.categorical_column_with_identity: int64 values are ids.
// A value outside [0, num_buckets) becomes default_value if set; without a
// default TF 2.15 passes it through unchanged, and so does this column:
// indicator columns then ignore it, embedding lookups fail on it.
absl::StatusOr<ColumnPtr> IdentityColumn(std::string key, int64_t num_buckets,
                                         std::optional<int64_t> default_value = std::nullopt);

// tf.feature_column.crossed_column: a key is a raw feature name (string or
// int64 values) or a categorical column (its ids; not a hash bucket column,
// as in TF; a crossed key contributes its own keys). Per example, every
// combination of one value per key (the first key varying slowest) gives
// SparseCrossHashed's id with hash key 0xDECAFCAFFE. Key order is TF's
// sparse_cross order: inputs that are sparse (categorical columns, raw
// keys fed a SparseTensor) in key order, then raw keys fed a dense Tensor
// (checked against TF 2.15 by tests/compat). An example with no
// value for some key has no ids.
using CrossKey = std::variant<std::string, ColumnPtr>;
absl::StatusOr<ColumnPtr> CrossedColumn(std::vector<CrossKey> keys, int64_t hash_bucket_size);

// tf.feature_column.indicator_column: [batch, num_buckets] counts of each id
// (sum of weights for a weighted column); ids < 0 or >= num_buckets are
// ignored.
absl::StatusOr<ColumnPtr> IndicatorColumn(ColumnPtr categorical);

// tf.feature_column.embedding_column: CombineEmbeddings over the table named
// by this column's name() in the EmbeddingTables given to Dense().
absl::StatusOr<ColumnPtr> EmbeddingColumn(ColumnPtr categorical, int64_t dimension,
                                          Combiner combiner = Combiner::kMean,
                                          std::optional<float> max_norm = std::nullopt,
                                          bool trainable = true);

// Parameters of an embedding column (nullptr for other columns).
struct EmbeddingSpec {
  ColumnPtr categorical;
  int64_t dimension = 0;
  Combiner combiner = Combiner::kMean;
  std::optional<float> max_norm;
  bool trainable = true;
};
const EmbeddingSpec* GetEmbeddingSpec(const FeatureColumn& column);

// tf.feature_column.weighted_categorical_column: the categorical column's
// ids with float weights from `weight_feature_key`, paired in order within
// each example (a dense weight input drops 0.0 entries like TF); differing
// counts are InvalidArgument.
absl::StatusOr<ColumnPtr> WeightedCategoricalColumn(ColumnPtr categorical,
                                                    std::string weight_feature_key);

// tf.keras.layers.DenseFeatures / input_layer: the dense columns sorted by
// name() (TF's order), concatenated. InvalidArgument for a non-dense column
// or two columns with the same name.
absl::StatusOr<std::vector<ColumnPtr>> SortedDenseColumns(std::vector<ColumnPtr> columns);
int64_t DenseFeaturesWidth(const std::vector<ColumnPtr>& columns);
absl::StatusOr<RowMatrixXf> DenseFeatures(const std::vector<ColumnPtr>& columns,
                                          const FeatureMap& features,
                                          const EmbeddingTables* tables = nullptr);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_FEATURE_COLUMN_H_
