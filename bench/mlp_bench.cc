// Forward + backward of a 784-256-128-10 relu MLP at batch 256 (the DNN
// estimator's per-step model cost on Fashion-MNIST-sized input).
// bazel run -c opt //bench:mlp_bench
#include <memory>

#include "benchmark/benchmark.h"
#include "estimator/nn/mlp.h"

namespace estuary::nn {
namespace {

void BM_MlpForwardBackward(benchmark::State& state) {
  MlpConfig config;
  config.hidden_units = {256, 128};
  config.logits_dimension = 10;
  std::unique_ptr<ComputeContext> ctx;
  if (state.range(0) > 1) ctx = std::make_unique<ComputeContext>(static_cast<int>(state.range(0)));
  auto mlp = *Mlp::Create(config, 784, ctx.get());
  VariableMap vars;
  mlp->InitVariables(1, &vars);
  const RowMatrixXf x = RowMatrixXf::Random(256, 784);
  const RowMatrixXf dlogits = RowMatrixXf::Random(256, 10);
  MlpState mlp_state;
  for (auto _ : state) {
    auto logits = mlp->Forward(vars, x, true, nullptr, &mlp_state);
    auto grads = mlp->Backward(vars, mlp_state, dlogits);
    benchmark::DoNotOptimize(grads);
  }
  // 3 GEMMs per layer (forward, dW, dx), 2 flops per multiply-add.
  const double flops = 2.0 * 256 * (784 * 256 + 256 * 128 + 128 * 10) * 3;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MlpForwardBackward)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace estuary::nn

BENCHMARK_MAIN();
