#include "common/tensor_codec.h"

#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/tensor.pb.h"

namespace estuary {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the tensor frame stores values as they are in memory (little endian)");

constexpr uint32_t kMagic = 0x314E5445;  // "ETN1" in little-endian byte order
constexpr size_t kPrefixBytes = 8;       // magic + header size
constexpr uint32_t kMaxHeaderBytes = 1 << 20;
constexpr int kMaxRank = 64;

size_t ElementBytes(DType dtype) { return dtype == DType::kInt64 ? sizeof(int64_t) : sizeof(float); }

// Product of `shape`, or an error for a negative dimension or an overflow.
absl::StatusOr<int64_t> NumElements(const std::vector<int64_t>& shape, size_t element_bytes) {
  if (shape.size() > kMaxRank) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", shape.size(), " > ", kMaxRank));
  }
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("negative dimension ", d));
    if (__builtin_mul_overflow(n, d, &n) ||
        n > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(element_bytes)) {
      return absl::InvalidArgumentError("the element count overflows");
    }
  }
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The frame's prefix and header as one string.
absl::StatusOr<std::string> Header(const std::string& name, DType dtype,
                                   const std::vector<int64_t>& shape, size_t values) {
  if (dtype == DType::kString) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "': string tensors cannot be encoded"));
  }
  absl::StatusOr<int64_t> n = NumElements(shape, ElementBytes(dtype));
  if (!n.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ", n.status().message()));
  }
  if (static_cast<size_t>(*n) != values) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': shape ",
                                                   ShapeString(shape), " has ", *n,
                                                   " elements but there are ", values, " values"));
  }
  wire::TensorHeader h;
  h.set_name(name);
  h.set_dtype(dtype == DType::kFloat ? wire::DT_FLOAT : wire::DT_INT64);
  for (int64_t d : shape) h.add_shape(d);
  h.set_payload_bytes(values * ElementBytes(dtype));
  std::string out(kPrefixBytes, '\0');
  const uint32_t prefix[2] = {kMagic, static_cast<uint32_t>(h.ByteSizeLong())};
  std::memcpy(out.data(), prefix, kPrefixBytes);
  h.AppendToString(&out);
  return out;
}

grpc::ByteBuffer Frame(const std::string& header, grpc::Slice payload) {
  grpc::Slice slices[2] = {grpc::Slice(header), std::move(payload)};
  return grpc::ByteBuffer(slices, slices[1].size() > 0 ? 2 : 1);
}

size_t ValueCount(const Tensor& t) {
  return t.dtype == DType::kInt64 ? t.ints.size() : t.floats.size();
}

void* ValueData(Tensor& t) {
  return t.dtype == DType::kInt64 ? static_cast<void*>(t.ints.data()) : t.floats.data();
}

// Reads consecutive bytes across the slices of a received buffer.
class SliceReader {
 public:
  explicit SliceReader(std::vector<grpc::Slice> slices) : slices_(std::move(slices)) {}
  // Copies `n` bytes to `dst`; the caller checked that they remain.
  void Read(void* dst, size_t n) {
    char* out = static_cast<char*>(dst);
    while (n > 0) {
      const grpc::Slice& s = slices_[slice_];
      const size_t take = std::min(n, s.size() - offset_);
      std::memcpy(out, s.begin() + offset_, take);
      out += take;
      n -= take;
      offset_ += take;
      if (offset_ == s.size()) {
        ++slice_;
        offset_ = 0;
      }
    }
  }

 private:
  std::vector<grpc::Slice> slices_;
  size_t slice_ = 0;
  size_t offset_ = 0;
};

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("tensor frame: ", what));
}

}  // namespace

absl::StatusOr<grpc::ByteBuffer> EncodeTensor(const std::string& name, const Tensor& tensor) {
  absl::StatusOr<std::string> header = Header(name, tensor.dtype, tensor.shape, ValueCount(tensor));
  if (!header.ok()) return header.status();
  const size_t bytes = ValueCount(tensor) * ElementBytes(tensor.dtype);
  const void* data = tensor.dtype == DType::kInt64 ? static_cast<const void*>(tensor.ints.data())
                                                   : tensor.floats.data();
  return Frame(*header, bytes > 0 ? grpc::Slice(data, bytes) : grpc::Slice());
}

absl::StatusOr<grpc::ByteBuffer> EncodeTensor(const std::string& name, Tensor&& tensor) {
  absl::StatusOr<std::string> header = Header(name, tensor.dtype, tensor.shape, ValueCount(tensor));
  if (!header.ok()) return header.status();
  const size_t bytes = ValueCount(tensor) * ElementBytes(tensor.dtype);
  if (bytes == 0) return Frame(*header, grpc::Slice());
  // The slice owns the values from here; gRPC calls the deleter when the
  // last reference to it goes.
  auto* owned = new Tensor(std::move(tensor));
  grpc::Slice payload(ValueData(*owned), bytes, [](void* p) { delete static_cast<Tensor*>(p); },
                      owned);
  return Frame(*header, std::move(payload));
}

