#include "estimator/metrics_hook.h"

#include <utility>

namespace estuary {
namespace {

constexpr const char* kPhaseNames[] = {"input", "compute", "communicate", "apply"};

prometheus::Counter& AddCounter(TaskMetrics* m, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(m->registry()).Add(m->labels());
}

prometheus::Gauge& AddGauge(TaskMetrics* m, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(m->registry()).Add(m->labels());
}

}  // namespace

MetricsHook::MetricsHook(TaskMetrics* metrics, absl::Duration window, Clock now)
    : window_(window),
      now_(std::move(now)),
      steps_(AddCounter(metrics, "estuary_train_steps_total", "Training steps this task ran.")),
      global_step_(AddGauge(metrics, "estuary_global_step",
                            "global_step after this task's last step.")),
      examples_(AddCounter(metrics, "estuary_train_examples_total",
                           "Examples this task trained on.")),
      loss_(AddGauge(metrics, "estuary_train_loss", "Training loss of the last step.")),
      step_seconds_(prometheus::BuildHistogram()
                        .Name("estuary_step_seconds")
                        .Help("Wall time of a training step (reading its input to applying it).")
                        .Register(metrics->registry())
                        .Add(metrics->labels(), LatencyBuckets())),
      input_wait_fraction_(AddGauge(
          metrics, "estuary_input_wait_fraction",
          "Fraction of step time spent waiting for input over the last window (0-1).")),
      examples_per_second_(AddGauge(metrics, "estuary_train_examples_per_second",
                                    "Examples per second this task trained over the last "
                                    "window.")) {
  auto& histograms = prometheus::BuildHistogram()
                         .Name("estuary_step_phase_seconds")
                         .Help("Wall time of each phase of a training step: input (reading "
                               "the batch), compute (forward+backward), communicate (PS "
                               "pull/push, all-reduce), apply (local optimizer update).")
                         .Register(metrics->registry());
  auto& totals = prometheus::BuildCounter()
                     .Name("estuary_step_phase_seconds_total")
                     .Help("Seconds spent in each phase of the training steps.")
                     .Register(metrics->registry());
  for (int p = 0; p < kPhases; ++p) {
    const prometheus::Labels labels = metrics->LabelsWith({{"phase", kPhaseNames[p]}});
    phase_seconds_[p] = &histograms.Add(labels, LatencyBuckets());
    phase_seconds_total_[p] = &totals.Add(labels);
  }
}

absl::Status MetricsHook::Begin(int64_t global_step) {
  global_step_.Set(static_cast<double>(global_step));
  window_start_ = now_();
  window_input_ = window_total_ = absl::ZeroDuration();
  window_examples_ = 0;
  return absl::OkStatus();
}

absl::Status MetricsHook::AfterStep(const StepInfo& step, RunContext* run) {
  steps_.Increment();
  global_step_.Set(static_cast<double>(step.global_step));
  examples_.Increment(static_cast<double>(step.batch_size));
  loss_.Set(step.loss);
  const StepPhases& p = step.phases;
  step_seconds_.Observe(absl::ToDoubleSeconds(p.total));
  const absl::Duration phases[kPhases] = {p.input, p.compute, p.communicate, p.apply};
  for (int i = 0; i < kPhases; ++i) {
    const double secs = absl::ToDoubleSeconds(phases[i]);
    phase_seconds_[i]->Observe(secs);
    phase_seconds_total_[i]->Increment(secs);
  }
  window_input_ += p.input;
  window_total_ += p.total;
  window_examples_ += step.batch_size;
  const absl::Time now = now_();
  const absl::Duration elapsed = now - window_start_;
  if (elapsed >= window_) {
    if (window_total_ > absl::ZeroDuration()) {
      input_wait_fraction_.Set(absl::FDivDuration(window_input_, window_total_));
    }
    if (elapsed > absl::ZeroDuration()) {
      examples_per_second_.Set(window_examples_ / absl::ToDoubleSeconds(elapsed));
    }
    window_start_ = now;
    window_input_ = window_total_ = absl::ZeroDuration();
    window_examples_ = 0;
  }
  return absl::OkStatus();
}

}  // namespace estuary
