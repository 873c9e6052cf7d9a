// The live view's coordinator side (service logic, no RPC or HTTP in it):
// aggregates what every task reports with its heartbeat
// (coordination::TaskReport, live_report.h) with what the coordination
// service knows (registration, incarnations, restarts, deaths) into a
// coordination::ClusterStatus, and keeps a bounded time series per task
// (global_step, steps/s and loss over time) for the status page's chart.
// GrpcCoordinationService feeds it (Record) and answers GetStatus with
// Build; the chief's status page (status_page.h) serves Build as HTML and
// JSON.
//
// Thread-safe; starts no threads.
#ifndef ESTUARY_COMMON_STATUS_LIVE_STATUS_H_
#define ESTUARY_COMMON_STATUS_LIVE_STATUS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "proto/coordination.pb.h"

namespace estuary {

struct LiveStatusOptions {
  // Points kept per task. When a series is full, every second point is
  // dropped (the chart keeps the whole run at half the resolution).
  int max_points = 600;
  // A new point is added at most this often per task (heartbeats may be
  // more frequent).
  absl::Duration min_point_interval = absl::Milliseconds(500);
  // Time 0 of the series.
  absl::Time start = absl::Now();
  // Names the coordinator in ClusterStatus ("chief:0 at host:port").
  std::string coordinator;
};

class LiveStatus {
 public:
  explicit LiveStatus(LiveStatusOptions options);

  // Records the report `task` (with `incarnation`) sent at `now`. A report
  // of a training task (local_steps > 0) adds a point to its series.
  void Record(const TaskId& task, uint64_t incarnation, const coordination::TaskReport& report,
              absl::Time now);
  // The status page's URL, shown in ClusterStatus.
  void SetStatusUrl(const std::string& url);

  // Every task of `state` (the coordination service's view: state,
  // incarnation, restarts, reason) with its last report (if it came from
  // the task's current incarnation) and its series; cluster totals over
  // the ALIVE tasks.
  coordination::ClusterStatus Build(const coordination::ClusterState& state,
                                    absl::Time now) const;

 private:
  struct TaskEntry {
    uint64_t incarnation = 0;
    coordination::TaskReport report;
    absl::Time last_report = absl::InfinitePast();
    absl::Time last_point = absl::InfinitePast();
    std::deque<coordination::StatusPoint> series;
  };

  const LiveStatusOptions options_;
  mutable absl::Mutex mu_;
  std::map<TaskId, TaskEntry> tasks_ ABSL_GUARDED_BY(mu_);
  std::string status_url_ ABSL_GUARDED_BY(mu_);
};

// /status.json: the proto's JSON (field names as in the .proto, every
// field printed, int64 as strings as proto3 JSON does).
std::string StatusToJson(const coordination::ClusterStatus& status);
// Parses StatusToJson's output. Errors: InvalidArgument naming the problem.
absl::StatusOr<coordination::ClusterStatus> StatusFromJson(const std::string& json);

// `estuary status`'s terminal table: a summary line, then one row per task
// (state, incarnation, restarts, step, steps/s, loss, phase split, PS shard
// size, last checkpoint / eval).
std::string FormatStatusTable(const coordination::ClusterStatus& status);

}  // namespace estuary

#endif  // ESTUARY_COMMON_STATUS_LIVE_STATUS_H_
