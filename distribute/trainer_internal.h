// What the trainers of every strategy share (distribute/trainer.cc:
// parameter_server; distribute/multi_worker_trainer.cc:
// multi_worker_mirrored). Internal to //distribute:trainer.
#ifndef ESTUARY_DISTRIBUTE_TRAINER_INTERNAL_H_
#define ESTUARY_DISTRIBUTE_TRAINER_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "common/coordination/store.h"
#include "common/job_spec.h"
#include "common/task_runtime.h"
#include "estimator/estimator.h"

namespace estuary {

// Calls `on_stop` (once) when the task's runtime stops (SIGTERM, the chief
// ended the job or was lost), until destroyed: cancels RPCs or aborts
// collectives in flight. Starts one thread.
class OnRuntimeStop {
 public:
  OnRuntimeStop(TaskRuntime* runtime, std::function<void()> on_stop);
  ~OnRuntimeStop();

 private:
  absl::Notification done_;
  std::thread thread_;
};

// The live view's training side (common/status/): this task's progress
// (ProgressReportHook) and, on the chief, every checkpoint saved go into
// runtime->report(), which each heartbeat carries to the coordinator.
// Borrows the runtime; used on the training thread.
class LiveTrainingReport : public CheckpointSaverListener {
 public:
  explicit LiveTrainingReport(TaskRuntime* runtime) : runtime_(runtime) {}
  // Adds the progress hook, and for the chief this listener, to `args`
  // (which must not outlive this).
  void AddTo(TrainArgs* args, bool chief);
  // Records the checkpoint; never fails.
  absl::Status AfterSave(int64_t global_step, const std::string& prefix) override;

 private:
  TaskRuntime* const runtime_;
};

// The deadline of one coordination call made by a trainer.
absl::Duration TrainerCallTimeout(const DistributionConfig& dist);

// The chief's end of training, under every strategy: saves the final
// checkpoint through `save` unless the latest in model_dir already holds
// `global_step` (logging "saving checkpoints for N into PREFIX"), sets
// kFinalStepKey to its step ("training finished: final checkpoint at
// global_step N") and, when the cluster has an evaluator, waits for its
// final evaluation (kEvaluatorDoneKey). Errors: those of `save` and the
// Store (DeadlineExceeded when the evaluator does not finish).
absl::Status FinishChiefTraining(const JobSpec& job, const TfConfig& tf, Store& store,
                                 int64_t global_step,
                                 const std::function<absl::StatusOr<std::string>()>& save);

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_TRAINER_INTERNAL_H_
