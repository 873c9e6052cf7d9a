#include "estimator/estimator.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/summary_writer.h"

namespace estuary {
namespace {

constexpr char kGlobalStep[] = "global_step";
constexpr char kSlotSeparator[] = "/";

// Slot variables are saved as "<variable>/<Optimizer name>/<slot>" like TF
// ("dnn/logits/bias/Adagrad" in TF1 naming; we add the slot name).
std::string SlotName(const std::string& var, const std::string& optimizer,
                     const std::string& slot) {
  return absl::StrCat(var, kSlotSeparator, optimizer, kSlotSeparator, slot);
}

}  // namespace

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
  return std::unique_ptr<Estimator>(new Estimator(std::move(options)));
}

const Optimizer& Estimator::OptimizerFor(const std::string& variable) const {
  auto it = options_.optimizers.find(options_.model->OptimizerGroup(variable));
  return it != options_.optimizers.end() ? *it->second : *options_.optimizers.begin()->second;
}

absl::Status Estimator::LoadOrInit(bool init_if_missing) {
  Variables init;
  RETURN_IF_ERROR(options_.model->InitVariables(
      options_.run_config.has_tf_random_seed ? options_.run_config.tf_random_seed : 0, &init));
  absl::StatusOr<checkpoint::RestoredCheckpoint> ckpt = checkpoint::RestoreLatest(options_.model_dir);
  if (!ckpt.ok() && !absl::IsNotFound(ckpt.status())) return ckpt.status();
  if (!ckpt.ok()) {
    if (!init_if_missing) {
      return absl::FailedPreconditionError(
          absl::StrCat("no checkpoint in model_dir '", options_.model_dir,
                       "': train first (or point model_dir at a trained model)"));
    }
    vars_ = std::move(init);
    global_step_ = 0;
    if (!options_.warm_start_from.empty()) {
      checkpoint::Variables warm;
      warm.floats = std::move(vars_);
      ASSIGN_OR_RETURN(std::vector<std::string> names,
                       checkpoint::WarmStart(options_.warm_start_from, &warm));
      vars_ = std::move(warm.floats);
      spdlog::info("warm-started {} variables from {}", names.size(), options_.warm_start_from);
    }
    slots_.clear();
    for (const auto& [name, v] : vars_) slots_[name] = OptimizerFor(name).CreateSlots(v);
    return absl::OkStatus();
  }
  std::map<std::string, RowMatrixXf>& saved = ckpt->vars.floats;
  vars_.clear();
  for (auto& [name, v] : init) {
    auto it = saved.find(name);
    if (it == saved.end()) {
      return absl::DataLossError(absl::StrCat("checkpoint ", ckpt->prefix, " has no variable '",
                                              name, "' (was it written by another model?)"));
    }
    if (it->second.rows() != v.rows() || it->second.cols() != v.cols()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint ", ckpt->prefix, ": variable '", name, "' is [", it->second.rows(), ", ",
          it->second.cols(), "] but the model needs [", v.rows(), ", ", v.cols(), "]"));
    }
    vars_[name] = std::move(it->second);
  }
  slots_.clear();
  for (const auto& [name, v] : vars_) {
    const Optimizer& opt = OptimizerFor(name);
    Slots s = opt.CreateSlots(v);
    for (auto& [slot, value] : s.by_name) {
      auto it = saved.find(SlotName(name, opt.name(), slot));
      if (it != saved.end()) value = std::move(it->second);
    }
    slots_[name] = std::move(s);
  }
  auto step = ckpt->vars.ints.find(kGlobalStep);
  global_step_ = step != ckpt->vars.ints.end() ? step->second : ckpt->step;
  spdlog::info("restoring parameters from {} (global_step {})", ckpt->prefix, global_step_);
  return absl::OkStatus();
}

