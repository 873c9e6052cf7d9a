// The strategy seam of the training loop (tf.distribute.Strategy's role in
// tf.estimator): a Strategy decides where variables live and how a step's
// gradients become updates; it owns the variables, the optimizer state,
// global_step and what a checkpoint saves and restores. The step body
// (train_loop.h: input batch -> Model::Forward -> head loss -> NaN check ->
// Model::Backward -> Gradients) and the hooks (hooks.h: logging,
// summaries, checkpoint timing, stop conditions) are the same under every
// strategy.
//
// One step under a strategy (RunTrainLoop), N = num_local_replicas():
//   read N batches (one per local replica)
//   vars = strategy->VariablesForStep(batch[0].features)   // e.g. pull
//   ComputeGradients(model, head, batch[i], *vars, ...)    // the step body,
//                                                          // N replicas in parallel
//   loss = strategy->ApplyGradients(&replicas)             // e.g. push / all-reduce
// and, when the input has fewer than N batches left, EndOfInput() once.
//
// Strategies:
//   one_device_strategy.h: one replica; the variables and slots live here.
//   distribute/parameter_server_strategy.h: VariablesForStep pulls the
//     dense variables and the rows of row-sparse ones that
//     Model::RowsRead(features) names into a local mirror; ApplyGradients
//     pushes Gradients to the PS tasks, which apply the optimizer
//     (common/optimizer) and hold the slots; global_step lives on PS 0.
//   distribute/collective_strategy.h (mirrored, central_storage,
//     multi_worker_mirrored): VariablesForStep returns the local copy;
//     ApplyGradients sums the local replicas' Gradients, all-reduces them
//     (dense, sparse rows, assign) with a collective Communicator, then
//     applies them locally exactly as one_device does, so every copy stays
//     identical.
//
// Not thread-safe: one training thread per Strategy object.
#ifndef ESTUARY_ESTIMATOR_STRATEGY_H_
#define ESTUARY_ESTIMATOR_STRATEGY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/optimizer.h"
#include "common/tensor.h"
#include "common/variables.h"
#include "estimator/model.h"

namespace estuary {

// One local replica's part of a step.
struct ReplicaGradients {
  Gradients grads;
  double loss = 0;         // the head's training loss of the replica's batch
  int64_t batch_size = 0;  // examples in the replica's batch
};

// Overlap of gradient communication with the backward pass (PyTorch DDP's
// idea): a strategy that returns one from Strategy::ObserveStep is told,
// while the replicas compute (ComputeGradients), each replica's loss before
// its Backward and each dense gradient as soon as it is final, and may
// start reducing finished gradients before ApplyGradients. Called from the
// replicas' threads concurrently (distinct `replica`). The gradients'
// data (the `dense` / `assign` matrices of the replica's Gradients) must
// stay put and unchanged until the step's ApplyGradients.
class GradientObserver {
 public:
  virtual ~GradientObserver() = default;
  // Before Backward: the replica's training loss and batch size.
  virtual void Loss(int replica, double loss, int64_t batch_size) = 0;
  // `grad` (of dense or assigned variable `variable`) is final.
  virtual void Final(int replica, const std::string& variable, const RowMatrixXf& grad) = 0;
  // Backward returned OK: every gradient in `grads` is final.
  virtual void Done(int replica, const Gradients& grads) = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  // Brings variables, optimizer state and global_step to where training
  // starts: the latest checkpoint in model_dir, or initial values (and a
  // warm start) when there is none. Called once before each training run.
  // Errors: those of reading the checkpoint (DataLoss, NotFound, ...);
  // DataLoss / InvalidArgument for a checkpoint of another model.
  virtual absl::Status Restore() = 0;

  // The number of updates applied so far (after Restore).
  virtual int64_t global_step() const = 0;

  // The variables the step for `features` (replica 0's batch) reads
  // (Model::Forward and Backward); every local replica reads this one
  // Variables, concurrently (read-only). The pointer stays valid, and the variables unchanged, until
  // the next ApplyGradients or Restore. Errors: the strategy's (e.g.
  // Unavailable / DeadlineExceeded when a remote store does not answer).
  virtual absl::StatusOr<const Variables*> VariablesForStep(const FeatureMap& features) = 0;

  // Read-ahead (optional): true when the strategy wants the next step's
  // features before the current step computes, so it can fetch that
  // step's variables meanwhile (parameter_server: the next pull overlaps
  // this step's Forward/Backward). RunTrainLoop then reads the next batch
  // and calls PrefetchVariables with it on a second thread while the
  // current step computes (after VariablesForStep, joined before
  // ApplyGradients), so PrefetchVariables must not touch what
  // VariablesForStep returned nor anything ObserveStep's observer uses; its
  // `next_features` stay alive until the next ApplyGradients returns. The
  // next VariablesForStep is for those features. Default: no read-ahead
  // (the loop is then exactly batch, step, batch, step).
  virtual bool PrefetchesVariables() const { return false; }
  virtual absl::Status PrefetchVariables(const FeatureMap& next_features) {
    return absl::OkStatus();
  }

  // Replicas in sync in this process: each step reads this many batches
  // (one per replica), computes them in parallel (ComputeGradients is
  // re-entrant) and hands all of them to ApplyGradients. >= 1.
  virtual int num_local_replicas() const { return 1; }

