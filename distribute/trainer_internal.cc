#include "distribute/trainer_internal.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "distribute/keys.h"

namespace estuary {
namespace {

// How long the chief waits for the evaluator's last evaluation.
constexpr absl::Duration kEvaluatorDoneTimeout = absl::Minutes(10);

}  // namespace

void LiveTrainingReport::AddTo(TrainArgs* args, bool chief) {
  TaskRuntime* runtime = runtime_;
  args->hooks.push_back(std::make_shared<ProgressReportHook>([runtime](const TrainingProgress& p) {
    runtime->report().Update([&p](coordination::TaskReport* r) {
      r->set_global_step(p.global_step);
      r->set_local_steps(p.local_steps);
      r->set_steps_per_sec(p.steps_per_sec);
      r->set_examples_per_sec(p.examples_per_sec);
      r->set_loss(p.loss);
      r->set_has_loss(true);
      if (p.has_phases) {
        coordination::StepPhases* ph = r->mutable_phases();
        ph->set_input_wait_secs(p.input_secs);
        ph->set_compute_secs(p.compute_secs);
        ph->set_communication_secs(p.communicate_secs);
        ph->set_apply_secs(p.apply_secs);
      }
    });
  }));
  if (chief) args->saving_listeners.push_back(this);
}

absl::Status LiveTrainingReport::AfterSave(int64_t global_step, const std::string& prefix) {
  runtime_->report().Update([&](coordination::TaskReport* r) {
    r->set_last_checkpoint_step(global_step);
    r->set_last_checkpoint(prefix);
  });
  return absl::OkStatus();
}

OnRuntimeStop::OnRuntimeStop(TaskRuntime* runtime, std::function<void()> on_stop)
    : thread_([this, runtime, on_stop = std::move(on_stop)] {
        while (!done_.HasBeenNotified()) {
          // Polls only to notice `done_`; the stop itself wakes the wait.
          if (!absl::IsDeadlineExceeded(runtime->WaitForStop(absl::Milliseconds(50)))) {
            on_stop();
            return;
          }
        }
      }) {}

OnRuntimeStop::~OnRuntimeStop() {
  done_.Notify();
  thread_.join();
}

absl::Duration TrainerCallTimeout(const DistributionConfig& dist) {
  return std::max(dist.heartbeat_timeout * 3, absl::Seconds(30));
}

absl::Status FinishChiefTraining(const JobSpec& job, const TfConfig& tf, Store& store,
                                 int64_t global_step,
                                 const std::function<absl::StatusOr<std::string>()>& save) {
  const absl::Duration call_timeout = TrainerCallTimeout(job.distribution);
  absl::StatusOr<int64_t> saved = checkpoint::LatestStep(job.model_dir);
  if (!saved.ok() || *saved < global_step) {
    ASSIGN_OR_RETURN(std::string prefix, save());
    ASSIGN_OR_RETURN(saved, checkpoint::StepFromPrefix(prefix));
    spdlog::info("saving checkpoints for {} into {}", *saved, prefix);
  }
  RETURN_IF_ERROR(store.Set(kFinalStepKey, absl::StrCat(*saved), absl::Now() + call_timeout));
  spdlog::info("training finished: final checkpoint at global_step {}", *saved);
  if (tf.cluster.HasJob(kEvaluator)) {
    spdlog::info("waiting for the evaluator's final evaluation");
    RETURN_IF_ERROR(
        store.Wait({kEvaluatorDoneKey}, absl::Now() + kEvaluatorDoneTimeout).status());
  }
  return absl::OkStatus();
}

}  // namespace estuary
