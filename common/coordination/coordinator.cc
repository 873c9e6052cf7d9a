#include "common/coordination/coordinator.h"

#include "absl/strings/str_cat.h"
#include "common/coordination/coordination_service.h"
#include "common/coordination/grpc_service.h"
#include "common/coordination/types.h"
#include "common/exit_codes.h"
#include "common/logging.h"
#include "common/rpc.h"
#include "common/status/live_status.h"
#include "common/status/status_page.h"

namespace estuary {

int RunCoordinator(const RoleContext& ctx, const RoleJob& job) {
  const TaskId self = ctx.tf_config.task;
  CoordinationServiceOptions service_options;
  service_options.cluster_tasks = ctx.tf_config.cluster.AllTasks();
  service_options.heartbeat_interval = ctx.job.distribution.heartbeat_interval;
  service_options.heartbeat_timeout = ctx.job.distribution.heartbeat_timeout;
  service_options.leader_incarnation = NewIncarnation();
  CoordinationService service(service_options);
  LiveStatusOptions live_options;
  live_options.start = ctx.process_start;
  absl::StatusOr<std::string> own_address = ctx.tf_config.OwnAddress();
  live_options.coordinator =
      absl::StrCat(self.ToString(), own_address.ok() ? " at " + *own_address : "");
  LiveStatus live(live_options);
  GrpcCoordinationService grpc_service(&service, &live);

  TaskRuntimeOptions options = RuntimeOptionsFor(ctx);
  options.services.push_back(&grpc_service);
  int join_code = kExitOk;
  std::unique_ptr<TaskRuntime> rt = JoinCluster(ctx, options, &join_code);
  if (rt == nullptr) return join_code;
  TaskRuntime& runtime = *rt;
  spdlog::info("coordinating {} tasks: {}", service_options.cluster_tasks.size(),
               JoinTasks(service_options.cluster_tasks));
  std::unique_ptr<StatusHttpServer> status_page;
  if (ctx.status_port >= 0) {
    // Bound like the task's gRPC port: an IP literal binds itself, a host
    // name every interface.
    const std::string listen = ListenAddressFor(runtime.address());
    StatusHttpServerOptions page_options;
    page_options.host = listen.substr(0, listen.rfind(':'));
    if (page_options.host == "[::]") page_options.host = "0.0.0.0";
    page_options.port = ctx.status_port;
    absl::StatusOr<std::unique_ptr<StatusHttpServer>> page = StatusHttpServer::Start(
        page_options, [&service, &live] { return live.Build(service.State(), absl::Now()); });
    if (page.ok()) {
      status_page = *std::move(page);
      const std::string& address = runtime.address();
      const std::string url = absl::StrCat("http://", address.substr(0, address.rfind(':')), ":",
                                           status_page->port(), "/");
      live.SetStatusUrl(url);
      spdlog::info("status page: {} (JSON: {}status.json)", url, url);
    } else {
      // The job does not need the page: say so and go on.
      spdlog::error("{}", page.status().message());
    }
  }

  int exit_code = kExitOk;
  std::string reason;
  absl::Status st = runtime.StartBarrier();
  if (!st.ok()) {
    absl::Status why = runtime.stopped() ? runtime.WaitForStop(absl::ZeroDuration()) : st;
    exit_code = ExitCodeFor(why);
    reason = exit_code == 0 ? std::string(why.message())
                            : absl::StrCat("start-up failed: ", why.message());
    if (exit_code != 0) spdlog::error("cluster {}", reason);
  } else {
    runtime.SetPhase("running");
    const int64_t ms = absl::ToInt64Milliseconds(absl::Now() - ctx.process_start);
    spdlog::info("{} {} tasks passed the start barrier {} ms after the chief started",
                 kClusterReadyLog, service_options.cluster_tasks.size(), ms);
    if (job) {
      absl::Status done = job(ctx, runtime);
      if (runtime.stopped()) {
        absl::Status why = runtime.WaitForStop(absl::ZeroDuration());
        reason = why.ok() ? "shutdown requested" : std::string(why.message());
        if (!why.ok() && !absl::IsCancelled(why)) exit_code = kExitFailure;
      } else if (done.ok()) {
        reason = "job finished";
      } else {
        reason = absl::StrCat("job failed: ", done.message());
        spdlog::error("{}", reason);
        PrintError(ctx.binary, done.message());
        exit_code = kExitFailure;
      }
    } else {
      // No work (a job without train_input): hold the cluster up for
      // --hold_secs.
      absl::Status why = runtime.WaitForStop(ctx.hold);
      if (absl::IsDeadlineExceeded(why) || why.ok()) {
        reason = why.ok() ? "shutdown requested" : "job finished";
      } else {
        reason = std::string(why.message());
        if (!absl::IsCancelled(why)) exit_code = kExitFailure;
      }
    }
  }
  ctx.signals->ClearCallbacks();
  // Preempted: the job is not done; the others exit 1 (and restart).
  service.RequestShutdown(reason, /*job_failed=*/exit_code != kExitOk || ctx.Preempted());
  // A preempted chief must be gone within its pod's grace period, and the
  // others, restarting (Kubernetes' OnFailure), would register again: they
  // were told; wait only briefly.
  const absl::Duration leave_timeout =
      ctx.Preempted() ? std::min(ctx.job.distribution.shutdown_timeout, absl::Seconds(2))
                      : ctx.job.distribution.shutdown_timeout;
  const std::vector<TaskId> stuck = service.WaitUntilAllLeft(self, leave_timeout);
  if (!stuck.empty()) {
    spdlog::warn("tasks still alive after {} s: {}", absl::ToDoubleSeconds(leave_timeout),
                 JoinTasks(stuck));
  } else {
    spdlog::info("every task has left; shutting down");
  }
  if (status_page != nullptr) status_page->Stop();
  // Wake every blocked call before the server drains them.
  service.Stop();
  runtime.Leave(reason);
  return exit_code;
}

}  // namespace estuary
