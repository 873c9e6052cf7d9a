// Batch tensors of the Estimator input contract: an input function yields
// (features: name -> Tensor | SparseTensor, labels) batches.
//
// Value types; thread-compatible. Dense tensors are row-major with the
// batch as dimension 0; exactly one value vector is used, chosen by dtype.
#ifndef ESTUARY_COMMON_TENSOR_H_
#define ESTUARY_COMMON_TENSOR_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "Eigen/Core"

namespace estuary {

enum class DType { kFloat, kInt64, kString };

const char* DTypeName(DType t);  // "float32", "int64", "string"

using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A dense tensor, e.g. [batch] labels or [batch, 784] pixels.
struct Tensor {
  DType dtype = DType::kFloat;
  std::vector<int64_t> shape;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;

  int64_t num_elements() const;
  // Elements per batch row: product of shape[1:] (1 for a [batch] tensor).
  int64_t row_size() const;
  int64_t batch_size() const { return shape.empty() ? 0 : shape[0]; }
  // The float values as a [batch, row_size] matrix (dtype must be kFloat).
  Eigen::Map<const RowMatrixXf> AsMatrix() const {
    return Eigen::Map<const RowMatrixXf>(floats.data(), batch_size(), row_size());
  }

  static Tensor Floats(std::vector<int64_t> shape, std::vector<float> values);
  static Tensor Ints(std::vector<int64_t> shape, std::vector<int64_t> values);
  static Tensor Strings(std::vector<int64_t> shape, std::vector<std::string> values);
};

// A rank-2 sparse tensor [batch_size, max_len] like tf.SparseTensor: entry
// k is at (rows[k], cols[k]); entries are sorted by (row, col). Variable-
// length features (tf.io.VarLenFeature) and multivalent categorical inputs
// come as these.
struct SparseTensor {
  DType dtype = DType::kString;
  int64_t batch_size = 0;
  int64_t max_len = 0;
  std::vector<int64_t> rows;
  std::vector<int64_t> cols;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;

  int64_t num_values() const { return static_cast<int64_t>(rows.size()); }
};

using FeatureValue = std::variant<Tensor, SparseTensor>;
using FeatureMap = std::map<std::string, FeatureValue>;

// One batch from an input pipeline.
struct Batch {
  FeatureMap features;
  Tensor labels;  // shape [batch] or [batch, label_dimension]; empty if none
  bool has_labels = false;
  int64_t batch_size = 0;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_TENSOR_H_
