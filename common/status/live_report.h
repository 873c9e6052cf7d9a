// What a task says about itself with every heartbeat (the live view's task
// side): a coordination::TaskReport snapshot that the task's code updates
// (a training hook, the evaluator, the chief's checkpoint listener) and the
// heartbeat thread of TaskRuntime reads, plus sources the heartbeat thread
// polls when it reads (a PS's shard sizes).
//
// Thread-safe. Owned by TaskRuntime (TaskRuntime::report()); starts no
// threads.
#ifndef ESTUARY_COMMON_STATUS_LIVE_REPORT_H_
#define ESTUARY_COMMON_STATUS_LIVE_REPORT_H_

#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proto/coordination.pb.h"

namespace estuary {

class LiveReport {
 public:
  // Edits the report in place, under the report's lock: must be quick and
  // must not call back into this LiveReport.
  using Edit = std::function<void(coordination::TaskReport*)>;

  // Applies `edit` to the snapshot.
  void Update(const Edit& edit);
  // `source` fills its fields into every Snapshot() (called on the reading
  // thread, outside the lock; it must be thread-safe itself).
  void AddSource(Edit source);
  // The report as of now: the snapshot, then every source applied to it.
  coordination::TaskReport Snapshot() const;

 private:
  mutable absl::Mutex mu_;
  coordination::TaskReport report_ ABSL_GUARDED_BY(mu_);
  std::vector<Edit> sources_ ABSL_GUARDED_BY(mu_);
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_STATUS_LIVE_REPORT_H_
