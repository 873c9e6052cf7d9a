// Conversions between TF Serving's wire types (tensorflow.TensorProto,
// SignatureDef) and Estuary's (Tensor, SignatureSpec).
//
// Dtypes: DT_FLOAT and DT_DOUBLE become kFloat, DT_INT32/INT16/INT8/UINT8/
// UINT16/UINT32 and DT_INT64 become kInt64, DT_BOOL becomes kInt64 (0/1),
// DT_STRING stays kString; other dtypes are InvalidArgument. A tensor may
// carry its values in the typed *_val field or in tensor_content; a single
// value with a larger shape is broadcast, as TensorFlow's MakeTensorFromProto
// does.
#ifndef ESTUARY_SERVING_TENSOR_CONVERT_H_
#define ESTUARY_SERVING_TENSOR_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "common/tf_dtype.h"
#include "estimator/export/export.h"
#include "proto/tf/meta_graph.pb.h"
#include "proto/tf/tensor.pb.h"

namespace estuary {
namespace serving {

// "DT_FLOAT"...
std::string DataTypeName(tensorflow::DataType dtype);

// Errors: InvalidArgument (an unsupported dtype, a negative or unknown
// dimension, a value count that matches neither the shape nor 1).
absl::StatusOr<Tensor> FromTensorProto(const tensorflow::TensorProto& proto);

// Writes `tensor` (values in the typed *_val field).
void ToTensorProto(const Tensor& tensor, tensorflow::TensorProto* proto);

// SignatureDef of a signature: tensor names "<key>:0", shapes with -1 for
// the unknown batch dimension.
tensorflow::SignatureDef ToSignatureDef(const SignatureSpec& spec);

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_TENSOR_CONVERT_H_
