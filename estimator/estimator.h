// The Estimator in one process: Train / Evaluate / Predict with
// tf.estimator's semantics over a Model, a Head and optimizers, with
// checkpoints (resume from the latest, keep_checkpoint_max, save by steps
// or seconds) and TensorBoard summaries in model_dir (training) and
// model_dir/eval[_NAME] (evaluation).
//
// Train is the shared training loop (train_loop.h) with hooks (hooks.h:
// summaries, logging, checkpoints, stop at step, the caller's) around a
// Strategy (strategy.h; today OneDeviceStrategy) that owns the variables,
// optimizer slots and global_step. Evaluate and Predict re-read the latest
// checkpoint, as TF does.
//
// Not thread-safe: one call at a time. Owns the model, head, optimizers and
// the strategy. Train (num_local_replicas > 1) and Evaluate
// (eval_replicas > 1) start replica threads that live for the call.
#ifndef ESTUARY_ESTIMATOR_ESTIMATOR_H_
#define ESTUARY_ESTIMATOR_ESTIMATOR_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/optimizer.h"
#include "common/tensor.h"
#include "estimator/data/pipeline.h"
#include "estimator/export/export_format.h"
#include "estimator/head/head.h"
#include "estimator/hooks.h"
#include "estimator/model.h"
#include "estimator/strategy.h"

namespace estuary {

// An input_fn: a fresh pipeline of batches each time it is called.
using InputFn = std::function<absl::StatusOr<std::unique_ptr<Pipeline>>()>;

struct TrainArgs {
  std::optional<int64_t> steps;      // adds to the current global step
  std::optional<int64_t> max_steps;  // absolute; skipped when already reached
  // The caller's hooks (tf.estimator's `hooks`), run after the Estimator's
  // own; e.g. StepCallbackHook.
  std::vector<std::shared_ptr<TrainingHook>> hooks;
  // Told about every checkpoint saved (tf.estimator's saving_listeners);
  // borrowed.
  std::vector<CheckpointSaverListener*> saving_listeners;
};

struct EstimatorOptions {
  std::string model_dir;
  RunConfig run_config;
  std::unique_ptr<Model> model;
  std::unique_ptr<Head> head;
  // By Model::OptimizerGroup ("" for a single optimizer).
  std::map<std::string, std::unique_ptr<Optimizer>> optimizers;
  // A checkpoint (directory or path) to initialise variables from when
  // model_dir has none (tf.estimator.WarmStartSettings).
  std::string warm_start_from;
  // Makes the strategy Train runs under from the model and optimizers the
  // Estimator owns (they outlive it). Default: OneDeviceStrategy.
  using StrategyFactory = std::function<absl::StatusOr<std::unique_ptr<Strategy>>(
      const Model* model, const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers)>;
  StrategyFactory strategy_factory;
  // False on a cluster's non-chief workers: Train then runs only the
  // logging hook (no summaries, no checkpoints: the chief writes those).
  bool is_chief = true;
  // The training hooks' time source (save_checkpoints_secs, steps/sec);
  // tests inject a fake one.
  Clock now = RealNow;
  // tf.estimator's RunConfig(eval_distribute=MirroredStrategy()): Evaluate
  // reads this many batches per step and runs them on as many threads (one
  // replica each), merging the replicas' metrics at the end. >= 1 (1: one
  // device, the calling thread). EstimatorFromJob sets it from
  // distribution.eval_distribute.
  int eval_replicas = 1;
  // The job the Estimator was built from (EstimatorFromJob sets it):
  // ExportSavedModel stores its model and feature-column sections. Null for
  // an Estimator assembled in C++ (not exportable).
  std::shared_ptr<const JobSpec> job;
};

class Estimator {
 public:
  // InvalidArgument when pieces are missing or disagree (logits dimension);
  // errors of the strategy factory.
  static absl::StatusOr<std::unique_ptr<Estimator>> Create(EstimatorOptions options);

  // Trains until the input runs out, `steps` more steps, or `max_steps` in
  // all. Both steps and max_steps: InvalidArgument (as TF). Resumes from the
  // latest checkpoint in model_dir; saves one at the end. A NaN loss stops
  // with InvalidArgument("NaN loss during training ...").
  absl::Status Train(const InputFn& input_fn, const TrainArgs& args);

