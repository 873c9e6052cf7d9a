// metrics_hook_bench: what the Prometheus metrics cost per training step —
// the step-phase clock reads RunTrainLoop makes (6 absl::Now) and
// MetricsHook::AfterStep (counters, gauges, 5 histogram observations, 4
// phase counters) — and one scrape of the whole registry. CPU time per
// iteration, so the figure holds on a loaded machine; compare it with the
// one-process DNN step (bench/RESULTS.md, "Metrics overhead").
//
//   bazel run -c opt //bench:metrics_hook_bench
#include <memory>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "common/metrics.h"
#include "estimator/metrics_hook.h"

namespace estuary {
namespace {

void BM_StepPhaseClockReads(benchmark::State& state) {
  for (auto _ : state) {
    StepPhases p;
    absl::Time t0 = absl::Now();
    absl::Time t1 = absl::Now();
    p.input = t1 - t0;
    absl::Time t2 = absl::Now();
    absl::Time t3 = absl::Now();
    absl::Time t4 = absl::Now();
    p.compute = t4 - t3;
    absl::Time t5 = absl::Now();
    p.apply = t5 - t4 + (t2 - t1);
    p.total = t5 - t0;
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_StepPhaseClockReads);

void BM_MetricsHookAfterStep(benchmark::State& state) {
  std::unique_ptr<TaskMetrics> metrics = *TaskMetrics::Create({"worker", "0"});
  MetricsHook hook(metrics.get());
  (void)hook.Begin(0);
  RunContext run;
  StepInfo step;
  step.loss = 0.5;
  step.batch_size = 256;
  step.phases = {absl::Microseconds(300), absl::Milliseconds(4), absl::Microseconds(50),
                 absl::Microseconds(700), absl::Milliseconds(5)};
  for (auto _ : state) {
    ++step.global_step;
    benchmark::DoNotOptimize(hook.AfterStep(step, &run));
  }
}
BENCHMARK(BM_MetricsHookAfterStep);

void BM_Scrape(benchmark::State& state) {
  std::unique_ptr<TaskMetrics> metrics = *TaskMetrics::Create({"worker", "0"});
  MetricsHook hook(metrics.get());
  for (auto _ : state) benchmark::DoNotOptimize(metrics->Scrape());
}
BENCHMARK(BM_Scrape);

}  // namespace
}  // namespace estuary

BENCHMARK_MAIN();
