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
// The cross-worker ring of multi_worker_mirrored (distribute/
// collective_generation.h): the ring's own keys are
// "<kCollectivePrefix>/<generation>/..." (RingOptions::prefix).
inline constexpr char kCollectivePrefix[] = "estuary/collective";
// The newest ring generation the chief opened (1, 2, ...; one per
// re-formation after a failed collective).
inline constexpr char kCollectiveGenerationKey[] = "estuary/collective/generation";
// The collective the chief chose at start-up ("ring" | "nccl"; distribute/
// communication_choice.h): every rank uses it.
inline constexpr char kCollectiveCommunicationKey[] = "estuary/collective/communication";
// "<prefix><generation>/<rank>" = the incarnation of the task that joined
// that generation as that rank (the chief's, rank 0, opens it), so that a
// restarted task never joins a generation its dead incarnation was part of.
inline constexpr char kCollectiveMemberPrefix[] = "estuary/collective/member/";
// Checkpoint leases (distribute/checkpoint_lease.h): "<prefix><step>/...".
inline constexpr char kLeaseKeyPrefix[] = "estuary/lease/";

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_KEYS_H_
