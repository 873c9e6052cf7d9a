#include "estimator/hooks.h"

#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {

absl::Status SummarySaverHook::Begin(int64_t global_step) {
  last_step_ = global_step;
  return absl::OkStatus();
}

absl::Status SummarySaverHook::AfterStep(const StepInfo& step, RunContext*) {
  const int64_t before = last_step_;
  last_step_ = step.global_step;
  if (!(every_steps_ > 0 && CrossedMultiple(before, step.global_step, every_steps_))) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(writer_->AddScalar("loss", step.loss, step.global_step));
  if (step.summaries == nullptr) return absl::OkStatus();
  for (const auto& [tag, value] : step.summaries->scalars) {
    RETURN_IF_ERROR(writer_->AddScalar(tag, value, step.global_step));
  }
  for (const auto& [tag, values] : step.summaries->histograms) {
    RETURN_IF_ERROR(writer_->AddHistogram(tag, absl::MakeConstSpan(values), step.global_step));
  }
  return absl::OkStatus();
}

bool SummarySaverHook::WantsSummaries(int64_t global_step) const {
  return every_steps_ > 0 && CrossedMultiple(global_step, global_step + 1, every_steps_);
}

absl::Status LoggingHook::Begin(int64_t global_step) {
  last_log_ = now_();
  last_log_step_ = global_step;
  last_step_ = global_step;
  return absl::OkStatus();
}

absl::Status LoggingHook::AfterStep(const StepInfo& step, RunContext*) {
  const int64_t g = step.global_step;
  const int64_t before = last_step_;
  last_step_ = g;
  if (!(every_steps_ > 0 && CrossedMultiple(before, g, every_steps_)) && g != 1) {
    return absl::OkStatus();
  }
  const absl::Time now = now_();
  const double secs = absl::ToDoubleSeconds(now - last_log_);
  spdlog::info("loss = {:.7g}, step = {} ({:.3f} sec)", step.loss, g, secs);
  if (g > last_log_step_ && secs > 0) {
    const double rate = (g - last_log_step_) / secs;
    if (g != 1) spdlog::info("global_step/sec: {:.4g}", rate);
    if (writer_ != nullptr) {
      RETURN_IF_ERROR(writer_->AddScalar("global_step/sec", rate, g));
      RETURN_IF_ERROR(writer_->AddScalar("examples/sec", rate * step.batch_size, g));
    }
  }
  last_log_ = now;
  last_log_step_ = g;
  return absl::OkStatus();
}

absl::Status CheckpointSaverHook::Begin(int64_t global_step) {
  last_save_ = now_();
  last_save_step_ = global_step;
  for (CheckpointSaverListener* l : listeners_) RETURN_IF_ERROR(l->Begin(global_step));
  return absl::OkStatus();
}

absl::Status CheckpointSaverHook::Save() {
  ASSIGN_OR_RETURN(std::string prefix, strategy_->SaveCheckpoint());
  spdlog::info("saving checkpoints for {} into {}", strategy_->global_step(), prefix);
  last_save_ = now_();
  last_save_step_ = strategy_->global_step();
  for (CheckpointSaverListener* l : listeners_) {
    RETURN_IF_ERROR(l->AfterSave(last_save_step_, prefix));
  }
  return absl::OkStatus();
}

absl::Status CheckpointSaverHook::AfterStep(const StepInfo& step, RunContext*) {
  const bool due = every_steps_.has_value()
                       ? step.global_step - last_save_step_ >= *every_steps_
                       : now_() - last_save_ >= absl::Seconds(every_secs_);
  return due ? Save() : absl::OkStatus();
}

absl::Status CheckpointSaverHook::End(int64_t global_step) {
  if (global_step != last_save_step_) RETURN_IF_ERROR(Save());
  for (CheckpointSaverListener* l : listeners_) RETURN_IF_ERROR(l->End(global_step));
  return absl::OkStatus();
}

absl::Status StopAtStepHook::AfterStep(const StepInfo& step, RunContext* run) {
  if (step.global_step >= last_step_) run->RequestStop();
  return absl::OkStatus();
}

absl::Status StepCallbackHook::AfterStep(const StepInfo& step, RunContext* run) {
  if (!fn_(step)) run->RequestStop();
  return absl::OkStatus();
}

absl::Status ProgressReportHook::Begin(int64_t global_step) {
  progress_ = TrainingProgress{};
  progress_.global_step = global_step;
  window_start_ = now_();
  window_steps_ = window_examples_ = 0;
  window_loss_ = 0;
  window_phases_ = StepPhases{};
  return absl::OkStatus();
}

void ProgressReportHook::Flush(absl::Time now) {
  if (window_steps_ == 0) return;
  const double secs = absl::ToDoubleSeconds(now - window_start_);
  if (secs > 0) {
    progress_.steps_per_sec = window_steps_ / secs;
    progress_.examples_per_sec = window_examples_ / secs;
  }
  progress_.loss = window_loss_ / window_steps_;
  const StepPhases& p = window_phases_;
  progress_.has_phases = p.total > absl::ZeroDuration();
  auto mean = [this](absl::Duration d) { return absl::ToDoubleSeconds(d) / window_steps_; };
  progress_.input_secs = mean(p.input);
  progress_.compute_secs = mean(p.compute);
  progress_.communicate_secs = mean(p.communicate);
  progress_.apply_secs = mean(p.apply);
  report_(progress_);
  window_start_ = now;
  window_steps_ = window_examples_ = 0;
  window_loss_ = 0;
  window_phases_ = StepPhases{};
}

absl::Status ProgressReportHook::AfterStep(const StepInfo& step, RunContext*) {
  progress_.global_step = step.global_step;
  ++progress_.local_steps;
  ++window_steps_;
  window_examples_ += step.batch_size;
  window_loss_ += step.loss;
  window_phases_.input += step.phases.input;
  window_phases_.compute += step.phases.compute;
  window_phases_.communicate += step.phases.communicate;
  window_phases_.apply += step.phases.apply;
  window_phases_.total += step.phases.total;
  const absl::Time now = now_();
  if (progress_.local_steps == 1 || now - window_start_ >= window_) Flush(now);
  return absl::OkStatus();
}

absl::Status ProgressReportHook::End(int64_t global_step) {
  Flush(now_());
  return absl::OkStatus();
}

}  // namespace estuary
