#include "common/tensor.h"

namespace estuary {

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kFloat: return "float32";
    case DType::kInt64: return "int64";
    case DType::kString: return "string";
  }
  return "?";
}

int64_t Tensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Tensor::row_size() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

Tensor Tensor::Floats(std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t;
  t.dtype = DType::kFloat;
  t.shape = std::move(shape);
  t.floats = std::move(values);
  return t;
}

Tensor Tensor::Ints(std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t;
  t.dtype = DType::kInt64;
  t.shape = std::move(shape);
  t.ints = std::move(values);
  return t;
}

Tensor Tensor::Strings(std::vector<int64_t> shape, std::vector<std::string> values) {
  Tensor t;
  t.dtype = DType::kString;
  t.shape = std::move(shape);
  t.strings = std::move(values);
  return t;
}

}  // namespace estuary
