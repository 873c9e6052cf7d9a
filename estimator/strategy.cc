#include "estimator/strategy.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/tf_bundle/tf_variables.h"

namespace estuary {

const Optimizer& OptimizerFor(const Model& model,
                              const std::map<std::string, std::unique_ptr<Optimizer>>& optimizers,
                              const std::string& variable) {
  auto it = optimizers.find(model.OptimizerGroup(variable));
  return it != optimizers.end() ? *it->second : *optimizers.begin()->second;
}

std::string SlotName(const std::string& variable, const std::string& optimizer,
                     const std::string& slot) {
  return absl::StrCat(variable, "/", optimizer, "/", slot);
}

std::map<std::string, Tensor> TfOptimizerVariables(
    const std::map<std::string, std::unique_ptr<Optimizer>>& optimizers, int64_t global_step) {
  std::map<std::string, Tensor> out;
  for (const auto& [group, optimizer] : optimizers) {
    const bool own_iter = optimizers.size() > 1 && group != "dnn";
    std::map<std::string, Tensor> vars = tf_bundle::TfOptimizerVariables(
        optimizer->config(), own_iter ? std::optional<int64_t>(global_step) : std::nullopt);
    out.insert(vars.begin(), vars.end());
  }
  return out;
}

namespace {

absl::StatusOr<checkpoint::RestoredCheckpoint> RestoreAt(const std::string& prefix) {
  ASSIGN_OR_RETURN(int64_t step, checkpoint::StepFromPrefix(prefix));
  ASSIGN_OR_RETURN(Variables vars, checkpoint::Restore(prefix));
  return checkpoint::RestoredCheckpoint{step, prefix, std::move(vars)};
}

}  // namespace

absl::StatusOr<LoadedModel> LoadModel(const Model& model, const ModelCheckpointOptions& options) {
  LoadedModel out;
  Variables init;
  RETURN_IF_ERROR(model.InitVariables(options.seed, &init));
  absl::StatusOr<checkpoint::RestoredCheckpoint> ckpt =
      options.checkpoint_path.empty() ? checkpoint::RestoreLatest(options.model_dir)
                                      : RestoreAt(options.checkpoint_path);
  if (!ckpt.ok() && (!absl::IsNotFound(ckpt.status()) || !options.checkpoint_path.empty())) {
    return ckpt.status();
  }
  if (!ckpt.ok()) {
    if (!options.init_if_missing) {
      return absl::FailedPreconditionError(
          absl::StrCat("no checkpoint in model_dir '", options.model_dir,
                       "': train first (or point model_dir at a trained model)"));
    }
    out.vars.floats = std::move(init.floats);
    if (!options.warm_start_from.empty()) {
      ASSIGN_OR_RETURN(std::vector<std::string> names,
                       checkpoint::WarmStart(options.warm_start_from, &out.vars));
      spdlog::info("warm-started {} variables from {}", names.size(), options.warm_start_from);
    }
    return out;
  }
  std::map<std::string, RowMatrixXf>& saved = ckpt->vars.floats;
  // Every missing or mismatched variable, in one line.
  std::vector<std::string> missing, mismatched;
  auto shape_of = [](const RowMatrixXf& m) {
    return absl::StrCat("[", m.rows(), ", ", m.cols(), "] float32");
  };
  for (auto& [name, v] : init.floats) {
    auto it = saved.find(name);
    if (it == saved.end()) {
      missing.push_back(absl::StrCat(name, " ", shape_of(v)));
      continue;
    }
    if (it->second.rows() != v.rows() || it->second.cols() != v.cols()) {
      mismatched.push_back(absl::StrCat(name, ": model ", shape_of(v), ", checkpoint ",
                                        shape_of(it->second)));
      continue;
    }
    out.vars.floats[name] = std::move(it->second);
    saved.erase(it);
  }
  if (!missing.empty()) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint ", ckpt->prefix, " lacks ", missing.size(), " variable(s) of the model: ",
        absl::StrJoin(missing, ", "),
        mismatched.empty() ? "" : absl::StrCat("; mismatched: ", absl::StrJoin(mismatched, ", ")),
        " (was it written by another model?)"));
  }
  if (!mismatched.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint ", ckpt->prefix,
                                                   ": variables of another shape than the model's: ",
                                                   absl::StrJoin(mismatched, ", ")));
  }
  out.others = std::move(saved);
  auto step = ckpt->vars.ints.find(kGlobalStepName);
  out.global_step = step != ckpt->vars.ints.end() ? step->second : ckpt->step;
  for (const auto& [name, value] : ckpt->vars.ints) {
    if (name != kGlobalStepName) out.other_ints[name] = value;
  }
  spdlog::info("restoring parameters from {} (global_step {})", ckpt->prefix, out.global_step);
  return out;
}

}  // namespace estuary
