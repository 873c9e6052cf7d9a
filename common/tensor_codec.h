// Dense tensors in gRPC byte buffers, for the bulk RPCs of the parameter
// server and the collectives (generic / raw gRPC methods): a small header
// (name, dtype, shape; proto/tensor.proto) and the values as raw bytes, no
// per-element protobuf fields.
//
// Copies (bench/RESULTS.md, "Tensor codec"): encoding a const tensor copies
// the values once into a gRPC slice; encoding a tensor passed by rvalue
// copies nothing (the slice owns the moved-in memory and frees it when gRPC
// drops the buffer); decoding copies once, from the received slices into
// the result. A protobuf `bytes` field costs three copies, `repeated float`
// more (see DESIGN.md, performance notes).
//
// Types: float32 and int64 (strings are refused). Values are stored little
// endian, as in memory on every machine Estuary runs on. Thread-compatible
// free functions.
#ifndef ESTUARY_COMMON_TENSOR_CODEC_H_
#define ESTUARY_COMMON_TENSOR_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "grpcpp/support/byte_buffer.h"

namespace estuary {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Encodes `tensor` (one copy of its values).
// Errors: InvalidArgument (string dtype, a negative dimension, or the value
// count does not match the shape).
absl::StatusOr<grpc::ByteBuffer> EncodeTensor(const std::string& name, const Tensor& tensor);
// Encodes without copying the values: the buffer takes `tensor`'s memory.
// Errors: as above.
absl::StatusOr<grpc::ByteBuffer> EncodeTensor(const std::string& name, Tensor&& tensor);
// Encodes a matrix as a float32 tensor [rows, cols] (one copy).
absl::StatusOr<grpc::ByteBuffer> EncodeMatrix(const std::string& name, const RowMatrixXf& matrix);

// Encodes without copying and without taking ownership: the buffer refers
// to `matrix`'s memory, which must stay alive and unchanged until gRPC is
// done with the buffer (e.g. a synchronous call that sent it returned).
absl::StatusOr<grpc::ByteBuffer> EncodeMatrixView(const std::string& name,
                                                  const RowMatrixXf& matrix);

// Decodes a buffer made by EncodeTensor / EncodeMatrix, however gRPC split
// it into slices (one copy of the values).
// Errors: DataLoss naming what is wrong (not a tensor frame, truncated,
// trailing bytes, a header that does not parse, an unknown dtype, a shape
// that does not match the payload size).
absl::StatusOr<NamedTensor> DecodeTensor(const grpc::ByteBuffer& buffer);
// Decodes a float32 tensor of rank 2 into a matrix.
// Errors: DataLoss as above; InvalidArgument (another dtype or rank).
absl::StatusOr<RowMatrixXf> DecodeMatrix(const grpc::ByteBuffer& buffer, std::string* name);

}  // namespace estuary

#endif  // ESTUARY_COMMON_TENSOR_CODEC_H_
