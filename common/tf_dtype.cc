#include "common/tf_dtype.h"

namespace estuary {

tensorflow::DataType ToTfDataType(DType dtype) {
  switch (dtype) {
    case DType::kFloat:
      return tensorflow::DT_FLOAT;
    case DType::kInt64:
      return tensorflow::DT_INT64;
    case DType::kString:
      return tensorflow::DT_STRING;
  }
  return tensorflow::DT_INVALID;
}

}  // namespace estuary
