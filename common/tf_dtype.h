// TensorFlow's DataType (proto/tf/types.proto) of an Estuary DType: the one
// mapping the TF formats we write share (checkpoint bundles, SavedModel
// graphs and signatures, TF Serving's TensorProto).
#ifndef ESTUARY_COMMON_TF_DTYPE_H_
#define ESTUARY_COMMON_TF_DTYPE_H_

#include "common/tensor.h"
#include "proto/tf/types.pb.h"

namespace estuary {

// kFloat -> DT_FLOAT, kInt64 -> DT_INT64, kString -> DT_STRING.
tensorflow::DataType ToTfDataType(DType dtype);

}  // namespace estuary

#endif  // ESTUARY_COMMON_TF_DTYPE_H_
