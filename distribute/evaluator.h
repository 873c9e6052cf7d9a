// The evaluator's life (tf.estimator's evaluator task and the evaluation
// half of train_and_evaluate's local mode).
//
// Cluster (`Evaluator`, `RunEvaluator`): after eval_spec.start_delay_secs,
// evaluates the newest checkpoint in model_dir, at most once every
// eval_spec.throttle_secs (checkpoints superseded meanwhile are skipped, as
// TF does), each through a lease (distribute/checkpoint_lease.h) so that the
// chief's keep_checkpoint_max cleanup never deletes it underneath; writes
// the metrics as summaries to model_dir/eval[_NAME] and logs TF's
// "saving dict for global step N: ..." (Estimator::Evaluate). Once the chief
// publishes the final step (kFinalStepKey), the final checkpoint is
// evaluated without waiting for the throttle; then the evaluator sets
// kEvaluatorDoneKey and returns. Differences from TF: it looks for a new
// checkpoint every poll_interval (TF: after throttle_secs), and ends on the
// chief's final step (TF: when a result's global_step >= max_steps).
//
// One process (`LocalEvaluationListener`): told by the training loop about
// each checkpoint saved; evaluates it if throttle_secs passed since the last
// evaluation (TF logs "Skip the current checkpoint eval due to throttle
// secs"), and the final one always.
#ifndef ESTUARY_DISTRIBUTE_EVALUATOR_H_
#define ESTUARY_DISTRIBUTE_EVALUATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/coordination/store.h"
#include "common/io/env.h"
#include "common/job_config.h"
#include "common/role_main.h"
#include "common/task_runtime.h"
#include "estimator/hooks.h"

namespace estuary {

// Evaluates the checkpoint at `prefix` ("<model_dir>/model.ckpt-N"): TF's
// metrics plus "global_step" (Estimator::Evaluate with checkpoint_path).
// NotFound when the checkpoint is gone.
using EvaluateCheckpointFn =
    std::function<absl::StatusOr<std::map<std::string, double>>(const std::string& prefix)>;

// Runs after an evaluation of checkpoint `prefix` (the exporters:
// distribute/exporter.h); `is_final`: the final checkpoint. It may be
// called twice for one checkpoint (again with is_final when the final step
// is announced after that checkpoint's evaluation). Its error ends the
// evaluator.
using AfterEvaluationFn = std::function<absl::Status(
    const std::string& prefix, const std::map<std::string, double>& metrics, bool is_final)>;

// Time and waiting for the evaluator; tests inject one that does not sleep.
class EvaluatorClock {
 public:
  virtual ~EvaluatorClock() = default;
  virtual absl::Time Now() = 0;
  // Returns at `until`, or earlier when something may have changed
  // (training ended); the evaluator then looks again. An error (Cancelled on
  // shutdown) ends the evaluator with it.
  virtual absl::Status WaitUntil(absl::Time until) = 0;
};

// Real time. Until training ends, waits on the Store for kFinalStepKey (so
// the end is seen at once); then with `sleep` (a wait that returns early
// with an error on shutdown, e.g. over TaskRuntime::WaitForStop).
class StoreClock : public EvaluatorClock {
 public:
  using SleepFn = std::function<absl::Status(absl::Duration)>;
  StoreClock(Store* store, SleepFn sleep) : store_(store), sleep_(std::move(sleep)) {}
  absl::Time Now() override;
  absl::Status WaitUntil(absl::Time until) override;

 private:
  Store* const store_;
  const SleepFn sleep_;
  bool final_seen_ = false;
};

struct EvaluatorOptions {
  std::string model_dir;
  EvalSpec eval_spec;  // name, steps are the EvaluateCheckpointFn's business
  // Leases, kFinalStepKey, kEvaluatorDoneKey. Borrowed, required.
  Store* store = nullptr;
  // Borrowed, required (StoreClock in a cluster).
  EvaluatorClock* clock = nullptr;
  // How often to look for a new checkpoint.
  absl::Duration poll_interval = absl::Seconds(1);
  // The deadline of each Store call.
  absl::Duration store_timeout = absl::Seconds(30);
  const io::Env* env = &io::Env::Default();  // borrowed
  // Called while the checkpoint is still leased. Optional.
  AfterEvaluationFn after_evaluation;
};

// Not thread-safe: Run once, on one thread. Starts no threads.
class Evaluator {
 public:
  Evaluator(EvaluatorOptions options, EvaluateCheckpointFn evaluate);

  // Evaluates checkpoints until the final one is evaluated; returns its
  // metrics. Errors: the evaluation's (other than NotFound: a checkpoint
  // deleted meanwhile is skipped), the Store's, the clock's (Cancelled on
  // shutdown); InvalidArgument without a store or clock.
  absl::StatusOr<std::map<std::string, double>> Run();

  // Steps evaluated so far, in order.
  const std::vector<int64_t>& evaluated() const { return evaluated_; }

 private:
  // The chief's final step, if training ended.
  absl::StatusOr<std::optional<int64_t>> FinalStep();
  // Leases and evaluates checkpoint `step` (then runs after_evaluation);
  // NotFound if it is gone. With `metrics` given, does not evaluate: only
  // runs after_evaluation on them (is_final).
  absl::StatusOr<std::map<std::string, double>> EvaluateLeased(
      int64_t step, bool is_final, const std::map<std::string, double>* metrics = nullptr);

  const EvaluatorOptions options_;
  const EvaluateCheckpointFn evaluate_;
  std::vector<int64_t> evaluated_;
};

// The evaluator role (a RoleJob for RunMember): builds the job's estimator
// and eval_input, and runs an Evaluator over the task's coordination Store.
// A job without an estimator section (the cluster runtime alone) has
// nothing to evaluate: OK at once. Errors: InvalidArgument for a job with an
// estimator but no eval_input, or one EstimatorFromJob refuses; Run's.
absl::Status RunEvaluator(const RoleContext& ctx, TaskRuntime& runtime);

// train_and_evaluate in one process (TF's _NewCheckpointListenerForEvaluate):
// pass it as a saving listener to Estimator::Train. Evaluates the first
// checkpoint saved, then each one saved at least throttle_secs after the
// last evaluation began, and at the end the final one (unless just
// evaluated). (TF also skips the checkpoint its saver writes before the
// first step, which Estuary does not write.) `now` is the clock (tests).
class LocalEvaluationListener : public CheckpointSaverListener {
 public:
  LocalEvaluationListener(double throttle_secs, EvaluateCheckpointFn evaluate,
                          std::function<absl::Time()> now = absl::Now,
                          AfterEvaluationFn after_evaluation = nullptr);
  absl::Status Begin(int64_t global_step) override;
  absl::Status AfterSave(int64_t global_step, const std::string& prefix) override;
  absl::Status End(int64_t global_step) override;

  // Of the last evaluation (empty if none).
  const std::map<std::string, double>& last_metrics() const { return last_metrics_; }
  const std::vector<int64_t>& evaluated() const { return evaluated_; }

 private:
  absl::Status Evaluate(int64_t global_step, const std::string& prefix, bool is_final);

  const absl::Duration throttle_;
  const EvaluateCheckpointFn evaluate_;
  const AfterEvaluationFn after_evaluation_;
  const std::function<absl::Time()> now_;
  absl::Time last_start_;
  int64_t last_saved_step_ = -1;
  std::string last_saved_prefix_;
  std::map<std::string, double> last_metrics_;
  std::vector<int64_t> evaluated_;
};

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_EVALUATOR_H_
