// `estuary local`: a real multi-process cluster on loopback. Picks free
// ports, writes each task's TF_CONFIG, starts each role binary as its own
// process, streams their logs with a task prefix, reports the start-up
// time, and stops every child on Ctrl-C/SIGTERM, on a task's failure, or at
// the timeout. Returns the chief's exit code.
//
// With restart_failed, a task that fails (exits non-zero, or is killed by a
// signal) is started again with the same TF_CONFIG, as Kubernetes'
// restartPolicy: OnFailure would: at most max_restarts times per task, the
// n-th restart restart_backoff * 2^(n-1) after the failure (capped at 30 s).
// The coordination service sees the new incarnation and counts a restart.
// A task that exits 0 stays down; one that fails past max_restarts fails
// the cluster as without the option.
#ifndef ESTUARY_CLI_LOCAL_LAUNCHER_H_
#define ESTUARY_CLI_LOCAL_LAUNCHER_H_

#include <string>

#include "absl/time/time.h"
#include "common/signals.h"

namespace estuary {

struct LocalClusterOptions {
  std::string job_path;
  int workers = 2;
  int ps = 2;
  bool evaluator = false;
  // Without a chief, worker 0 coordinates (TensorFlow's convention).
  bool chief = true;
  absl::Duration timeout = absl::Minutes(30);
  // Passed to the coordinator (--hold_secs).
  double hold_secs = 0;
  // Passed to the coordinator (--status_port; -1: no status page).
  int status_port = -1;
  // Every task serves Prometheus metrics: the k-th task (in the cluster
  // spec's order: chief, workers, ps, evaluator) on metrics_port_base + k;
  // 0: each on a free port, reported by the launcher ("metrics of
  // worker:0: http://127.0.0.1:PORT/metrics") once the task logs it; -1:
  // none.
  int metrics_port_base = -1;
  // Restart failed tasks (see above).
  bool restart_failed = false;
  int max_restarts = 3;
  absl::Duration restart_backoff = absl::Seconds(1);
  // Where the role binaries are (default: found next to this program or in
  // its Bazel runfiles).
  std::string bin_dir;
  SignalWatcher* signals = nullptr;
};

// Logs "started worker:1 (pid N)" for every start, "restarting worker:1
// (exit code 137, restart 1 of 3)" for every restart; with metrics or a
// status page, a table "task -> address" at the start and, for ports the
// tasks picked, "metrics of worker:1: http://127.0.0.1:PORT/metrics" /
// "status page of chief:0: http://127.0.0.1:PORT/" when each binds.
// Exit codes: the chief's (coordinator's); 1 if another task failed first
// (past its restarts); 2 for bad input; 124 at the timeout; 130 when
// interrupted.
int RunLocalCluster(const LocalClusterOptions& options, const std::string& argv0);

// Finds a role binary ("chief", "worker", "ps", "evaluator"). Looks in
// `bin_dir`, $ESTUARY_BIN_DIR, next to argv0, in Bazel's output layout
// (<dir>/../{server,worker,ps}/NAME) and in argv0's runfiles.
std::string FindRoleBinary(const std::string& name, const std::string& bin_dir,
                           const std::string& argv0);

}  // namespace estuary

#endif  // ESTUARY_CLI_LOCAL_LAUNCHER_H_
