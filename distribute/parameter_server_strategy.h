// tf.distribute's ParameterServerStrategy for the Estimator (asynchronous
// training, TF1 style): the variables, their optimizer slots and
// global_step live on the PS tasks (common/ps); every worker, the chief
// included, runs the one training loop (estimator/train_loop.h) over a
// local mirror:
//   VariablesForStep  Model::RowsRead(features) names the rows of the
//                     row-sparse variables the batch reads; one Pull
//                     fetches the dense variables whole and exactly those
//                     rows (the mirror's other rows are never read);
//   ApplyGradients    one Push of the step's Gradients (touched rows only);
//                     each PS applies common/optimizer, PS 0 advances
//                     global_step and the push returns it; with
//                     pull_with_push the same call also pulls the next
//                     step's variables (the loop reads the next batch
//                     ahead: PrefetchVariables names its rows), read by
//                     each PS after applying this push;
//   Restore           chief: LoadModel (the latest checkpoint, else initial
//                     values and a warm start; slots and update counters
//                     from the checkpoint) then Initialize every PS with a
//                     new generation; worker: WaitInitialized (blocks on the
//                     PS tasks, no sleeps) and reads global_step;
//   SaveCheckpoint    chief: every PS writes its shard at one agreed step
//                     (PsClient::SaveShards), then checkpoint::
//                     CommitCheckpoint (keep_checkpoint_max, may_delete).
// Workers read variables that other workers are updating: a step's
// gradients apply to variables a few updates newer than the ones it read
// (asynchronous staleness, as in TF).
//
// A PS that dies and comes back (a new process, empty) is recovered from
// in place: the failed pull or push (Unavailable / DeadlineExceeded while
// it is down, FailedPrecondition once it is back uninitialised, Aborted for
// a stale generation) makes the chief reload the latest checkpoint and
// Initialize every PS with generation + 1 (waiting for the PS to return,
// up to init_timeout), and makes a worker WaitInitialized for the newer
// generation; the step's gradients are dropped and training resumes from
// the checkpoint's step. The generation tag keeps old and new shards from
// ever mixing.
//
// Not thread-safe (one training thread), except that PrefetchVariables may
// run on RunTrainLoop's read-ahead thread while the step computes (it only
// touches the next step's rows / prefetch, never the mirror the step
// reads). Borrows the model, optimizers and
// client, which must outlive it.
#ifndef ESTUARY_DISTRIBUTE_PARAMETER_SERVER_STRATEGY_H_
#define ESTUARY_DISTRIBUTE_PARAMETER_SERVER_STRATEGY_H_

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/optimizer.h"
#include "common/ps/ps_client.h"
#include "estimator/model.h"
#include "estimator/strategy.h"

namespace estuary {

struct ParameterServerStrategyOptions {
  // The chief initialises the PS tasks and writes checkpoints; other
  // workers wait for the PS tasks and never save.
  bool is_chief = false;
  // model_dir, seed, warm_start_from (init_if_missing is always true).
  ModelCheckpointOptions checkpoint;
  int keep_checkpoint_max = 5;  // 0 keeps all
  // Consulted before keep_checkpoint_max deletes checkpoint `step`; false
  // keeps it for now (the evaluator holds a lease on it). Empty: delete.
  std::function<bool(int64_t step)> may_delete;
  // Chief: the generation to tag the PS tasks with at Restore (+1 at each
  // recovery); workers: the least generation they accept.
  uint64_t generation = 1;
  // Pull the next step's variables while this step computes (an
  // asynchronous pull: that step then reads variables without this step's
  // own update, one more step of staleness, as any other worker's step).
  // Off by default: on 2 cores it gained no speed and cost Adam accuracy
  // (Fashion-MNIST DNN, chief + 2 workers + 1 PS, 9375 steps: 0.877-0.887
  // with it, 0.889 without).
  bool prefetch = false;
  // Pull the next step's variables with this step's push (PsClient::
  // PushPull: one round trip per step; each PS answers after applying the
  // push, so the step still sees its own update). With one trainer that
  // is exactly what a separate pull reads; with several the read happens
  // a round trip (and, on busy cores, a context switch) earlier, so a step
  // misses more of the other workers' updates: Fashion-MNIST (chief + 2
  // workers + 1 PS, Adam, 20 runs each on 2 cores): mean accuracy 0.8865
  // with it, 0.8897 without (bench/RESULTS.md). The job file's default
  // (distribution.pull_with_push unset) turns it on for one trainer only.
  bool pull_with_push = false;
  // How many PS recoveries one step may go through before its error is
  // returned.
  int max_recoveries_per_step = 3;
  // Chief: called after every PS holds `generation` (publishes it in the
  // coordination store). Its error fails Restore.
  std::function<absl::Status(uint64_t generation)> on_initialized;
  // Deadline of each Pull, Push, GlobalStep and Initialize.
  absl::Duration call_timeout = absl::Seconds(60);
  // How long a worker's Restore waits for the chief to initialise the PS
  // tasks, and the deadline of a checkpoint's SaveShards.
  absl::Duration init_timeout = absl::Seconds(120);
};

class ParameterServerStrategy : public Strategy {
 public:
  // `optimizers` by Model::OptimizerGroup ("" for one optimizer; a group
  // without its own optimizer uses the first); must not be empty.
  ParameterServerStrategy(const Model* model,
                          const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
                          PsClient* client, ParameterServerStrategyOptions options);
  ~ParameterServerStrategy() override;

