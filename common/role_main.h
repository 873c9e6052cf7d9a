// The shared `main` of the four role binaries (chief, worker, ps,
// evaluator): flags, TF_CONFIG, the job file, logging, signals, and the
// exit-code contract (0 ok, 1 run-time failure, 2 bad input or an
// unreachable chief, with a one-line error on stderr).
#ifndef ESTUARY_COMMON_ROLE_MAIN_H_
#define ESTUARY_COMMON_ROLE_MAIN_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/cluster.h"
#include "common/job_spec.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "common/task_runtime.h"
#include "grpcpp/grpcpp.h"

namespace estuary {

struct RoleContext {
  std::string binary;  // "worker"
  TfConfig tf_config;
  JobSpec job;
  SignalWatcher* signals = nullptr;
  std::string listen_address;  // --listen, may be empty
  // Coordinator only: the HTTP port of the status page (--status_port; 0: a
  // free one, logged; -1: none).
  int status_port = -1;
  // Coordinator only: how long to keep the cluster up after start-up
  // before shutting it down (the job's work, until training lands).
  absl::Duration hold = absl::ZeroDuration();
  absl::Time process_start;
  // --on_sigterm=preempt (the Kubernetes manifests): SIGTERM means the pod
  // is being taken away, not that the job is done. The chief saves a
  // checkpoint (parameter_server) and ends the cluster as failed (every
  // other task exits 1, to be restarted and to wait for the new chief);
  // any task that received the signal exits 128 + signo (143), which
  // Kubernetes and TFJob's ExitCode policy treat as retryable. Default
  // (end_job): SIGTERM to the chief ends the job, every task exits 0.
  bool preempt_on_sigterm = false;
  // True once SIGTERM/SIGINT arrived and preempt_on_sigterm is set.
  bool Preempted() const {
    return preempt_on_sigterm && signals != nullptr && signals->received() != 0;
  }
  // This task's Prometheus metrics, served on --metrics_port; null when
  // metrics are off (the default): the trainers, the PS service and the
  // evaluator then collect none.
  TaskMetrics* metrics = nullptr;
  // TLS / job token of this task (job.security loaded for it); null: none.
  SecurityPtr security;
};

struct RoleDescription {
  std::string binary;
  // TF_CONFIG task types this binary runs.
  std::vector<std::string> task_types;
  std::string description;
};

// Parses argv and the environment into a RoleContext and calls `run`,
// returning its exit code; prints help for --help (exit 0) and a one-line
// error for bad input (exit 2).
int RoleMain(int argc, char** argv, const RoleDescription& role,
             const std::function<int(const RoleContext&)>& run);

// TaskRuntimeOptions for this task from the context.
TaskRuntimeOptions RuntimeOptionsFor(const RoleContext& ctx);

// Creates the task runtime, routes SIGINT/SIGTERM to TaskRuntime::Stop and
// joins the cluster. On failure returns null and sets `exit_code`: 2 when
// the chief cannot be reached or refuses us, 0 when a signal ended it.
std::unique_ptr<TaskRuntime> JoinCluster(const RoleContext& ctx, TaskRuntimeOptions options,
                                         int* exit_code);

// What a role does between the start barrier and the end of the job.
// Returns OK when its work is done (a member then waits for the chief's
// shutdown; the coordinator then shuts the cluster down), an error to fail
// the task (exit 1) / the job (coordinator: job_failed). A job watches
// `runtime.stopped()` (SIGTERM, a lost chief) and returns soon after it.
using RoleJob = std::function<absl::Status(const RoleContext&, TaskRuntime&)>;

// Extra gRPC services served on the task's port (a PS's variable store).
struct RoleServices {
  std::vector<grpc::Service*> services;
  // Fills this task's live report (TaskRuntimeOptions::report_sources).
  LiveReport::Edit report_source;
};

// A non-coordinator member's life: join (serving `extra`), pass the start
// barrier, run `job` if any, stay until the chief ends the job (or SIGTERM),
// leave. Returns the process exit code.
int RunMember(const RoleContext& ctx, const RoleJob& job = {}, RoleServices extra = {});

// Prints "<binary>: error: <message>" to stderr (and the log).
void PrintError(const std::string& binary, absl::string_view message);

}  // namespace estuary

#endif  // ESTUARY_COMMON_ROLE_MAIN_H_