absl::Status Estimator::SaveCheckpoint() {
  checkpoint::Variables out;
  out.floats = vars_;
  for (const auto& [name, s] : slots_) {
    const std::string opt = OptimizerFor(name).name();
    for (const auto& [slot, value] : s.by_name) out.floats[SlotName(name, opt, slot)] = value;
  }
  out.ints[kGlobalStep] = global_step_;
  checkpoint::SaveOptions save;
  save.keep_checkpoint_max = static_cast<int>(options_.run_config.keep_checkpoint_max);
  ASSIGN_OR_RETURN(std::string prefix,
                   checkpoint::Save(options_.model_dir, global_step_, out, save));
  spdlog::info("saving checkpoints for {} into {}", global_step_, prefix);
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
  RETURN_IF_ERROR(LoadOrInit(/*init_if_missing=*/true));
  if (args.max_steps.has_value() && global_step_ >= *args.max_steps) {
    spdlog::info("skipping training since max_steps has already saved ({} >= {})", global_step_,
                 *args.max_steps);
    return absl::OkStatus();
  }
  const int64_t last_step = args.max_steps.has_value() ? *args.max_steps
                            : args.steps.has_value()   ? global_step_ + *args.steps
                                                       : INT64_MAX;
  ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> input, input_fn());
  ASSIGN_OR_RETURN(std::unique_ptr<EventFileWriter> summaries,
                   EventFileWriter::Create(options_.model_dir));
  const RunConfig& rc = options_.run_config;
  std::mt19937_64 rng(rc.has_tf_random_seed ? static_cast<uint64_t>(rc.tf_random_seed) + 1 : 1);
  absl::Time last_log = absl::Now();
  int64_t last_log_step = global_step_;
  absl::Time last_ckpt = absl::Now();
  int64_t last_ckpt_step = global_step_;
  Gradients grads;
  while (global_step_ < last_step) {
    ASSIGN_OR_RETURN(std::optional<Batch> batch, input->Next());
    if (!batch.has_value()) break;  // the input ran out
    if (!batch->has_labels) {
      return absl::InvalidArgumentError("training needs labels: set label_key in the input");
    }
    std::unique_ptr<Model::ForwardState> state;
    ASSIGN_OR_RETURN(RowMatrixXf logits,
                     options_.model->Forward(batch->features, vars_, true, &rng, &state));
    ASSIGN_OR_RETURN(const Tensor* weights, options_.head->FindWeights(batch->features));
    ASSIGN_OR_RETURN(HeadLoss loss, options_.head->Loss(logits, batch->labels, weights));
    if (!std::isfinite(loss.training_loss)) {
      return absl::InvalidArgumentError(
          absl::StrCat("NaN loss during training (global_step ", global_step_,
                       "): lower the learning rate or check the input for NaN/inf values"));
    }
    grads.Clear();
    RETURN_IF_ERROR(options_.model->Backward(*state, loss.dlogits, &vars_, &grads));
    for (const auto& [name, g] : grads.dense) {
      OptimizerFor(name).ApplyDense(&vars_.at(name), &slots_.at(name), g, global_step_);
    }
    for (const auto& [name, g] : grads.sparse) {
      if (g.rows.empty()) continue;
      OptimizerFor(name).ApplySparse(&vars_.at(name), &slots_.at(name), g.rows, g.values,
                                     global_step_);
    }
    ++global_step_;
    const StepInfo info{global_step_, loss.training_loss};
    if (rc.save_summary_steps > 0 && global_step_ % rc.save_summary_steps == 0) {
      RETURN_IF_ERROR(summaries->AddScalar("loss", loss.training_loss, global_step_));
    }
    if (global_step_ % rc.log_step_count_steps == 0 || global_step_ == 1) {
      const absl::Time now = absl::Now();
      const double secs = absl::ToDoubleSeconds(now - last_log);
      spdlog::info("loss = {:.7g}, step = {} ({:.3f} sec)", loss.training_loss, global_step_, secs);
      if (global_step_ > last_log_step && secs > 0) {
        const double rate = (global_step_ - last_log_step) / secs;
        if (global_step_ != 1) spdlog::info("global_step/sec: {:.4g}", rate);
        RETURN_IF_ERROR(summaries->AddScalar("global_step/sec", rate, global_step_));
      }
      last_log = now;
      last_log_step = global_step_;
    }
    const bool ckpt_due =
        rc.save_checkpoints_steps.has_value()
            ? global_step_ - last_ckpt_step >= *rc.save_checkpoints_steps
            : absl::Now() - last_ckpt >= absl::Seconds(rc.save_checkpoints_secs.value_or(600));
    if (ckpt_due) {
      RETURN_IF_ERROR(SaveCheckpoint());
      last_ckpt = absl::Now();
      last_ckpt_step = global_step_;
    }
    bool go_on = true;
    for (const TrainHook& hook : args.hooks) go_on &= hook(info);
    if (!go_on) break;
  }
  if (global_step_ != last_ckpt_step) RETURN_IF_ERROR(SaveCheckpoint());
  spdlog::info("loss for final step: global_step = {}", global_step_);
  return summaries->Close();
}