  // Errors: LoadModel's (chief), PsClient's (Unavailable / DeadlineExceeded
  // naming the PS task, InvalidArgument), on_initialized's.
  absl::Status Restore() override;
  int64_t global_step() const override { return global_step_; }
  // Errors: RowsRead's (InvalidArgument), Pull's (Unavailable /
  // DeadlineExceeded naming the PS, Aborted after a PS restart).
  absl::StatusOr<const Variables*> VariablesForStep(const FeatureMap& features) override;
  // One replica (replicas->size() == 1, else InvalidArgument); returns its
  // loss. Errors: Push's (InvalidArgument for an unknown variable, nothing
  // sent).
  absl::StatusOr<double> ApplyGradients(std::vector<ReplicaGradients>* replicas) override;
  // With prefetch or pull_with_push: both need the next step's rows.
  bool PrefetchesVariables() const override {
    return options_.prefetch || options_.pull_with_push;
  }
  // All of VariablesForStep and ApplyGradients (pull, push, recovery): the
  // optimizer runs on the PS tasks.
  absl::Duration TakeCommunicationTime() override;
  // Names the rows `next_features` reads, for the next ApplyGradients'
  // push + pull (pull_with_push), or starts that pull in the background
  // (prefetch; the next VariablesForStep waits for it). Errors: RowsRead's.
  absl::Status PrefetchVariables(const FeatureMap& next_features) override;
  // Chief only (FailedPrecondition on a worker). A PS failure while saving
  // is recovered from (as above) and the save retried. Errors:
  // SaveShards', CommitCheckpoint's.
  absl::StatusOr<std::string> SaveCheckpoint() override;
  // The mirror: the dense variables of the last pull, and of row-sparse
  // ones the rows pulled so far.
  const Variables& variables() const override { return mirror_; }

  // The PsVariableInit list the chief initialises the PS tasks with, from
  // a loaded model (slots and update counters from its checkpoint, else
  // empty slots and `updates` = global_step as in one process).
  static std::vector<PsVariableInit> InitsFromLoaded(
      const Model& model, const std::map<std::string, std::unique_ptr<Optimizer>>& optimizers,
      LoadedModel loaded);

 private:
  // The variables by kind, from the placement the client learned.
  void LearnVariables();
  // Waits for the prefetch in flight, if any; its status.
  absl::Status FinishPrefetch();
  // Chief: LoadModel + Initialize(generation_) + on_initialized.
  absl::Status InitializeFromCheckpoint();
  // After a failed pull/push: recovers as described above, or returns
  // `why` when it is not a PS failure (or the recovery failed).
  absl::Status Recover(const absl::Status& why);

  const Model* const model_;
  const std::map<std::string, std::unique_ptr<Optimizer>>* const optimizers_;
  PsClient* const client_;
  const ParameterServerStrategyOptions options_;
  std::vector<std::string> dense_;   // pulled whole every step
  std::set<std::string> row_sparse_;  // pulled by rows
  Variables mirror_;
  // The next step's variables, filled by the prefetch in flight.
  Variables next_mirror_;
  std::future<absl::Status> prefetch_;
  // The rows the next step reads (PrefetchVariables), pulled with the push.
  std::optional<std::map<std::string, std::vector<int64_t>>> next_rows_;
  // mirror_ holds the next step's variables (pulled with the last push).
  bool mirror_ready_ = false;
  int64_t global_step_ = 0;
  uint64_t generation_ = 0;  // chief: of the last Initialize
  absl::Duration communication_;  // since the last TakeCommunicationTime
};



}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_PARAMETER_SERVER_STRATEGY_H_
