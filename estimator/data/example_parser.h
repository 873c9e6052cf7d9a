// Parses batches of serialized tf.train.Example records into batch tensors,
// with the semantics of tf.io.parse_example (TF 2.15):
//
//   FixedLenFeature{key, dtype, shape, default_value} -> Tensor
//     [batch, shape...]. Each example must hold exactly prod(shape) values
//     of the list kind that matches dtype (float32: float_list, int64:
//     int64_list, string: bytes_list). An example without the key, or with
//     a Feature that has no list set, takes default_value; without one that
//     is an error. A present but empty list is NOT missing: it is a count
//     error even when there is a default (as in TF).
//   VarLenFeature{key, dtype} -> SparseTensor [batch, max_len], max_len the
//     longest list in the batch (0 if none); a missing key or a Feature with
//     no list contributes no values.
//   A list of the wrong kind is an error even when it is empty (as in TF);
//   TF never converts between kinds (an int64_list does not feed a float32
//   feature).
//
// default_value holds prod(shape) values in row-major order (any tensor
// shape with that many elements, as TF reshapes it), or exactly one value,
// which is broadcast to `shape` (what TF's numeric_column does with a
// scalar default; raw tf.io.parse_example would reject it).
//
// Errors are InvalidArgument and name the example's index in the batch, its
// name when given (e.g. "train.tfrecord record 17") and the feature:
//   example 3 (train.tfrecord record 17): feature 'age': expected float_list, got bytes_list
//   example 0: feature 'age': required feature is missing (float32, shape [], no default_value)
//   example 1: feature 'pixels': expected 784 float values for shape [784], got 783
//   example 2: not a serialized tf.train.Example (12 bytes)
//
// ExampleParserSpec is immutable after Create and safe to share between
// threads; ParseExamples is thread-safe.
#ifndef ESTUARY_ESTIMATOR_DATA_EXAMPLE_PARSER_H_
#define ESTUARY_ESTIMATOR_DATA_EXAMPLE_PARSER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/tensor.h"

namespace estuary {
namespace data {

// tf.io.FixedLenFeature. `shape` excludes the batch dimension: {} for a
// scalar per example, {784} for a vector; every dimension must be >= 0.
struct FixedLenFeature {
  std::string key;
  DType dtype = DType::kFloat;
  std::vector<int64_t> shape;
  std::optional<Tensor> default_value;
};

// tf.io.VarLenFeature.
struct VarLenFeature {
  std::string key;
  DType dtype = DType::kFloat;
};

using FeatureSpec = std::variant<FixedLenFeature, VarLenFeature>;

// Scalar defaults for FixedLenFeature::default_value.
Tensor FloatDefault(float v);
Tensor Int64Default(int64_t v);
Tensor StringDefault(std::string v);

// A validated set of features to parse (tf.io.parse_example's `features`
// dict).
class ExampleParserSpec {
 public:
  // InvalidArgument naming the feature for: an empty or duplicate key, a
  // negative dimension, a default whose dtype differs from the feature's or
  // whose element count is neither prod(shape) nor 1.
  static absl::StatusOr<ExampleParserSpec> Create(std::vector<FeatureSpec> features);

  // The features in the order given; every FixedLenFeature default is
  // normalized to a tensor of exactly `shape` (a broadcast scalar expanded).
  const std::vector<FeatureSpec>& features() const { return features_; }

 private:
  explicit ExampleParserSpec(std::vector<FeatureSpec> features)
      : features_(std::move(features)) {}

  std::vector<FeatureSpec> features_;
};

// Parses `serialized` (one tf.train.Example per entry) into one FeatureMap
// entry per spec feature. `names` is empty or holds one description per
// entry for error messages (TF's `example_names`).
absl::StatusOr<FeatureMap> ParseExamples(const ExampleParserSpec& spec,
                                         absl::Span<const std::string> serialized,
                                         absl::Span<const std::string> names = {});

// "float_list", "int64_list", "bytes_list": the Feature kind dtype reads.
const char* FeatureKindName(DType dtype);

}  // namespace data
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_EXAMPLE_PARSER_H_
