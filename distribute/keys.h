// The coordination keys of a training cluster (one list; values are
// decimal text unless said otherwise).
#ifndef ESTUARY_DISTRIBUTE_KEYS_H_
#define ESTUARY_DISTRIBUTE_KEYS_H_

namespace estuary {

// The current PS generation (the chief sets it after initialising the PS
// tasks).
inline constexpr char kPsGenerationKey[] = "estuary/ps/generation";
// The step of the final checkpoint (the chief, once training ended and the
// final checkpoint is committed).
inline constexpr char kFinalStepKey[] = "estuary/train/final_step";
// Prefix of "a trainer finished": a worker sets
// "estuary/train/done/worker:1" when its training ended; the chief waits
// for them before the final checkpoint.
inline constexpr char kTrainerDonePrefix[] = "estuary/train/done/";
// The step the evaluator evaluated last (the evaluator, after evaluating the
// final checkpoint).
inline constexpr char kEvaluatorDoneKey[] = "estuary/evaluator/done";
// Checkpoint leases (distribute/checkpoint_lease.h): "<prefix><step>/...".
inline constexpr char kLeaseKeyPrefix[] = "estuary/lease/";

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_KEYS_H_
