// Which generation of the cross-worker ring a multi_worker_mirrored task
// joins (distribute/multi_worker_trainer.h), agreed through the cluster's
// Store. A generation is one ring: the ranks that formed it and nothing
// else; when a collective fails the ring is abandoned and a new generation
// forms (RingOptions::generation keys the rendezvous, so ranks of
// different generations never connect).
//
// The chief (rank 0) alone opens generations: at start-up, and after each
// failure it sees, one past the newest published (kCollectiveGenerationKey),
// recording its incarnation under kCollectiveMemberPrefix<g>/0. Every other
// rank joins the newest open generation newer than the one that failed it,
// recording its incarnation under <g>/<rank> first, with one rule: a
// generation that already records an earlier incarnation of this rank (its
// dead predecessor, restarted by `estuary local --restart_failed` or
// Kubernetes) is not joined; the task waits for the chief to open the next
// one, which the chief does as soon as a collective of the old ring fails
// (the dead rank's sockets closed: at once; a stalled one: at the
// collective deadline). A record is written before the ring's rendezvous
// publishes an address, so "no record of an earlier incarnation" means
// "no address of it either".
//
// Functions, not a class; thread-safe as the Store is.
#ifndef ESTUARY_DISTRIBUTE_COLLECTIVE_GENERATION_H_
#define ESTUARY_DISTRIBUTE_COLLECTIVE_GENERATION_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/coordination/store.h"

namespace estuary {

// "estuary/collective/member/<generation>/<rank>".
std::string CollectiveMemberKey(int64_t generation, int rank);

// Chief: opens the generation after the newest one published (1 on a fresh
// store), as rank 0 with `incarnation`, and returns it. Errors: those of
// the Store; Internal when kCollectiveGenerationKey holds no number.
absl::StatusOr<int64_t> OpenCollectiveGeneration(Store& store, uint64_t incarnation,
                                                 absl::Time deadline);

// Any rank but 0: waits until the chief opened a generation newer than
// `failed` (0: none failed yet) that holds no earlier incarnation of
// `rank`, records `incarnation` in it and returns it; or returns 0 once
// training has ended (kFinalStepKey is set: nothing left to join).
// Errors: DeadlineExceeded ("the chief opened no ring generation after N
// within S s"); Cancelled (the Store's blocking calls were cancelled:
// shutdown); those of the Store.
absl::StatusOr<int64_t> JoinCollectiveGeneration(Store& store, int rank, uint64_t incarnation,
                                                 int64_t failed, absl::Time deadline);

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_COLLECTIVE_GENERATION_H_
