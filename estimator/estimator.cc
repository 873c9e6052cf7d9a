#include "estimator/estimator.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/summary_writer.h"
#include "estimator/one_device_strategy.h"
#include "estimator/replica_threads.h"
#include "estimator/train_loop.h"

namespace estuary {

Estimator::Estimator(EstimatorOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Estimator>> Estimator::Create(EstimatorOptions options) {
  if (options.model_dir.empty()) return absl::InvalidArgumentError("model_dir is required");
  if (options.model == nullptr) return absl::InvalidArgumentError("a model is required");
  if (options.head == nullptr) return absl::InvalidArgumentError("a head is required");
  if (options.model->logits_dimension() != options.head->logits_dimension()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the model gives ", options.model->logits_dimension(),
                     " logits per example but the head expects ",
                     options.head->logits_dimension()));
  }
  if (options.optimizers.empty()) return absl::InvalidArgumentError("an optimizer is required");
  std::unique_ptr<Estimator> est(new Estimator(std::move(options)));
  const EstimatorOptions& o = est->options_;
  if (o.strategy_factory) {
    ASSIGN_OR_RETURN(est->strategy_, o.strategy_factory(o.model.get(), &o.optimizers));
  } else {
    OneDeviceStrategyOptions one;
    one.checkpoint.model_dir = o.model_dir;
    one.checkpoint.seed = o.run_config.has_tf_random_seed ? o.run_config.tf_random_seed : 0;
    one.checkpoint.warm_start_from = o.warm_start_from;
    one.keep_checkpoint_max = static_cast<int>(o.run_config.keep_checkpoint_max);
    if (o.run_config.checkpoint_format == "tf") {
      one.checkpoint_format = checkpoint::CheckpointFormat::kTf;
    }
    est->strategy_ =
        std::make_unique<OneDeviceStrategy>(o.model.get(), &o.optimizers, std::move(one));
  }
  return est;
}

absl::Status Estimator::LoadForInference(const std::string& checkpoint_path) {
  ModelCheckpointOptions load;
  load.checkpoint_path = checkpoint_path;
  load.model_dir = options_.model_dir;
  load.seed = options_.run_config.has_tf_random_seed ? options_.run_config.tf_random_seed : 0;
  load.init_if_missing = false;
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(*options_.model, load));
  vars_ = std::move(loaded.vars);
  global_step_ = loaded.global_step;
  latest_ = &vars_;
  return absl::OkStatus();
}

absl::Status Estimator::Train(const InputFn& input_fn, const TrainArgs& args) {
  if (args.steps.has_value() && args.max_steps.has_value()) {
    return absl::InvalidArgumentError("can not provide both steps and max_steps");
  }
  if (args.steps.has_value() && *args.steps <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be > 0, given: ", *args.steps));
  }
  if (args.max_steps.has_value() && *args.max_steps <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_steps must be > 0, given: ", *args.max_steps));
  }
  RETURN_IF_ERROR(strategy_->Restore());
  latest_ = &strategy_->variables();
  global_step_ = strategy_->global_step();
  if (args.max_steps.has_value() && global_step_ >= *args.max_steps) {
    spdlog::info("skipping training since max_steps has already saved ({} >= {})", global_step_,
                 *args.max_steps);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> input, input_fn());
  std::unique_ptr<EventFileWriter> summaries;
  if (options_.is_chief) {
    ASSIGN_OR_RETURN(summaries, EventFileWriter::Create(options_.model_dir));
  }
  const RunConfig& rc = options_.run_config;
  SummarySaverHook summary_hook(summaries.get(), rc.save_summary_steps);
  LoggingHook logging_hook(summaries.get(), rc.log_step_count_steps, options_.now);
  CheckpointSaverHook checkpoint_hook(strategy_.get(), rc.save_checkpoints_steps,
                                      rc.save_checkpoints_secs.value_or(600),
                                      args.saving_listeners, options_.now);
  std::vector<TrainingHook*> hooks = {&logging_hook};
  if (options_.is_chief) hooks = {&summary_hook, &logging_hook, &checkpoint_hook};
  std::optional<StopAtStepHook> stop_hook;
  if (args.max_steps.has_value() || args.steps.has_value()) {
    stop_hook.emplace(args.max_steps.has_value() ? *args.max_steps : global_step_ + *args.steps);
    hooks.push_back(&*stop_hook);
  }
  for (const std::shared_ptr<TrainingHook>& hook : args.hooks) hooks.push_back(hook.get());
  std::mt19937_64 rng(rc.has_tf_random_seed ? static_cast<uint64_t>(rc.tf_random_seed) + 1 : 1);
  absl::Status st =
      RunTrainLoop(*options_.model, *options_.head, input.get(), strategy_.get(), hooks, &rng);
  global_step_ = strategy_->global_step();
  RETURN_IF_ERROR(st);
  spdlog::info("loss for final step: global_step = {}", global_step_);
  return summaries != nullptr ? summaries->Close() : absl::OkStatus();
}