absl::StatusOr<std::map<std::string, double>> Estimator::Evaluate(const InputFn& input_fn,
                                                                  std::optional<int64_t> steps,
                                                                  const std::string& name) {
  RETURN_IF_ERROR(LoadOrInit(/*init_if_missing=*/false));
  ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> input, input_fn());
  std::unique_ptr<EvalMetrics> metrics = options_.head->CreateEvalMetrics();
  std::mt19937_64 rng(1);
  int64_t batches = 0;
  const absl::Time start = absl::Now();
  spdlog::info("starting evaluation at global_step {}", global_step_);
  while (!steps.has_value() || batches < *steps) {
    ASSIGN_OR_RETURN(std::optional<Batch> batch, input->Next());
    if (!batch.has_value()) break;
    if (!batch->has_labels) {
      return absl::InvalidArgumentError("evaluation needs labels: set label_key in the input");
    }
    std::unique_ptr<Model::ForwardState> state;
    ASSIGN_OR_RETURN(RowMatrixXf logits,
                     options_.model->Forward(batch->features, vars_, false, &rng, &state));
    ASSIGN_OR_RETURN(const Tensor* weights, options_.head->FindWeights(batch->features));
    RETURN_IF_ERROR(metrics->Update(logits, batch->labels, weights));
    ++batches;
    if (batches % 100 == 0) spdlog::info("evaluation [{}{}]", batches,
                                         steps.has_value() ? absl::StrCat("/", *steps) : "");
  }
  std::map<std::string, double> result = metrics->Result();
  result[kGlobalStep] = static_cast<double>(global_step_);
  const std::string dir =
      absl::StrCat(options_.model_dir, "/", name.empty() ? "eval" : "eval_" + name);
  ASSIGN_OR_RETURN(std::unique_ptr<EventFileWriter> summaries, EventFileWriter::Create(dir));
  std::string line;
  for (const auto& [key, value] : result) {
    if (key != kGlobalStep) RETURN_IF_ERROR(summaries->AddScalar(key, value, global_step_));
    absl::StrAppend(&line, line.empty() ? "" : ", ", key, " = ", absl::StrFormat("%.7g", value));
  }
  RETURN_IF_ERROR(summaries->Close());
  spdlog::info("finished evaluation in {:.2f} sec ({} batches)",
               absl::ToDoubleSeconds(absl::Now() - start), batches);
  spdlog::info("saving dict for global step {}: {}", global_step_, line);
  return result;
}

absl::Status Estimator::Predict(const InputFn& input_fn, const PredictionFn& emit,
                                const std::vector<std::string>& predict_keys) {
  RETURN_IF_ERROR(LoadOrInit(/*init_if_missing=*/false));
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

}  // namespace estuary
