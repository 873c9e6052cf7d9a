// RunTrainer (distribute/trainer.h) under multi_worker_mirrored: the chief
// and every worker are the ranks of one all-reduce ring (common/collective/
// ring) and train one Estimator each over a CollectiveStrategy
// (distribute/collective_strategy.h) on their input shard.
//
//  - Communication: distribution.communication picks the TCP ring or NCCL
//    at start-up (communication_choice.h; `auto` = NCCL when the build has
//    CUDA and a GPU is visible, logged with the reason). NCCL uses the same
//    ranks, generations and recovery as the ring below; its unique id goes
//    through the Store under "<kCollectivePrefix>/nccl/<generation>/",
//    one GPU per process (device rank % visible GPUs).
//  - Ranks: the chief (or master) is rank 0, worker i is rank i + 1
//    (TrainerShard's order; without a chief, worker i is rank i). The ring
//    listens on this task's host from TF_CONFIG (any free port) and meets
//    its peers through the coordination Store at a generation
//    (distribute/collective_generation.h).
//  - The chief restores (the latest checkpoint, else initial values / warm
//    start) and broadcasts variables, slots and global_step; it alone runs
//    the summary and checkpoint hooks. Every rank runs the logging hook and
//    stops at train_spec.max_steps: global_step is the same everywhere, so
//    every rank stops after the same step (or when any rank's input runs
//    out). The chief then ends training as under parameter_server (final
//    checkpoint, kFinalStepKey, the evaluator's final evaluation).
//  - Recovery: a collective that fails with Unavailable or
//    DeadlineExceeded (a rank died or stalled; the message names it) makes
//    each rank abort its ring and log
//      collective failed at ring generation G (<error naming the rank>);
//      re-forming the ring at generation G+1 from the last checkpoint ...
//    The chief opens generation G+1 at once and waits, up to
//    distribution.startup_timeout, for every rank to join it (the dead
//    task's new incarnation, restarted by `estuary local --restart_failed`
//    or Kubernetes, joins the newest generation); then the chief restores
//    the last checkpoint and broadcasts it, and training resumes, ending at
//    max_steps. A rank that does not come back fails the chief with one
//    line naming it (the job fails: every task exits 1). A lost chief ends
//    every task as under parameter_server (exit 1 after heartbeat_timeout,
//    or at once when its ring connections close).
#ifndef ESTUARY_DISTRIBUTE_MULTI_WORKER_TRAINER_H_
#define ESTUARY_DISTRIBUTE_MULTI_WORKER_TRAINER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/cluster.h"
#include "common/role_main.h"
#include "common/task_runtime.h"

namespace estuary {

// The training tasks in rank order: chief/master, then the workers by
// index.
std::vector<TaskId> TrainerTasks(const TfConfig& tf);

// Errors: the job's (InvalidArgument), distribution.communication "nccl"
// where NCCL can not run (at start-up: Unimplemented in a build without
// --config=cuda, FailedPrecondition without a usable GPU; see
// communication_choice.h), a ring that does
// not form or re-form in time (DeadlineExceeded naming the ranks missing,
// with the failure that started the re-formation), a collective error
// other than Unavailable / DeadlineExceeded, a NaN loss, checkpoint I/O
// errors; Cancelled when the task's runtime stopped.
absl::Status RunMultiWorkerMirroredTrainer(const RoleContext& ctx, TaskRuntime& runtime);

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_MULTI_WORKER_TRAINER_H_