absl::StatusOr<std::map<std::string, double>> Estimator::Evaluate(const InputFn& input_fn,
                                                                  std::optional<int64_t> steps,
                                                                  const std::string& name,
                                                                  const std::string& checkpoint_path) {
  const int n = options_.eval_replicas;
  if (n < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_replicas must be at least 1, not ", n));
  }
  RETURN_IF_ERROR(LoadForInference(checkpoint_path));
  ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> input, input_fn());
  // One EvalMetrics and one generator per replica (Forward in inference
  // mode draws nothing; the generator is there for the signature).
  std::vector<std::unique_ptr<EvalMetrics>> metrics;
  std::vector<std::mt19937_64> rngs;
  for (int i = 0; i < n; ++i) {
    metrics.push_back(options_.head->CreateEvalMetrics());
    rngs.emplace_back(1 + i);
  }
  ReplicaThreads threads(n);
  std::vector<absl::Status> statuses(n);
  std::vector<Batch> batches;
  int64_t evaluated_steps = 0;
  int64_t evaluated_batches = 0;
  const absl::Time start = absl::Now();
  spdlog::info("starting evaluation at global_step {}{}", global_step_,
               n > 1 ? absl::StrCat(" on ", n, " replicas (eval_distribute: mirrored, one thread "
                                    "each; a step is ", n, " batches)")
                     : "");
  while (!steps.has_value() || evaluated_steps < *steps) {
    batches.clear();
    while (static_cast<int>(batches.size()) < n) {
      ASSIGN_OR_RETURN(std::optional<Batch> batch, input->Next());
      if (!batch.has_value()) break;
      if (!batch->has_labels) {
        return absl::InvalidArgumentError("evaluation needs labels: set label_key in the input");
      }
      batches.push_back(*std::move(batch));
    }
    if (batches.empty()) break;
    const int active = static_cast<int>(batches.size());  // < n: the input's last step
    const std::function<void(int)> evaluate = [&](int i) {
      if (i >= active) return;
      statuses[i] = [&]() -> absl::Status {
        std::unique_ptr<Model::ForwardState> state;
        ASSIGN_OR_RETURN(RowMatrixXf logits, options_.model->Forward(batches[i].features, vars_,
                                                                     false, &rngs[i], &state));
        ASSIGN_OR_RETURN(const Tensor* weights, options_.head->FindWeights(batches[i].features));
        return metrics[i]->Update(logits, batches[i].labels, weights);
      }();
    };
    threads.Run(evaluate);
    for (int i = 0; i < active; ++i) RETURN_IF_ERROR(statuses[i]);
    ++evaluated_steps;
    evaluated_batches += active;
    if (evaluated_steps % 100 == 0) {
      spdlog::info("evaluation [{}{}]", evaluated_steps,
                   steps.has_value() ? absl::StrCat("/", *steps) : "");
    }
  }
  for (int i = 1; i < n; ++i) RETURN_IF_ERROR(metrics[0]->Merge(*metrics[i]));
  std::map<std::string, double> result = metrics[0]->Result();
  result[kGlobalStepName] = static_cast<double>(global_step_);
  const std::string dir =
      absl::StrCat(options_.model_dir, "/", name.empty() ? "eval" : "eval_" + name);
  ASSIGN_OR_RETURN(std::unique_ptr<EventFileWriter> summaries, EventFileWriter::Create(dir));
  std::string line;
  for (const auto& [key, value] : result) {
    if (key != kGlobalStepName) RETURN_IF_ERROR(summaries->AddScalar(key, value, global_step_));
    absl::StrAppend(&line, line.empty() ? "" : ", ", key, " = ", absl::StrFormat("%.7g", value));
  }
  RETURN_IF_ERROR(summaries->Close());
  spdlog::info("finished evaluation in {:.2f} sec ({} steps, {} batches, {} replica{})",
               absl::ToDoubleSeconds(absl::Now() - start), evaluated_steps, evaluated_batches, n,
               n == 1 ? "" : "s");
  spdlog::info("saving dict for global step {}: {}", global_step_, line);
  return result;
}

