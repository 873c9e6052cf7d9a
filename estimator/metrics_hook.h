// A training hook (hooks.h) that feeds a task's Prometheus metrics
// (common/metrics.h) from every step's StepInfo:
//   estuary_train_steps_total               steps this task ran (counter)
//   estuary_global_step                     global_step after the last step
//   estuary_train_examples_total            examples this task trained on
//   estuary_train_loss                      the last step's training loss
//   estuary_step_seconds                    histogram of StepPhases::total
//   estuary_step_phase_seconds{phase=...}   histograms of each phase: input,
//                                           compute, communicate, apply
//   estuary_step_phase_seconds_total{phase} counters: seconds in each phase
//   estuary_input_wait_fraction             input / total over the last window
//   estuary_train_examples_per_second       examples/s over the last window
// every metric with the task's labels (job, task). The window gauges are
// updated at most once per `window` (default 1 s) from the steps since the
// last update, so a scrape sees a recent rate, not a lifetime average.
// Cost per step: a few atomic adds and 6 histogram observations.
#ifndef ESTUARY_ESTIMATOR_METRICS_HOOK_H_
#define ESTUARY_ESTIMATOR_METRICS_HOOK_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"
#include "common/metrics.h"
#include "estimator/hooks.h"

namespace estuary {

class MetricsHook : public TrainingHook {
 public:
  // Registers the metrics in `metrics` (borrowed; must outlive the hook).
  // Two hooks on one TaskMetrics share the same metrics (the registry
  // returns the existing families and series).
  explicit MetricsHook(TaskMetrics* metrics, absl::Duration window = absl::Seconds(1),
                       Clock now = RealNow);
  absl::Status Begin(int64_t global_step) override;
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override;

 private:
  enum Phase { kInput, kCompute, kCommunicate, kApply, kPhases };

  const absl::Duration window_;
  const Clock now_;
  prometheus::Counter& steps_;
  prometheus::Gauge& global_step_;
  prometheus::Counter& examples_;
  prometheus::Gauge& loss_;
  prometheus::Histogram& step_seconds_;
  std::array<prometheus::Histogram*, kPhases> phase_seconds_;
  std::array<prometheus::Counter*, kPhases> phase_seconds_total_;
  prometheus::Gauge& input_wait_fraction_;
  prometheus::Gauge& examples_per_second_;
  // Since the last window update.
  absl::Time window_start_;
  absl::Duration window_input_;
  absl::Duration window_total_;
  int64_t window_examples_ = 0;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_METRICS_HOOK_H_