  // Metrics with TF's keys plus "global_step", over `steps` steps or until
  // the input runs out, from the latest checkpoint (or the checkpoint
  // `checkpoint_path` names: "<dir>/model.ckpt-N"). Writes them as
  // summaries to model_dir/eval (model_dir/eval_NAME).
  // With eval_replicas = N > 1 (eval_distribute), a step is N batches, one
  // per replica, computed in parallel (replica 0 on the calling thread, the
  // others on threads this call owns); a last step with fewer batches left
  // evaluates those. Each replica updates its own EvalMetrics; they are
  // merged in replica order at the end (EvalMetrics::Merge), so the result
  // is that of one replica over the same batches: counts exactly, float
  // sums up to the order of additions. Errors: InvalidArgument for a batch
  // without labels or eval_replicas < 1; the input's, the model's and the
  // head's (the lowest replica's first).
  absl::StatusOr<std::map<std::string, double>> Evaluate(const InputFn& input_fn,
                                                         std::optional<int64_t> steps = {},
                                                         const std::string& name = "",
                                                         const std::string& checkpoint_path = "");

  // Calls `emit` once per example with TF's prediction keys (all of them,
  // or `predict_keys`), from the latest checkpoint. FailedPrecondition
  // without a checkpoint.
  using PredictionFn = std::function<absl::Status(const std::map<std::string, Tensor>&)>;
  absl::Status Predict(const InputFn& input_fn, const PredictionFn& emit,
                       const std::vector<std::string>& predict_keys = {});

  // tf.estimator's export_saved_model: an export of the latest checkpoint
  // (or options.checkpoint_path) under "<export_dir_base>/<timestamp>"
  // (estimator/export/export_format.h; options.export_dir_base is
  // ignored). Returns the new directory. FailedPrecondition without a
  // checkpoint or for an Estimator not built from a job; the writer's
  // errors.
  absl::StatusOr<std::string> ExportSavedModel(const std::string& export_dir_base,
                                               ExportOptions options = {});

  // Of the last Train, Evaluate or Predict.
  int64_t global_step() const { return global_step_; }
  const Variables& variables() const { return *latest_; }
  const std::string& model_dir() const { return options_.model_dir; }
  // The model the Estimator trains (its variables' names and shapes).
  const Model& model() const { return *options_.model; }
  const Head& head() const { return *options_.head; }

 private:
  explicit Estimator(EstimatorOptions options);
  // Loads the latest checkpoint (or `checkpoint_path`) into vars_
  // (FailedPrecondition without one).
  absl::Status LoadForInference(const std::string& checkpoint_path = "");

  EstimatorOptions options_;
  std::unique_ptr<Strategy> strategy_;
  Variables vars_;                   // for Evaluate / Predict
  const Variables* latest_ = &vars_;  // vars_ or the strategy's
  int64_t global_step_ = 0;
};

// Builds the premade estimator a job file describes (estimator.type,
// feature_columns, optimizers with TF's defaults, head options, run_config).
// InvalidArgument with the JSON path on a bad combination. `extra` is what
// a caller sets beyond the job (a cluster's trainer: its strategy and
// whether it is the chief; tests: the hooks' clock); the defaults are one
// process on the real clock.
struct EstimatorJobOptions {
  EstimatorOptions::StrategyFactory strategy_factory;  // see EstimatorOptions
  bool is_chief = true;
  Clock now = RealNow;
};
absl::StatusOr<std::unique_ptr<Estimator>> EstimatorFromJob(const JobSpec& job,
                                                            EstimatorJobOptions extra = {});

// Which part of an input a task reads: shard `index` of `count` (a cluster's
// training tasks; see TrainerShard in distribute/). The default is all of it.
struct InputShard {
  int index = 0;
  int count = 1;
};

// The input_fn for a job's train_input / eval_input section, reading
// `shard` of it as the section's "shard" policy says (estimator/data/
// pipeline.h: by file or by record under "auto", everything under "off")
// and shuffling with the section's seed (else run_config.tf_random_seed)
// plus shard.index. Each pipeline it makes logs its share when count > 1.
// InvalidArgument naming the section when it is missing or not an input
// section, or when the shard is out of range.
absl::StatusOr<InputFn> InputFnFromJob(const JobSpec& job, const std::string& section,
                                       InputShard shard = {});

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_ESTIMATOR_H_
