// `estuary local`: a real multi-process cluster on loopback. Picks free
// ports, writes each task's TF_CONFIG, starts each role binary as its own
// process, streams their logs with a task prefix, reports the start-up
// time, and stops every child on Ctrl-C/SIGTERM, on a task's failure, or at
// the timeout. Returns the chief's exit code.
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
  // Where the role binaries are (default: found next to this program or in
  // its Bazel runfiles).
  std::string bin_dir;
  SignalWatcher* signals = nullptr;
};

// Exit codes: the chief's; 1 if another task failed first; 2 for bad
// input; 124 at the timeout; 130 when interrupted.
int RunLocalCluster(const LocalClusterOptions& options, const std::string& argv0);

// Finds a role binary ("chief", "worker", "ps", "evaluator"). Looks in
// `bin_dir`, $ESTUARY_BIN_DIR, next to argv0, in Bazel's output layout
// (<dir>/../{server,worker,ps}/NAME) and in argv0's runfiles.
std::string FindRoleBinary(const std::string& name, const std::string& bin_dir,
                           const std::string& argv0);

}  // namespace estuary

#endif  // ESTUARY_CLI_LOCAL_LAUNCHER_H_