  // Applies one step (every local replica's gradients, in replica order;
  // size() == num_local_replicas()) and advances global_step by one. May
  // consume the gradients. Returns the loss the hooks report: the mean over
  // every replica in sync (one replica: its loss). Errors: OutOfRange when
  // a peer's input ran out (nothing applied; the loop ends as if the input
  // had run out); InvalidArgument for a wrong number of replicas; the
  // strategy's.
  virtual absl::StatusOr<double> ApplyGradients(std::vector<ReplicaGradients>* replicas) = 0;

  // Called once per step before the replicas compute: the observer
  // (GradientObserver) the step's ComputeGradients tell, or null (default:
  // no overlap; ApplyGradients gets everything at once). Valid until the
  // step's ApplyGradients.
  virtual GradientObserver* ObserveStep() { return nullptr; }

  // The time this strategy's VariablesForStep, PrefetchVariables and
  // ApplyGradients spent waiting on other tasks (PS pull/push, all-reduce,
  // broadcast) since the last call; RunTrainLoop calls it once per step and
  // counts the rest of those calls' time as "apply" (StepPhases, hooks.h).
  // Default: zero (everything is local).
  virtual absl::Duration TakeCommunicationTime() { return absl::ZeroDuration(); }

  // Called once when this task's input has fewer batches than
  // num_local_replicas() left (the partial step is dropped; RunTrainLoop
  // then ends): synchronous strategies join the step's collectives with
  // "no data" so that peers end at the same step (their ApplyGradients
  // returns OutOfRange). Errors: the strategy's (a collective's).
  virtual absl::Status EndOfInput() { return absl::OkStatus(); }

  // Writes a checkpoint of the variables, the optimizer state and
  // global_step at global_step() into model_dir; returns its prefix.
  // Errors: those of checkpoint::Save.
  virtual absl::StatusOr<std::string> SaveCheckpoint() = 0;

  // The current values of the model's variables (for inspection after
  // training).
  virtual const Variables& variables() const = 0;
};

// What a model_dir holds for a model, as every strategy and evaluation
// restores it.
struct ModelCheckpointOptions {
  std::string model_dir;
  uint64_t seed = 0;  // for initial values (RunConfig's tf_random_seed)
  // A checkpoint (directory or path) to initialise variables from when
  // model_dir has none (tf.estimator.WarmStartSettings).
  std::string warm_start_from;
  // Without a checkpoint: initialise (training) or FailedPrecondition
  // (evaluation, prediction).
  bool init_if_missing = false;
  // This checkpoint (a prefix, "<dir>/model.ckpt-N") instead of the latest
  // in model_dir; its errors are returned as they are (no fallback).
  std::string checkpoint_path;
};

struct LoadedModel {
  Variables vars;  // floats: exactly the model's variables
  // Every other float the checkpoint held (optimizer slots); empty when
  // initialised.
  std::map<std::string, RowMatrixXf> others;
  // Every int64 the checkpoint held besides global_step (a cluster's
  // per-variable optimizer update counters).
  std::map<std::string, int64_t> other_ints;
  int64_t global_step = 0;
};

// The model's variables from the latest checkpoint in model_dir (logging
// "restoring parameters from ..."), or initial values (warm-started) when
// there is none. FailedPrecondition when there is none and
// !init_if_missing; DataLoss when the checkpoint lacks a variable,
// InvalidArgument when a shape differs; errors of the checkpoint reader.
absl::StatusOr<LoadedModel> LoadModel(const Model& model, const ModelCheckpointOptions& options);

// The checkpoint name of an optimizer slot: "<variable>/<optimizer>/<slot>"
// (TF1 names it "<variable>/<Optimizer>"; the slot name is added).
// The optimizer of `variable` (every strategy's rule): its
// Model::OptimizerGroup's, else the first. `optimizers` must not be empty.
const Optimizer& OptimizerFor(const Model& model,
                              const std::map<std::string, std::unique_ptr<Optimizer>>& optimizers,
                              const std::string& variable);

std::string SlotName(const std::string& variable, const std::string& optimizer,
                     const std::string& slot);

// The variables TF's training graph holds for `optimizers` (by
// Model::OptimizerGroup) besides the slots (tf_bundle::TfOptimizerVariables):
// with two optimizers (DNNLinearCombined) the "dnn" one counts global_step
// and the other gets "training/<Opt>/iter" = global_step, as in TF.
std::map<std::string, Tensor> TfOptimizerVariables(
    const std::map<std::string, std::unique_ptr<Optimizer>>& optimizers, int64_t global_step);

inline constexpr char kGlobalStepName[] = "global_step";

// Adds the time from its construction to its destruction to *sum (a
// strategy's TakeCommunicationTime bookkeeping: two clock reads).
class CommunicationTimer {
 public:
  explicit CommunicationTimer(absl::Duration* sum) : sum_(sum), start_(absl::Now()) {}
  ~CommunicationTimer() { *sum_ += absl::Now() - start_; }
  CommunicationTimer(const CommunicationTimer&) = delete;
  CommunicationTimer& operator=(const CommunicationTimer&) = delete;

 private:
  absl::Duration* const sum_;
  const absl::Time start_;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_STRATEGY_H_