absl::Status Estimator::Predict(const InputFn& input_fn, const PredictionFn& emit,
                                const std::vector<std::string>& predict_keys) {
  RETURN_IF_ERROR(LoadForInference());
  ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> input, input_fn());
  std::mt19937_64 rng(1);
  while (true) {
    ASSIGN_OR_RETURN(std::optional<Batch> batch, input->Next());
    if (!batch.has_value()) return absl::OkStatus();
    std::unique_ptr<Model::ForwardState> state;
    ASSIGN_OR_RETURN(RowMatrixXf logits,
                     options_.model->Forward(batch->features, vars_, false, &rng, &state));
    ASSIGN_OR_RETURN(auto predictions, options_.head->Predictions(logits));
    for (const std::string& k : predict_keys) {
      if (predictions.count(k) == 0) {
        std::string have;
        for (const auto& [key, v] : predictions) absl::StrAppend(&have, have.empty() ? "" : ", ", key);
        return absl::InvalidArgumentError(
            absl::StrCat("predict_keys: '", k, "' is not a prediction key (have: ", have, ")"));
      }
    }
    for (int64_t r = 0; r < logits.rows(); ++r) {
      std::map<std::string, Tensor> one;
      for (const auto& [key, t] : predictions) {
        if (!predict_keys.empty() &&
            std::find(predict_keys.begin(), predict_keys.end(), key) == predict_keys.end()) {
          continue;
        }
        Tensor row;
        row.dtype = t.dtype;
        const int64_t n = t.row_size();
        row.shape = std::vector<int64_t>(t.shape.begin() + 1, t.shape.end());
        if (t.dtype == DType::kFloat) row.floats.assign(t.floats.begin() + r * n, t.floats.begin() + (r + 1) * n);
        if (t.dtype == DType::kInt64) row.ints.assign(t.ints.begin() + r * n, t.ints.begin() + (r + 1) * n);
        if (t.dtype == DType::kString) row.strings.assign(t.strings.begin() + r * n, t.strings.begin() + (r + 1) * n);
        one[key] = std::move(row);
      }
      RETURN_IF_ERROR(emit(one));
    }
  }
}

absl::StatusOr<std::string> Estimator::ExportSavedModel(const std::string& export_dir_base,
                                                        ExportOptions options) {
  if (options_.job == nullptr) {
    return absl::FailedPreconditionError(
        "ExportSavedModel needs an Estimator built from a job (EstimatorFromJob)");
  }
  RETURN_IF_ERROR(LoadForInference(options.checkpoint_path));
  std::string checkpoint = options.checkpoint_path;
  if (checkpoint.empty()) {
    const io::Env& env = options.env != nullptr ? *options.env : io::Env::Default();
    checkpoint = checkpoint::LatestCheckpoint(options_.model_dir, env).value_or("");
  }
  Variables vars = vars_;
  vars.ints[kGlobalStepName] = global_step_;
  options.export_dir_base = export_dir_base;
  return export_format::WriteExport(*options_.job, vars, checkpoint, options);
}

}  // namespace estuary
