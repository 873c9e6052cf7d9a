#include "common/ps/ps_wire.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/tensor_codec.h"

namespace estuary {
namespace ps_wire {
namespace {

constexpr uint32_t kMagic = 0x31535045;  // "EPS1" in little-endian byte order
constexpr size_t kPrefixBytes = 8;
constexpr uint32_t kMaxHeaderBytes = 64 << 20;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("PS frame: ", what));
}

}  // namespace

absl::Status FrameWriter::Append(absl::StatusOr<grpc::ByteBuffer> frame) {
  if (!frame.ok()) return frame.status();
  std::vector<grpc::Slice> slices;
  if (grpc::Status s = frame->Dump(&slices); !s.ok()) {
    return absl::InternalError(absl::StrCat("PS frame: ", s.error_message()));
  }
  sizes_.push_back(frame->Length());
  for (grpc::Slice& s : slices) slices_.push_back(std::move(s));
  return absl::OkStatus();
}

absl::Status FrameWriter::AddMatrix(const RowMatrixXf& m) { return Append(EncodeMatrix("", m)); }

absl::Status FrameWriter::AddMatrixView(const RowMatrixXf& m) {
  return Append(EncodeMatrixView("", m));
}

absl::Status FrameWriter::AddTensor(Tensor&& t) { return Append(EncodeTensor("", std::move(t))); }

absl::Status FrameWriter::AddInts(std::vector<int64_t> values) {
  Tensor t;
  t.dtype = DType::kInt64;
  t.shape = {static_cast<int64_t>(values.size())};
  t.ints = std::move(values);
  return AddTensor(std::move(t));
}

grpc::ByteBuffer FrameWriter::Build(const google::protobuf::MessageLite& header) {
  std::string head(kPrefixBytes, '\0');
  const uint32_t prefix[2] = {kMagic, static_cast<uint32_t>(header.ByteSizeLong())};
  std::memcpy(head.data(), prefix, kPrefixBytes);
  header.AppendToString(&head);
  std::vector<grpc::Slice> all;
  all.reserve(slices_.size() + 1);
  all.emplace_back(head);
  for (grpc::Slice& s : slices_) all.push_back(std::move(s));
  slices_.clear();
  sizes_.clear();
  return grpc::ByteBuffer(all.data(), all.size());
}

absl::Status FrameReader::ParsePrefix(const grpc::ByteBuffer& buffer, std::string* header) {
  left_ = buffer.Length();
  if (grpc::Status s = buffer.Dump(&slices_); !s.ok()) {
    return Corrupt(absl::StrCat("cannot read the buffer: ", s.error_message()));
  }
  // Reads n bytes across slices (only the prefix and header are copied).
  auto read = [this](char* dst, size_t n) {
    while (n > 0) {
      const grpc::Slice& s = slices_[slice_];
      const size_t take = std::min(n, s.size() - offset_);
      std::memcpy(dst, s.begin() + offset_, take);
      dst += take;
      n -= take;
      offset_ += take;
      left_ -= take;
      if (offset_ == s.size()) {
        ++slice_;
        offset_ = 0;
      }
    }
  };
  if (left_ < kPrefixBytes) return Corrupt(absl::StrCat("truncated: ", left_, " bytes"));
  uint32_t prefix[2];
  read(reinterpret_cast<char*>(prefix), kPrefixBytes);
  if (prefix[0] != kMagic) return Corrupt("bad magic (not a PS frame)");
  if (prefix[1] > kMaxHeaderBytes || prefix[1] > left_) {
    return Corrupt(absl::StrCat("truncated: a ", prefix[1], "-byte header, ", left_, " bytes left"));
  }
  header->resize(prefix[1]);
  read(header->data(), prefix[1]);
  return absl::OkStatus();
}

absl::Status FrameReader::SetTensorSizes(std::vector<uint64_t> sizes) {
  uint64_t total = 0;
  for (uint64_t b : sizes) total += b;
  if (total != left_) {
    return Corrupt(absl::StrCat("the header lists ", total, " tensor bytes, ", left_, " follow"));
  }
  sizes_ = std::move(sizes);
  next_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<grpc::ByteBuffer> FrameReader::NextFrame() {
  if (next_ >= sizes_.size()) return Corrupt("fewer tensors than the header says");
  size_t n = sizes_[next_++];
  std::vector<grpc::Slice> parts;
  while (n > 0) {
    const grpc::Slice& s = slices_[slice_];
    const size_t take = std::min(n, s.size() - offset_);
    if (take > 0) parts.push_back(s.sub(offset_, offset_ + take));
    n -= take;
    offset_ += take;
    left_ -= take;
    if (offset_ == s.size()) {
      ++slice_;
      offset_ = 0;
    }
  }
  return grpc::ByteBuffer(parts.data(), parts.size());
}

absl::StatusOr<RowMatrixXf> FrameReader::NextMatrix() {
  absl::StatusOr<grpc::ByteBuffer> frame = NextFrame();
  if (!frame.ok()) return frame.status();
  std::string name;
  return DecodeMatrix(*frame, &name);
}

absl::StatusOr<std::vector<int64_t>> FrameReader::NextInts() {
  absl::StatusOr<grpc::ByteBuffer> frame = NextFrame();
  if (!frame.ok()) return frame.status();
  absl::StatusOr<NamedTensor> t = DecodeTensor(*frame);
  if (!t.ok()) return t.status();
  if (t->tensor.dtype != DType::kInt64 || t->tensor.shape.size() != 1) {
    return absl::InvalidArgumentError("PS frame: expected an int64 vector");
  }
  return std::move(t->tensor.ints);
}

}  // namespace ps_wire
}  // namespace estuary
