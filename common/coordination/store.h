// Store: the rendezvous every distributed algorithm builds on (gloo's
// Store, c10d's Store): a key-value store with blocking waits, counters and
// barriers, shared by the tasks of one cluster. Ring addresses, NCCL unique
// ids and checkpoint leases go through it.
//
// Implementations: CoordinationClient (gRPC, the coordination service of
// the cluster's coordinator) and InMemoryStore (threads of one process,
// with fault injection, for tests). Both behave alike; store_test.cc runs
// one suite over both.
//
// A Store is bound to one task of the cluster (the caller's): barriers count
// arrivals per task. Every method takes an absolute deadline and fails with
// DeadlineExceeded when it passes (also when it has passed before the call);
// no method blocks past its deadline. Implementations are thread-safe.
#ifndef ESTUARY_COMMON_COORDINATION_STORE_H_
#define ESTUARY_COMMON_COORDINATION_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/cluster.h"

namespace estuary {

class Store {
 public:
  virtual ~Store() = default;

  // Sets `key` to `value`, replacing an earlier value (a restarted task
  // publishes its new address under the same key), and wakes the waiters
  // of `key`.
  // Errors: InvalidArgument (empty key); DeadlineExceeded; Unavailable (the
  // store cannot be reached or is shutting down).
  virtual absl::Status Set(const std::string& key, const std::string& value,
                           absl::Time deadline) = 0;

  // Returns the value of `key` without waiting.
  // Errors: NotFound (not set); DeadlineExceeded; Unavailable.
  virtual absl::StatusOr<std::string> Get(const std::string& key, absl::Time deadline) = 0;

  // Blocks until every key of `keys` is set and returns their values in the
  // order of `keys`.
  // Errors: DeadlineExceeded naming the keys still missing; Cancelled after
  // CancelBlockingCalls(); Unavailable (unreachable, shutting down);
  // InvalidArgument (no keys, or an empty key).
  virtual absl::StatusOr<std::vector<std::string>> Wait(const std::vector<std::string>& keys,
                                                        absl::Time deadline) = 0;

  // Adds `delta` to the integer counter `key` (an unset key counts as 0) and
  // returns the new value; the value reads back with Get as decimal text.
  // Errors: InvalidArgument (empty key, or the key holds a value that is not
  // a decimal int64, or the sum overflows); DeadlineExceeded; Unavailable.
  virtual absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta,
                                      absl::Time deadline) = 0;

  // Blocks until every task of `participants` (empty: every task of the
  // cluster spec) has called Barrier with the same `id`. The first arrival's
  // deadline and participant list are the barrier's. A barrier that passed
  // stays passed: a task arriving again (e.g. after a restart) passes at
  // once.
  // Errors: DeadlineExceeded naming the tasks that never arrived (for every
  // waiter, once the barrier's deadline passed); Unavailable naming a
  // participant that died or left; Cancelled after CancelBlockingCalls();
  // InvalidArgument (empty id, a participant list different from the
  // first arrival's); FailedPrecondition (this task is not registered);
  // Aborted (this task's incarnation is stale or was declared dead).
  virtual absl::Status Barrier(const std::string& id, const std::vector<TaskId>& participants,
                               absl::Time deadline) = 0;

  // Ends the blocking calls in flight (Wait, Barrier) with Cancelled and
  // makes later ones fail with Cancelled at once; Set, Get and Add keep
  // working (a task still says goodbye). For shutdown. Idempotent.
  virtual void CancelBlockingCalls() = 0;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_STORE_H_
