#include "estimator/one_device_strategy.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "common/status_macros.h"

namespace estuary {

OneDeviceStrategy::OneDeviceStrategy(
    const Model* model, const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
    OneDeviceStrategyOptions options)
    : model_(model), optimizers_(optimizers), options_(std::move(options)) {}

absl::Status OneDeviceStrategy::Restore() {
  LoadedModel loaded;
  if (options_.restore_from_checkpoint) {
    ModelCheckpointOptions load = options_.checkpoint;
    load.init_if_missing = true;
    ASSIGN_OR_RETURN(loaded, LoadModel(*model_, load));
  } else {
    RETURN_IF_ERROR(model_->InitVariables(options_.checkpoint.seed, &loaded.vars));
    loaded.vars.ints.clear();
  }
  vars_ = std::move(loaded.vars);
  global_step_ = loaded.global_step;
  trained_.clear();
  for (auto& [name, v] : vars_.floats) {
    Trained& t = trained_[name];
    t.var = &v;
    t.optimizer = &OptimizerFor(*model_, *optimizers_, name);
    t.slots = t.optimizer->CreateSlots(v);
    for (auto& [slot, value] : t.slots.by_name) {
      auto it = loaded.others.find(SlotName(name, t.optimizer->name(), slot));
      if (it != loaded.others.end()) value = std::move(it->second);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> OneDeviceStrategy::ApplyGradients(
    std::vector<ReplicaGradients>* replicas) {
  if (replicas->size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "one_device applies one replica's gradients per step, not ", replicas->size()));
  }
  RETURN_IF_ERROR(Apply(&replicas->front().grads));
  return replicas->front().loss;
}

absl::Status OneDeviceStrategy::Apply(Gradients* grads) {
  auto unknown = [](const std::string& name) {
    return absl::InvalidArgumentError(
        absl::StrCat("a gradient for '", name, "', which is not a variable of the model"));
  };
  for (const auto& m : {&grads->dense, &grads->assign}) {
    for (const auto& [name, g] : *m) {
      if (trained_.count(name) == 0) return unknown(name);
    }
  }
  for (const auto& [name, g] : grads->sparse) {
    if (trained_.count(name) == 0) return unknown(name);
  }
  for (auto& [name, value] : grads->assign) *trained_.at(name).var = std::move(value);
  for (const auto& [name, g] : grads->dense) {
    Trained& t = trained_.at(name);
    t.optimizer->ApplyDense(t.var, &t.slots, g, global_step_);
  }
  for (const auto& [name, g] : grads->sparse) {
    if (g.rows.empty()) continue;
    Trained& t = trained_.at(name);
    t.optimizer->ApplySparse(t.var, &t.slots, g.rows, g.values, global_step_);
  }
  ++global_step_;
  return absl::OkStatus();
}

std::vector<RowMatrixXf*> OneDeviceStrategy::StateBuffers() {
  std::vector<RowMatrixXf*> out;
  for (auto& [name, t] : trained_) {
    out.push_back(t.var);
    for (auto& [slot, value] : t.slots.by_name) out.push_back(&value);
  }
  return out;
}

absl::StatusOr<std::string> OneDeviceStrategy::SaveCheckpoint() {
  Variables out;
  out.floats = vars_.floats;
  for (const auto& [name, t] : trained_) {
    for (const auto& [slot, value] : t.slots.by_name) {
      out.floats[SlotName(name, t.optimizer->name(), slot)] = value;
    }
  }
  out.ints[kGlobalStepName] = global_step_;
  checkpoint::SaveOptions save;
  save.keep_checkpoint_max = options_.keep_checkpoint_max;
  save.may_delete = options_.may_delete;
  save.format = options_.checkpoint_format;
  if (save.format == checkpoint::CheckpointFormat::kTf) {
    save.tf_extra = TfOptimizerVariables(*optimizers_, global_step_);
  }
  return checkpoint::Save(options_.checkpoint.model_dir, global_step_, out, save);
}

}  // namespace estuary
