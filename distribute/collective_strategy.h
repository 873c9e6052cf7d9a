// Synchronous strategies for the Estimator's seam (estimator/strategy.h):
// tf.distribute's MirroredStrategy, CentralStorageStrategy and
// MultiWorkerMirroredStrategy. Every replica in sync computes gradients on
// its own per-replica batch; the gradients are reduced (dense: all-reduced
// in fused buckets; sparse rows: all-gathered, as TF all-gathers
// IndexedSlices, and summed per row; assignments such as batch-norm moving
// statistics: averaged); the loss is scaled by the global batch (each
// replica's gradients are weighted by its batch size and the sum divided by
// the global example count: the gradient of the mean loss over the global
// batch, also for ragged batches; equal batches: the mean over replicas,
// TF's 1/replicas scaling); every worker applies the
// same update with common/optimizer, so every copy stays identical and the
// result is the model one process computes with the global batch.
//
//   mirrored / central_storage: one process, `local_replicas` replicas
//     (threads of RunTrainLoop). On CPU the replicas of one process share
//     one copy of the variables; their gradients are summed in place and
//     applied once.
//   multi_worker_mirrored: the same within each worker, plus a
//     cross-worker Communicator (ring over TCP or NCCL). The chief (rank 0)
//     restores (checkpoint, else initial values / warm start) and broadcasts
//     variables, optimizer slots and global_step to every worker; only the
//     chief saves checkpoints.
//
// Each step's first collective carries, fused with the dense gradients, the
// replicas' loss sum, example count and a "has data" count: when any
// worker's input ran out (EndOfInput), every worker gets OutOfRange from
// ApplyGradients at the same step and nothing is applied.
//
// Errors of ApplyGradients: OutOfRange (a worker's input ran out; nothing
// applied); the communicator's (DeadlineExceeded / Unavailable naming the
// peer, Cancelled after Abort; the communicator is broken then and the
// step not applied); InvalidArgument for a gradient the model's layout
// does not have or workers whose models differ. Restore: the chief's
// LoadModel errors; the communicator's; InvalidArgument when a worker's
// model state differs in shape from the chief's.
//
// Not thread-safe (one training thread, as every Strategy). Borrows the
// model, the optimizers and the communicator.
#ifndef ESTUARY_DISTRIBUTE_COLLECTIVE_STRATEGY_H_
#define ESTUARY_DISTRIBUTE_COLLECTIVE_STRATEGY_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/collective/communicator.h"
#include "common/job_spec.h"
#include "common/optimizer.h"
#include "estimator/model.h"
#include "common/metrics.h"
#include "estimator/one_device_strategy.h"
#include "estimator/strategy.h"

namespace estuary {

struct CollectiveStrategyOptions {
  // model_dir, seed, warm start, keep_checkpoint_max (the chief's).
  OneDeviceStrategyOptions local;
  // Replicas in this process (mirrored: its N; multi_worker_mirrored:
  // distribution.num_replicas_per_worker). >= 1.
  int local_replicas = 1;
  // Between workers (multi_worker_mirrored); null in one process. Borrowed.
  Communicator* communicator = nullptr;
  // Deadline of each collective call (distribution.collective_timeout).
  absl::Duration collective_timeout = kDefaultCollectiveTimeout;
  // Gradient fusion: dense gradients travel in buckets of about this many
  // bytes (PyTorch DDP's 25 MiB), in reverse order of the model's layers.
  size_t bucket_bytes = size_t{25} << 20;
  // Overlap (distribution.overlap_backward): with a communicator, a thread
  // of the strategy all-reduces each bucket as soon as every local replica
  // has finished its gradients (Strategy::ObserveStep), while Backward
  // computes the rest (the DNN reports its gradients layer by layer, top
  // first). The same sums in the same order: results are bit-identical to
  // overlap off. Off by default: on 2 shared cores it was no win
  // (bench/RESULTS.md). The thread is the strategy's (joined when it is
  // destroyed, after an all-reduce in flight ends, at the latest at its
  // deadline).
  bool overlap_backward = false;
  // The task's Prometheus metrics (borrowed, may be null): every
  // collective of a step is observed in estuary_allreduce_seconds and
  // estuary_allreduce_bytes_total (op="allreduce" for the dense buckets,
  // "allgather" for the sparse rows).
  TaskMetrics* metrics = nullptr;
};

// What a job file asks for: local.checkpoint from model_dir,
// run_config.tf_random_seed and estimator.warm_start_from,
// local.keep_checkpoint_max from run_config, local_replicas from
// distribution.num_replicas_per_worker, collective_timeout from
// distribution.collective_timeout_secs; no communicator (a cluster's
// trainer sets it).
CollectiveStrategyOptions CollectiveStrategyOptionsFromJob(const JobSpec& job);

// True for the strategies MakeCollectiveStrategy implements: "mirrored",
// "central_storage", "multi_worker_mirrored".
bool IsCollectiveStrategy(const std::string& strategy);

// Makes the strategy; InvalidArgument for local_replicas < 1 or no
// optimizers. Rank 0 of the communicator (or the only worker) is the
// chief: it alone reads model_dir at Restore and saves checkpoints
// (SaveCheckpoint elsewhere: FailedPrecondition).
absl::StatusOr<std::unique_ptr<Strategy>> MakeCollectiveStrategy(
    const Model* model, const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
    CollectiveStrategyOptions options);

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_COLLECTIVE_STRATEGY_H_
