// Training hooks (tf.train.SessionRunHook's shape): everything around the
// step body that is not the step itself — logging, summaries, checkpoint
// timing, stop conditions, user callbacks — so every strategy reuses them.
// RunTrainLoop (train_loop.h) calls, on the training thread:
//   Begin(global_step)       once, before the first step
//   BeforeStep(global_step)  before each step (a batch is in hand)
//   AfterStep(step, run)     after each step's update; run->RequestStop()
//                            ends training after this step (every hook
//                            still sees it)
//   End(global_step)         once, when training ends without error
// in the order the hooks are given. An error from any call ends training
// with that error (End is then not called).
//
// Hooks are not thread-safe; one loop drives them.
#ifndef ESTUARY_ESTIMATOR_HOOKS_H_
#define ESTUARY_ESTIMATOR_HOOKS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/summary_writer.h"
#include "estimator/model.h"
#include "estimator/strategy.h"

namespace estuary {

// The time source of the hooks that act on time (checkpoints every N
// seconds, steps per second); tests pass a fake one.
using Clock = std::function<absl::Time()>;
inline absl::Time RealNow() { return absl::Now(); }

// Where one step's wall time went, as RunTrainLoop measured it (absl::Now
// at each phase boundary; a few clock reads per step). Every field >= 0.
//   input        reading the step's batches from the input pipeline (and,
//                for a read-ahead strategy, the next step's batches)
//   compute      Forward + Backward of every local replica (in parallel)
//   communicate  waiting on other tasks: PS pull/push, all-reduce
//                (Strategy::TakeCommunicationTime)
//   apply        the rest of VariablesForStep, PrefetchVariables and
//                ApplyGradients: the local optimizer update and copies
//   total        from the start of reading the batches to the end of
//                ApplyGradients (the four above plus BeforeStep hooks)
struct StepPhases {
  absl::Duration input;
  absl::Duration compute;
  absl::Duration communicate;
  absl::Duration apply;
  absl::Duration total;
};

// What a step produced, as after_run sees it.
struct StepInfo {
  int64_t global_step = 0;  // after the step's update
  // The head's training loss of the step's batch (replicas in sync: the
  // mean over every replica, Strategy::ApplyGradients).
  double loss = 0;
  int64_t batch_size = 0;  // examples in the step's batches (this process's replicas)
  // The model's summaries of the step (replica 0's forward pass), when a
  // hook asked for them (TrainingHook::WantsSummaries); else null.
  const ModelSummaries* summaries = nullptr;
  StepPhases phases;  // this step's time split (RunTrainLoop)
};

class RunContext {
 public:
  void RequestStop() { stop_requested_ = true; }
  bool stop_requested() const { return stop_requested_; }

 private:
  bool stop_requested_ = false;
};

class TrainingHook {
 public:
  virtual ~TrainingHook() = default;
  virtual absl::Status Begin(int64_t global_step) { return absl::OkStatus(); }
  virtual absl::Status BeforeStep(int64_t global_step) { return absl::OkStatus(); }
  // Asked after BeforeStep: true when AfterStep of the step starting at
  // `global_step` needs the model's summaries (StepInfo::summaries); they
  // cost a little, so only on the steps that write them.
  virtual bool WantsSummaries(int64_t global_step) const { return false; }
  virtual absl::Status AfterStep(const StepInfo& step, RunContext* run) {
    return absl::OkStatus();
  }
  virtual absl::Status End(int64_t global_step) { return absl::OkStatus(); }
};

// True when a step moved global_step from `before` past a multiple of
// `every` (> 0). In one process global_step advances by one per step, so
// this is "after % every == 0"; under asynchronous training other workers'
// steps advance it too, and a hook still fires once per multiple crossed.
inline bool CrossedMultiple(int64_t before, int64_t after, int64_t every) {
  return after / every > before / every;
}

// Writes the scalar summary "loss" and the model's summaries (TF's
// fraction_of_zero_values / activation per DNN layer, linear bias /
// fraction_of_zero_weights: Model::Summarize) every `every_steps` steps
// (<= 0: never) (SummarySaverHook). The model's are asked for on the steps
// that will reach a multiple of every_steps (global_step + 1); a step that
// crosses one unasked (other workers' steps advanced global_step) writes
// "loss" only. `writer` is borrowed. Errors: the writer's (a histogram of
// NaN/inf values: InvalidArgument naming the tag).
class SummarySaverHook : public TrainingHook {
 public:
  SummarySaverHook(EventFileWriter* writer, int64_t every_steps)
      : writer_(writer), every_steps_(every_steps) {}
  absl::Status Begin(int64_t global_step) override;
  bool WantsSummaries(int64_t global_step) const override;
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override;

