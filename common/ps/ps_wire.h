// The PS frame (proto/ps.proto): one gRPC byte buffer holding a small
// protobuf header and any number of tensor-codec frames
// (common/tensor_codec.h):
//   fixed32 magic "EPS1" | fixed32 header size | header | tensor frames
// The header's `tensor_bytes` lists each tensor frame's size. Writing copies
// each tensor once (or not at all when moved in); reading splits the
// received slices without copying and decodes each tensor with one copy.
// Thread-compatible.
#ifndef ESTUARY_COMMON_PS_PS_WIRE_H_
#define ESTUARY_COMMON_PS_PS_WIRE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"

namespace estuary {
namespace ps_wire {

// The raw methods of estuary.ps.ParameterServer (proto/ps.proto).
inline constexpr char kInitialize[] = "/estuary.ps.ParameterServer/Initialize";
inline constexpr char kDescribe[] = "/estuary.ps.ParameterServer/Describe";
inline constexpr char kPull[] = "/estuary.ps.ParameterServer/Pull";
inline constexpr char kPush[] = "/estuary.ps.ParameterServer/Push";
inline constexpr char kGlobalStep[] = "/estuary.ps.ParameterServer/GlobalStep";
inline constexpr char kPause[] = "/estuary.ps.ParameterServer/Pause";
inline constexpr char kSave[] = "/estuary.ps.ParameterServer/Save";

class FrameWriter {
 public:
  // Adds a float matrix [rows, cols] (one copy).
  absl::Status AddMatrix(const RowMatrixXf& m);
  // Adds a float matrix without copying it: the frame refers to `m`, which
  // must outlive every use of the built buffer (a synchronous call).
  absl::Status AddMatrixView(const RowMatrixXf& m);
  // Adds a tensor without copying its values.
  absl::Status AddTensor(Tensor&& t);
  // Adds an int64 vector [n] without copying it.
  absl::Status AddInts(std::vector<int64_t> values);

  // Fills header->tensor_bytes and returns the frame.
  template <typename Header>
  grpc::ByteBuffer Finish(Header* header) {
    header->clear_tensor_bytes();
    for (uint64_t b : sizes_) header->add_tensor_bytes(b);
    return Build(*header);
  }
  // For headers without tensors.
  grpc::ByteBuffer Build(const google::protobuf::MessageLite& header);

 private:
  absl::Status Append(absl::StatusOr<grpc::ByteBuffer> frame);
  std::vector<grpc::Slice> slices_;
  std::vector<uint64_t> sizes_;
};

class FrameReader {
 public:
  // Parses the prefix and header of `buffer` into *header (and checks the
  // tensor sizes it lists). Errors: DataLoss naming what is wrong.
  template <typename Header>
  absl::Status Parse(const grpc::ByteBuffer& buffer, Header* header) {
    std::string bytes;
    if (absl::Status s = ParsePrefix(buffer, &bytes); !s.ok()) return s;
    if (!header->ParseFromString(bytes)) return absl::DataLossError("PS frame: the header does not parse");
    return SetTensorSizes({header->tensor_bytes().begin(), header->tensor_bytes().end()});
  }

  int tensors_left() const { return static_cast<int>(sizes_.size() - next_); }
  // The next tensor as a float matrix [rows, cols]. Errors: DataLoss (none
  // left, corrupt), InvalidArgument (not a float matrix).
  absl::StatusOr<RowMatrixXf> NextMatrix();
  // The next tensor as an int64 vector. Errors: as NextMatrix.
  absl::StatusOr<std::vector<int64_t>> NextInts();

 private:
  absl::Status ParsePrefix(const grpc::ByteBuffer& buffer, std::string* header);
  absl::Status SetTensorSizes(std::vector<uint64_t> sizes);
  absl::StatusOr<grpc::ByteBuffer> NextFrame();

  std::vector<grpc::Slice> slices_;
  size_t slice_ = 0;   // the read position: slice index
  size_t offset_ = 0;  // and offset in it
  size_t left_ = 0;    // bytes after the position
  std::vector<uint64_t> sizes_;
  size_t next_ = 0;
};

}  // namespace ps_wire
}  // namespace estuary

#endif  // ESTUARY_COMMON_PS_PS_WIRE_H_
