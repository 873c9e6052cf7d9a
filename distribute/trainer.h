// The training life of a cluster's chief and workers: a RoleJob
// (common/role_main.h) run between the start barrier and the end of the
// job (tf.estimator.train_and_evaluate's training side with TF_CONFIG).
// RunTrainer dispatches on the job's resolved strategy:
// multi_worker_mirrored is distribute/multi_worker_trainer.h; what follows
// is parameter_server.
//
// Every trainer (the chief too, as in TF) builds the job's Estimator over a
// ParameterServerStrategy and trains on its shard of train_input
// (TrainerShard) until global_step reaches train_spec.max_steps (or its
// input runs out).
//  - Chief: initialises the PS tasks (from the latest checkpoint, else
//    initial values / warm start) with a new generation and publishes it
//    (kPsGenerationKey); runs the summary, logging and checkpoint hooks;
//    when its training ends, waits for the workers to finish theirs, saves
//    the final checkpoint, sets kFinalStepKey, and, if the cluster has an
//    evaluator, waits for kEvaluatorDoneKey. Then the coordinator ends the
//    job: every task, PS included, exits 0.
//  - Worker: waits until the PS tasks are initialised (a blocking call to
//    them, no sleeps), trains with the logging hook only, announces it is
//    done, and waits for the chief to end the job.
// A task whose runtime stops (SIGTERM, the chief ended the job or was
// lost) stops training after the step in flight; its PS calls in flight
// are cancelled.
#ifndef ESTUARY_DISTRIBUTE_TRAINER_H_
#define ESTUARY_DISTRIBUTE_TRAINER_H_

#include "absl/status/status.h"
#include "common/cluster.h"
#include "common/role_main.h"
#include "common/task_runtime.h"
#include "estimator/estimator.h"

namespace estuary {

// The input shard of a training task: chief (or master) = 0, worker i =
// i + 1 with a chief, i without one; count = the number of training tasks.
// An evaluator or PS gets {0, 1}.
InputShard TrainerShard(const TfConfig& tf);

// True when the job has training for the cluster to do (a train_input); a
// job without one only holds the cluster up (--hold_secs).
bool HasTraining(const JobSpec& job);

// The RoleJob of the chief and the workers (see above). Errors: the
// strategy is neither parameter_server nor multi_worker_mirrored
// (Unimplemented), those of RunMultiWorkerMirroredTrainer, the job's estimator or
// input (InvalidArgument), the PS tasks' (Unavailable / DeadlineExceeded
// naming the task), a NaN loss, the checkpoint's I/O errors.
absl::Status RunTrainer(const RoleContext& ctx, TaskRuntime& runtime);

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_TRAINER_H_