 private:
  EventFileWriter* const writer_;
  const int64_t every_steps_;
  int64_t last_step_ = 0;
};

// Every `every_steps` steps and at global step 1, logs
//   loss = <loss>, step = <global_step> (<secs since the last> sec)
// then (not at step 1) "global_step/sec: <rate>", and writes the summaries
// "global_step/sec" and "examples/sec" (= global_step/sec x the step's
// batch size: every worker's examples under asynchronous training)
// (LoggingTensorHook + StepCounterHook). `writer` is
// borrowed; null: log only (a cluster's non-chief workers). Errors: the
// writer's.
class LoggingHook : public TrainingHook {
 public:
  LoggingHook(EventFileWriter* writer, int64_t every_steps, Clock now = RealNow)
      : writer_(writer), every_steps_(every_steps), now_(std::move(now)) {}
  absl::Status Begin(int64_t global_step) override;
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override;

 private:
  EventFileWriter* const writer_;
  const int64_t every_steps_;
  const Clock now_;
  absl::Time last_log_;
  int64_t last_log_step_ = 0;
  int64_t last_step_ = 0;
};

// Told about the checkpoints a CheckpointSaverHook saves
// (tf.estimator.CheckpointSaverListener; train_and_evaluate evaluates them).
// Called on the training thread; an error ends training with it.
class CheckpointSaverListener {
 public:
  virtual ~CheckpointSaverListener() = default;
  virtual absl::Status Begin(int64_t global_step) { return absl::OkStatus(); }
  virtual absl::Status AfterSave(int64_t global_step, const std::string& prefix) {
    return absl::OkStatus();
  }
  // Once when training ends, after the final save.
  virtual absl::Status End(int64_t global_step) { return absl::OkStatus(); }
};

// Saves a checkpoint through the strategy every `every_steps` steps, or,
// without them, every `every_secs` seconds, and at the end unless the last
// step was just saved (CheckpointSaverHook); logs "saving checkpoints for
// <step> into <prefix>" and tells `listeners` (borrowed). Seconds are
// counted by `now` from Begin and from each save. `strategy` is borrowed.
// Errors: SaveCheckpoint's and the listeners'.
class CheckpointSaverHook : public TrainingHook {
 public:
  CheckpointSaverHook(Strategy* strategy, std::optional<int64_t> every_steps, double every_secs,
                      std::vector<CheckpointSaverListener*> listeners = {}, Clock now = RealNow)
      : strategy_(strategy),
        every_steps_(every_steps),
        every_secs_(every_secs),
        listeners_(std::move(listeners)),
        now_(std::move(now)) {}
  absl::Status Begin(int64_t global_step) override;
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override;
  absl::Status End(int64_t global_step) override;

 private:
  absl::Status Save();

  Strategy* const strategy_;
  const std::optional<int64_t> every_steps_;
  const double every_secs_;
  const std::vector<CheckpointSaverListener*> listeners_;
  const Clock now_;
  absl::Time last_save_;
  int64_t last_save_step_ = 0;
};

// Requests a stop once global_step reaches `last_step` (StopAtStepHook with
// last_step; Estimator::Train turns steps into last_step when it starts).
class StopAtStepHook : public TrainingHook {
 public:
  explicit StopAtStepHook(int64_t last_step) : last_step_(last_step) {}
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override;

 private:
  const int64_t last_step_;
};

// Calls `fn` after every step; stops when it returns false (a user hook
// without a class).
class StepCallbackHook : public TrainingHook {
 public:
  explicit StepCallbackHook(std::function<bool(const StepInfo&)> fn) : fn_(std::move(fn)) {}
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override;

 private:
  std::function<bool(const StepInfo&)> fn_;
};

// What ProgressReportHook reports: this process's training as of its last
// step, rates and loss over the last window.
struct TrainingProgress {
  int64_t global_step = 0;
  int64_t local_steps = 0;  // steps this process ran since Begin
  double steps_per_sec = 0;
  double examples_per_sec = 0;
  double loss = 0;  // mean over the window's steps
  // Mean seconds per step of each phase over the window (StepPhases);
  // has_phases is false when the loop timed none (total 0).
  bool has_phases = false;
  double input_secs = 0;
  double compute_secs = 0;
  double communicate_secs = 0;
  double apply_secs = 0;
};

// Calls `report` (on the training thread) at the first step and then once
// per `window` (as counted by `now`) with the steps, examples, mean loss
// and mean step-phase split of the steps since the last call, and once
// more at End: the task's side
// of the cluster's live view (the trainers copy it into the task's
// LiveReport, which the heartbeat carries). Never fails.
class ProgressReportHook : public TrainingHook {
 public:
  explicit ProgressReportHook(std::function<void(const TrainingProgress&)> report,
                              absl::Duration window = absl::Seconds(1), Clock now = RealNow)
      : report_(std::move(report)), window_(window), now_(std::move(now)) {}
  absl::Status Begin(int64_t global_step) override;
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override;
  absl::Status End(int64_t global_step) override;

 private:
  void Flush(absl::Time now);

  const std::function<void(const TrainingProgress&)> report_;
  const absl::Duration window_;
  const Clock now_;
  TrainingProgress progress_;
  absl::Time window_start_;
  int64_t window_steps_ = 0;
  int64_t window_examples_ = 0;
  double window_loss_ = 0;
  StepPhases window_phases_;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_HOOKS_H_
