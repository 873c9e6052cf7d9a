#include "common/tensor_codec.h"

#include <numeric>

#include "gtest/gtest.h"
#include "proto/tensor.pb.h"

namespace estuary {
namespace {

std::vector<grpc::Slice> Slices(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> s;
  EXPECT_TRUE(b.Dump(&s).ok());
  return s;
}

std::string Bytes(const grpc::ByteBuffer& b) {
  std::string out;
  for (const grpc::Slice& s : Slices(b)) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// The same bytes cut into slices of `chunk` bytes, as a receiver may get them.
grpc::ByteBuffer Rechunk(const std::string& bytes, size_t chunk) {
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i < bytes.size(); i += chunk) {
    slices.emplace_back(bytes.data() + i, std::min(chunk, bytes.size() - i));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

absl::StatusOr<NamedTensor> RoundTrip(const std::string& name, const Tensor& t) {
  absl::StatusOr<grpc::ByteBuffer> b = EncodeTensor(name, t);
  if (!b.ok()) return b.status();
  return DecodeTensor(*b);
}

TEST(TensorCodecTest, FloatAndIntTensorsRoundTrip) {
  std::vector<float> f(2 * 3 * 4);
  std::iota(f.begin(), f.end(), -1.5f);
  auto floats = RoundTrip("dnn/hiddenlayer_0/kernel", Tensor::Floats({2, 3, 4}, f));
  ASSERT_TRUE(floats.ok()) << floats.status();
  EXPECT_EQ(floats->name, "dnn/hiddenlayer_0/kernel");
  EXPECT_EQ(floats->tensor.dtype, DType::kFloat);
  EXPECT_EQ(floats->tensor.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(floats->tensor.floats, f);

  const std::vector<int64_t> ids = {0, -1, std::numeric_limits<int64_t>::max(), 42};
  auto ints = RoundTrip("ids", Tensor::Ints({4}, ids));
  ASSERT_TRUE(ints.ok()) << ints.status();
  EXPECT_EQ(ints->tensor.dtype, DType::kInt64);
  EXPECT_EQ(ints->tensor.ints, ids);
  EXPECT_TRUE(ints->tensor.floats.empty());
}

TEST(TensorCodecTest, ScalarsAndEmptyTensors) {
  auto scalar = RoundTrip("global_step", Tensor::Ints({}, {7}));
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_TRUE(scalar->tensor.shape.empty());
  EXPECT_EQ(scalar->tensor.ints, std::vector<int64_t>{7});

  auto empty = RoundTrip("", Tensor::Floats({0, 5}, {}));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->name, "");
  EXPECT_EQ(empty->tensor.shape, (std::vector<int64_t>{0, 5}));
  EXPECT_TRUE(empty->tensor.floats.empty());
}

TEST(TensorCodecTest, MatricesRoundTripAndOnlyMatricesDecodeAsSuch) {
  RowMatrixXf m(3, 2);
  m << 1, 2, 3, 4, 5, 6;
  absl::StatusOr<grpc::ByteBuffer> b = EncodeMatrix("w", m);
  ASSERT_TRUE(b.ok()) << b.status();
  std::string name;
  absl::StatusOr<RowMatrixXf> back = DecodeMatrix(*b, &name);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(name, "w");
  EXPECT_EQ(*back, m);
  // A matrix is a [rows, cols] float tensor.
  auto as_tensor = DecodeTensor(*b);
  ASSERT_TRUE(as_tensor.ok());
  EXPECT_EQ(as_tensor->tensor.shape, (std::vector<int64_t>{3, 2}));

  auto vector = EncodeTensor("v", Tensor::Floats({6}, {1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(DecodeMatrix(*vector, &name).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TensorCodecTest, MovedInTensorIsNotCopied) {
  Tensor t = Tensor::Floats({1024}, std::vector<float>(1024, 0.5f));
  const float* values = t.floats.data();
  absl::StatusOr<grpc::ByteBuffer> b = EncodeTensor("g", std::move(t));
  ASSERT_TRUE(b.ok());
  std::vector<grpc::Slice> slices = Slices(*b);
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(static_cast<const void*>(slices[1].begin()), static_cast<const void*>(values));
  // The buffer owns the memory: copies of it outlive everything else.
  grpc::ByteBuffer copy = *b;
  b = absl::UnknownError("dropped");
  slices.clear();
  auto back = DecodeTensor(copy);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->tensor.floats, std::vector<float>(1024, 0.5f));
}

TEST(TensorCodecTest, DecodesHoweverTheBufferIsSliced) {
  std::vector<int64_t> v(100);
  std::iota(v.begin(), v.end(), 1000);
  const std::string bytes = Bytes(*EncodeTensor("ids", Tensor::Ints({10, 10}, v)));
  for (size_t chunk : {1, 3, 7, 64, 1000}) {
    auto back = DecodeTensor(Rechunk(bytes, chunk));
    ASSERT_TRUE(back.ok()) << chunk << ": " << back.status();
    EXPECT_EQ(back->tensor.ints, v);
  }
}

TEST(TensorCodecTest, RefusesWhatItCannotEncode) {
  EXPECT_EQ(EncodeTensor("s", Tensor::Strings({1}, {"a"})).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto mismatch = EncodeTensor("w", Tensor::Floats({2, 2}, {1, 2, 3}));
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.status().message().find("shape [2, 2] has 4 elements but there are 3 values"),
            absl::string_view::npos)
      << mismatch.status();
  EXPECT_EQ(EncodeTensor("n", Tensor::Floats({-1}, {})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TensorCodecTest, EveryTruncationIsDataLossNotACrash) {
  const std::string bytes = Bytes(*EncodeTensor("w", Tensor::Floats({2, 3}, {1, 2, 3, 4, 5, 6})));
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto back = DecodeTensor(Rechunk(bytes.substr(0, len), 5));
    EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss) << len;
  }
  auto trailing = DecodeTensor(Rechunk(bytes + "xy", 4));
  EXPECT_EQ(trailing.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(trailing.status().message().find("tensor 'w': 2 trailing bytes"), absl::string_view::npos)
      << trailing.status();
  auto short_payload = DecodeTensor(Rechunk(bytes.substr(0, bytes.size() - 4), 4));
  EXPECT_NE(short_payload.status().message().find("truncated: 20 of 24 payload bytes"),
            absl::string_view::npos)
      << short_payload.status();
}

// A frame with `header` after a valid prefix, then `payload`.
grpc::ByteBuffer Forged(const wire::TensorHeader& header, const std::string& payload) {
  const std::string h = header.SerializeAsString();
  const uint32_t prefix[2] = {0x314E5445, static_cast<uint32_t>(h.size())};
  std::string bytes(reinterpret_cast<const char*>(prefix), sizeof(prefix));
  return Rechunk(bytes + h + payload, 1 << 20);
}

TEST(TensorCodecTest, CorruptFramesGiveClearErrors) {
  auto expect = [](const grpc::ByteBuffer& b, const std::string& message) {
    absl::StatusOr<NamedTensor> got = DecodeTensor(b);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << message;
    EXPECT_NE(got.status().message().find(message), absl::string_view::npos) << got.status();
  };
  expect(Rechunk("not a tensor at all", 4), "not a tensor frame (bad magic)");
  std::string huge_header("ETN1\xff\xff\xff\x7f", 8);
  expect(Rechunk(huge_header, 8), "truncated: the header is 2147483647 bytes but 0 bytes follow");
  std::string garbage_header = std::string("ETN1\x03\0\0\0", 8) + "\xff\xff\xff";
  expect(Rechunk(garbage_header, 8), "the header does not parse");

  wire::TensorHeader h;
  h.set_name("w");
  h.set_dtype(wire::DT_FLOAT);
  h.add_shape(2);
  h.set_payload_bytes(8);
  EXPECT_TRUE(DecodeTensor(Forged(h, std::string(8, '\0'))).ok());
  h.set_payload_bytes(12);
  expect(Forged(h, std::string(12, '\0')), "tensor 'w': shape [2] of float32 needs 8 bytes, the header says 12");
  h.set_payload_bytes(8);
  h.set_dtype(static_cast<wire::DataType>(7));
  expect(Forged(h, std::string(8, '\0')), "tensor 'w': unknown dtype 7");
  h.set_dtype(wire::DT_INT64);
  h.clear_shape();
  h.add_shape(-1);
  expect(Forged(h, ""), "tensor 'w': shape [-1]: negative dimension -1");
  h.clear_shape();
  h.add_shape(1LL << 40);
  h.add_shape(1LL << 40);
  expect(Forged(h, ""), "the element count overflows");
}

TEST(TensorCodecTest, MatrixViewRefersToTheMatrix) {
  RowMatrixXf m(3, 2);
  m << 1, 2, 3, 4, 5, 6;
  absl::StatusOr<grpc::ByteBuffer> bb = EncodeMatrixView("v", m);
  ASSERT_TRUE(bb.ok());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(bb->Dump(&slices).ok());
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(static_cast<const void*>(slices[1].begin()), static_cast<const void*>(m.data()));
  std::string name;
  absl::StatusOr<RowMatrixXf> back = DecodeMatrix(*bb, &name);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(name, "v");
  EXPECT_TRUE(*back == m);
}

}  // namespace
}  // namespace estuary
