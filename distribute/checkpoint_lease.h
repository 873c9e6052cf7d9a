// Checkpoint leases: an evaluator reading checkpoint N and the chief's
// keep_checkpoint_max cleanup (checkpoint::SaveOptions::may_delete) agree
// through the coordination Store, so the cleanup never deletes a checkpoint
// underneath a reader (TensorFlow's evaluator races the cleaner: TF #39033).
//
// Protocol, per step N, two keys (kLeaseKeyPrefix + "<N>/..."):
//   readers   a counter of the leases held (Store::Add)
//   deleting  "1" while (and once) the chief deletes N, "0" after it backed off
// Acquire: announce (readers += 1), then check deleting; if it is "1", back
//   off (readers -= 1) and return NotFound.
// MayDelete: announce (deleting = "1"), then check readers; if any, back off
//   (deleting = "0") and return false; else true (deleting stays "1": the
//   checkpoint is gone for good).
// The store is linearizable, so of two announcements one comes first and the
// other side's check sees it (Dekker): a lease that Acquire granted is seen
// by every later MayDelete, and a MayDelete that returned true is seen by
// every later Acquire. Race-free by construction, not by timing. Both sides
// may back off at once (a spurious NotFound or a checkpoint kept one commit
// longer); neither outcome reads a deleted file.
//
// Leases are not tied to a process: an evaluator killed while it holds one
// leaves that checkpoint on disk (one per death) until the job's model_dir
// is cleaned. Keys are never removed (the Store has no Delete): two small
// keys per leased or deleted step.
//
// Thread-safe (the Store is); holds no state of its own. The Store is
// borrowed and must outlive this object.
#ifndef ESTUARY_DISTRIBUTE_CHECKPOINT_LEASE_H_
#define ESTUARY_DISTRIBUTE_CHECKPOINT_LEASE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/coordination/store.h"
#include "distribute/keys.h"

namespace estuary {

class CheckpointLeases {
 public:
  explicit CheckpointLeases(Store* store) : store_(store) {}

  // Evaluator: leases checkpoint `step` until Release. The caller still
  // checks that the checkpoint exists (a chief that does not consult leases,
  // or a crash, may have removed it).
  // Errors: NotFound (the checkpoint is being or has been deleted: pick a
  // newer one); the Store's (DeadlineExceeded, Unavailable) — then nothing
  // is held, unless the store failed between the two steps (a lease left
  // behind keeps the checkpoint on disk, which is safe).
  absl::Status Acquire(int64_t step, absl::Time deadline);

  // Evaluator: ends a lease Acquire granted.
  // Errors: the Store's (the lease then stays and the checkpoint is kept).
  absl::Status Release(int64_t step, absl::Time deadline);

  // Chief, as SaveOptions::may_delete: true when checkpoint `step` may be
  // deleted now (no lease, and none can be granted from now on); false while
  // it is leased, and on any Store error (keeping it is always safe).
  bool MayDelete(int64_t step, absl::Time deadline);

  static std::string ReadersKey(int64_t step);
  static std::string DeletingKey(int64_t step);

 private:
  Store* const store_;
};

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_CHECKPOINT_LEASE_H_
