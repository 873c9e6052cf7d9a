// A 4 MB float32 tensor through a gRPC byte buffer and back (encode +
// decode, in process, no network): the tensor codec (common/tensor_codec.h)
// against a protobuf message with `repeated float` values and one with a
// `bytes` field, both through gRPC's own protobuf serialization.
//
//   bazel run //bench:tensor_codec_bench [-- --mallopt]
//
// --mallopt raises glibc's mmap and trim thresholds first (DESIGN.md,
// performance notes: otherwise every 4 MB buffer is an mmap + munmap).
#include <malloc.h>

#include <cstring>
#include <numeric>

#include "bench/tensor_bench.pb.h"
#include "benchmark/benchmark.h"
#include "common/tensor_codec.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace estuary {
namespace {

constexpr int64_t kRows = 1024;
constexpr int64_t kCols = 1024;  // 1 Mi floats = 4 MiB
constexpr int64_t kBytes = kRows * kCols * sizeof(float);

Tensor MakeTensor() {
  std::vector<float> v(kRows * kCols);
  std::iota(v.begin(), v.end(), 0.0f);
  return Tensor::Floats({kRows, kCols}, std::move(v));
}

template <typename Message>
grpc::ByteBuffer Serialize(const Message& m) {
  grpc::ByteBuffer bb;
  bool own = false;
  if (!grpc::SerializationTraits<Message>::Serialize(m, &bb, &own).ok()) std::abort();
  return bb;
}

template <typename Message>
Message Deserialize(grpc::ByteBuffer* bb) {
  Message m;
  if (!grpc::SerializationTraits<Message>::Deserialize(bb, &m).ok()) std::abort();
  return m;
}

// Encode (one copy into a slice) + decode (one copy out).
void BM_CodecCopy(benchmark::State& state) {
  const Tensor t = MakeTensor();
  for (auto _ : state) {
    absl::StatusOr<grpc::ByteBuffer> bb = EncodeTensor("w", t);
    absl::StatusOr<NamedTensor> back = DecodeTensor(*bb);
    benchmark::DoNotOptimize(back->tensor.floats.data());
  }
  state.SetBytesProcessed(state.iterations() * kBytes);
}
BENCHMARK(BM_CodecCopy);

// Encode by move (no copy: the slice owns the tensor) + decode (one copy).
// Making the tensor to move in is not timed.
void BM_CodecZeroCopyEncode(benchmark::State& state) {
  const Tensor t = MakeTensor();
  for (auto _ : state) {
    state.PauseTiming();
    Tensor fresh = t;
    state.ResumeTiming();
    absl::StatusOr<grpc::ByteBuffer> bb = EncodeTensor("w", std::move(fresh));
    absl::StatusOr<NamedTensor> back = DecodeTensor(*bb);
    benchmark::DoNotOptimize(back->tensor.floats.data());
  }
  state.SetBytesProcessed(state.iterations() * kBytes);
}
BENCHMARK(BM_CodecZeroCopyEncode);

// `repeated float`: copy into the field, serialize, parse, copy out.
void BM_ProtoRepeatedFloat(benchmark::State& state) {
  const Tensor t = MakeTensor();
  for (auto _ : state) {
    bench::RepeatedFloatTensor m;
    m.set_name("w");
    m.mutable_shape()->Add(t.shape.begin(), t.shape.end());
    m.mutable_values()->Add(t.floats.begin(), t.floats.end());
    grpc::ByteBuffer bb = Serialize(m);
    bench::RepeatedFloatTensor r = Deserialize<bench::RepeatedFloatTensor>(&bb);
    Tensor back = Tensor::Floats({r.shape().begin(), r.shape().end()},
                                 {r.values().begin(), r.values().end()});
    benchmark::DoNotOptimize(back.floats.data());
  }
  state.SetBytesProcessed(state.iterations() * kBytes);
}
BENCHMARK(BM_ProtoRepeatedFloat);

// `bytes`: copy into the field, serialize, parse, copy out.
void BM_ProtoBytes(benchmark::State& state) {
  const Tensor t = MakeTensor();
  for (auto _ : state) {
    bench::BytesTensor m;
    m.set_name("w");
    m.mutable_shape()->Add(t.shape.begin(), t.shape.end());
    m.set_data(t.floats.data(), kBytes);
    grpc::ByteBuffer bb = Serialize(m);
    bench::BytesTensor r = Deserialize<bench::BytesTensor>(&bb);
    Tensor back;
    back.shape.assign(r.shape().begin(), r.shape().end());
    back.floats.resize(r.data().size() / sizeof(float));
    std::memcpy(back.floats.data(), r.data().data(), r.data().size());
    benchmark::DoNotOptimize(back.floats.data());
  }
  state.SetBytesProcessed(state.iterations() * kBytes);
}
BENCHMARK(BM_ProtoBytes);

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mallopt") == 0) {
      mallopt(M_MMAP_THRESHOLD, 64 << 20);
      mallopt(M_TRIM_THRESHOLD, 256 << 20);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
