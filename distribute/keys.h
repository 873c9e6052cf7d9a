// Coordination-store keys of parameter-server training (the one list; the
// runtime's own keys are in common/task_runtime.h, the evaluator's
// checkpoint leases in distribute/checkpoint_lease.h under kLeasePrefix).
#ifndef ESTUARY_DISTRIBUTE_KEYS_H_
#define ESTUARY_DISTRIBUTE_KEYS_H_

namespace estuary {

// The PS generation in use (decimal): set by the chief after each
// Initialize of every PS (1 first, +1 after a PS restart).
inline constexpr char kPsGenerationKey[] = "estuary/ps/generation";
// The global_step of the final checkpoint (decimal): set by the chief when
// training has ended and that checkpoint is committed.
inline constexpr char kFinalStepKey[] = "estuary/train/final_step";
// Prefix of "a trainer finished": a worker sets
// "estuary/train/done/worker:1" when its training ended; the chief waits
// for them before the final checkpoint.
inline constexpr char kTrainerDonePrefix[] = "estuary/train/done/";
// Set by the evaluator after it evaluated the final checkpoint.
inline constexpr char kEvaluatorDoneKey[] = "estuary/evaluator/done";
// Prefix of the evaluator's checkpoint leases.
inline constexpr char kLeasePrefix[] = "estuary/lease/";

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_KEYS_H_
