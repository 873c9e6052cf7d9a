// tf.distribute.OneDeviceStrategy for the Estimator: the variables and the
// optimizer slots live in this process, in this object; a step's gradients
// are applied at once with common/optimizer (the same code the parameter
// servers run), assignments (batch-norm moving statistics) are copied in,
// and global_step counts the steps. Checkpoints hold the variables, the
// slots as "<variable>/<optimizer>/<slot>" and the int64 "global_step".
//
// Not thread-safe (one training thread). Borrows the model and the
// optimizers, which must outlive it.
#ifndef ESTUARY_ESTIMATOR_ONE_DEVICE_STRATEGY_H_
#define ESTUARY_ESTIMATOR_ONE_DEVICE_STRATEGY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/checkpoint.h"
#include "common/optimizer.h"
#include "estimator/model.h"
#include "estimator/strategy.h"

namespace estuary {

struct OneDeviceStrategyOptions {
  // model_dir, seed, warm_start_from (init_if_missing is always true).
  ModelCheckpointOptions checkpoint;
  int keep_checkpoint_max = 5;  // 0 keeps all
  // kTf: SaveCheckpoint writes a TF V2 bundle with every variable of TF's
  // training graph for the same premade estimator (TF's slot names, the
  // optimizers' hyper-parameters, global_step).
  checkpoint::CheckpointFormat checkpoint_format = checkpoint::CheckpointFormat::kNative;
  // Consulted before keep_checkpoint_max deletes checkpoint `step`; false
  // keeps it for now (an evaluator holds a lease on it). Empty: delete.
  std::function<bool(int64_t step)> may_delete;
  // false: Restore initialises the variables from checkpoint.seed without
  // reading model_dir or warm_start_from (a synchronous replica whose state
  // the chief then broadcasts: distribute/collective_strategy.h).
  bool restore_from_checkpoint = true;
};

class OneDeviceStrategy : public Strategy {
 public:
  // `optimizers` by Model::OptimizerGroup ("" for one optimizer; a group
  // without its own optimizer uses the first); must not be empty.
  OneDeviceStrategy(const Model* model,
                    const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
                    OneDeviceStrategyOptions options);

  absl::Status Restore() override;
  int64_t global_step() const override { return global_step_; }
  // Never fails: the variables are here.
  absl::StatusOr<const Variables*> VariablesForStep(const FeatureMap& features) override {
    return &vars_;
  }
  // One replica: applies replicas->at(0)'s gradients and returns its loss.
  // InvalidArgument for replicas->size() != 1 and for a gradient of an
  // unknown variable (nothing applied).
  absl::StatusOr<double> ApplyGradients(std::vector<ReplicaGradients>* replicas) override;
  // Applies one step's gradients (as ApplyGradients; for strategies built
  // on this one, which reduce several replicas into one Gradients). May
  // consume *grads. InvalidArgument for a gradient of an unknown variable
  // (nothing applied).
  absl::Status Apply(Gradients* grads);
  absl::StatusOr<std::string> SaveCheckpoint() override;
  const Variables& variables() const override { return vars_; }

  // For strategies built on this one (distribute/collective_strategy.h:
  // the chief broadcasts its state to every replica): every float buffer a
  // step changes — each variable by name, each followed by its optimizer
  // slots by slot name — in an order every replica of the same model and
  // optimizers agrees on. Valid after Restore, until the next Restore.
  std::vector<RowMatrixXf*> StateBuffers();
  // Sets global_step (the chief's, broadcast).
  void set_global_step(int64_t step) { global_step_ = step; }

 private:
  struct Trained {
    RowMatrixXf* var = nullptr;  // into vars_.floats
    const Optimizer* optimizer = nullptr;
    Slots slots;
  };

  const Model* const model_;
  const std::map<std::string, std::unique_ptr<Optimizer>>* const optimizers_;
  const OneDeviceStrategyOptions options_;
  Variables vars_;
  std::map<std::string, Trained> trained_;  // every variable, by name
  int64_t global_step_ = 0;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_ONE_DEVICE_STRATEGY_H_