absl::StatusOr<grpc::ByteBuffer> EncodeMatrix(const std::string& name, const RowMatrixXf& matrix) {
  absl::StatusOr<std::string> header =
      Header(name, DType::kFloat, {matrix.rows(), matrix.cols()}, matrix.size());
  if (!header.ok()) return header.status();
  const size_t bytes = matrix.size() * sizeof(float);
  return Frame(*header, bytes > 0 ? grpc::Slice(matrix.data(), bytes) : grpc::Slice());
}

absl::StatusOr<grpc::ByteBuffer> EncodeMatrixView(const std::string& name,
                                                  const RowMatrixXf& matrix) {
  absl::StatusOr<std::string> header =
      Header(name, DType::kFloat, {matrix.rows(), matrix.cols()}, matrix.size());
  if (!header.ok()) return header.status();
  const size_t bytes = matrix.size() * sizeof(float);
  return Frame(*header, bytes > 0 ? grpc::Slice(matrix.data(), bytes, grpc::Slice::STATIC_SLICE)
                                  : grpc::Slice());
}

namespace {

// A frame whose header was read and checked; `reader` is at the payload,
// which has exactly `count` values.
struct ParsedFrame {
  std::string name;
  DType dtype = DType::kFloat;
  std::vector<int64_t> shape;
  int64_t count = 0;
  std::unique_ptr<SliceReader> reader;
};

absl::StatusOr<ParsedFrame> ParseFrame(const grpc::ByteBuffer& buffer) {
  const size_t total = buffer.Length();
  if (total < kPrefixBytes) {
    return Corrupt(absl::StrCat("truncated: ", total, " bytes, shorter than its ",
                                kPrefixBytes, "-byte prefix"));
  }
  std::vector<grpc::Slice> slices;
  if (grpc::Status s = buffer.Dump(&slices); !s.ok()) {
    return Corrupt(absl::StrCat("cannot read the buffer: ", s.error_message()));
  }
  ParsedFrame f;
  f.reader = std::make_unique<SliceReader>(std::move(slices));
  uint32_t prefix[2];
  f.reader->Read(prefix, kPrefixBytes);
  if (prefix[0] != kMagic) return Corrupt("not a tensor frame (bad magic)");
  const uint32_t header_bytes = prefix[1];
  size_t left = total - kPrefixBytes;
  if (header_bytes > kMaxHeaderBytes || header_bytes > left) {
    return Corrupt(absl::StrCat("truncated: the header is ", header_bytes, " bytes but ", left,
                                " bytes follow the prefix"));
  }
  std::string header_data(header_bytes, '\0');
  f.reader->Read(header_data.data(), header_bytes);
  left -= header_bytes;
  wire::TensorHeader header;
  if (!header.ParseFromString(header_data)) return Corrupt("the header does not parse");

  f.name = header.name();
  const std::string what = absl::StrCat("tensor '", f.name, "': ");
  switch (header.dtype()) {
    case wire::DT_FLOAT: f.dtype = DType::kFloat; break;
    case wire::DT_INT64: f.dtype = DType::kInt64; break;
    default: return Corrupt(absl::StrCat(what, "unknown dtype ", header.dtype()));
  }
  f.shape.assign(header.shape().begin(), header.shape().end());
  absl::StatusOr<int64_t> n = NumElements(f.shape, ElementBytes(f.dtype));
  if (!n.ok()) {
    return Corrupt(absl::StrCat(what, "shape ", ShapeString(f.shape), ": ", n.status().message()));
  }
  f.count = *n;
  const uint64_t want = static_cast<uint64_t>(f.count) * ElementBytes(f.dtype);
  if (header.payload_bytes() != want) {
    return Corrupt(absl::StrCat(what, "shape ", ShapeString(f.shape), " of ", DTypeName(f.dtype),
                                " needs ", want, " bytes, the header says ",
                                header.payload_bytes()));
  }
  if (left != want) {
    return Corrupt(left < want
                       ? absl::StrCat(what, "truncated: ", left, " of ", want, " payload bytes")
                       : absl::StrCat(what, left - want, " trailing bytes"));
  }
  return f;
}

}  // namespace

absl::StatusOr<NamedTensor> DecodeTensor(const grpc::ByteBuffer& buffer) {
  absl::StatusOr<ParsedFrame> f = ParseFrame(buffer);
  if (!f.ok()) return f.status();
  NamedTensor out;
  out.name = std::move(f->name);
  Tensor& t = out.tensor;
  t.dtype = f->dtype;
  t.shape = std::move(f->shape);
  if (t.dtype == DType::kFloat) {
    t.floats.resize(f->count);
  } else {
    t.ints.resize(f->count);
  }
  f->reader->Read(ValueData(t), f->count * ElementBytes(t.dtype));
  return out;
}

absl::StatusOr<RowMatrixXf> DecodeMatrix(const grpc::ByteBuffer& buffer, std::string* name) {
  absl::StatusOr<ParsedFrame> f = ParseFrame(buffer);
  if (!f.ok()) return f.status();
  if (f->dtype != DType::kFloat || f->shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", f->name, "' is ",
                                                   DTypeName(f->dtype), " ",
                                                   ShapeString(f->shape),
                                                   ", not a float32 matrix"));
  }
  RowMatrixXf m(f->shape[0], f->shape[1]);
  f->reader->Read(m.data(), f->count * sizeof(float));
  *name = std::move(f->name);
  return m;
}

}  // namespace estuary
