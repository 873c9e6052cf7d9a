#include "common/role_main.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/cluster_plan.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/logging.h"
#include "common/security.h"

namespace estuary {

void PrintError(const std::string& binary, absl::string_view message) {
  std::fprintf(stderr, "%s: error: %.*s\n", binary.c_str(), static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
}

int RoleMain(int argc, char** argv, const RoleDescription& role,
             const std::function<int(const RoleContext&)>& run) {
  RoleContext ctx;
  ctx.process_start = absl::Now();
  ctx.binary = role.binary;
  // Before any thread starts: SIGINT/SIGTERM go to the watcher thread.
  absl::StatusOr<std::unique_ptr<SignalWatcher>> signals = SignalWatcher::Start();
  if (!signals.ok()) {
    PrintError(role.binary, signals.status().message());
    return kExitFailure;
  }
  ctx.signals = signals->get();

  std::string job_path, tf_config_json;
  double hold_secs = 0;
  int metrics_port = kMetricsOff;
  FlagSet flags(
      absl::StrCat(role.binary, " --job=JOB.json [flags]"),
      absl::StrCat(role.description,
                   "\n\nThe cluster and this process's task come from the TF_CONFIG "
                   "environment variable (or --tf_config), as in TensorFlow; task types "
                   "accepted: ",
                   absl::StrJoin(role.task_types, ", "),
                   ".\nExit codes: 0 done, 1 failed at run time, 2 bad input or chief "
                   "unreachable."));
  flags.String("job", &job_path, "Job file (JSON): model, inputs, run config, distribution.");
  flags.String("tf_config", &tf_config_json, "TF_CONFIG JSON; overrides the environment.");
  flags.String("listen", &ctx.listen_address,
               "Address to serve on (default: this task's cluster address; an evaluator "
               "outside the cluster picks a free port).");
  flags.Int("status_port", &ctx.status_port,
            "Coordinator only: serve the cluster's status page (HTML, /status.json) on this "
            "HTTP port; 0 picks a free one (logged); -1 (default): no page (`estuary status` "
            "still asks the chief over gRPC).");
  flags.Double("hold_secs", &hold_secs,
               "Coordinator only: keep the cluster up this long after start-up before "
               "shutting it down (SIGTERM or a shutdown request ends it sooner).");
  std::string on_sigterm = "end_job";
  flags.String("on_sigterm", &on_sigterm,
               "end_job: SIGTERM to the chief ends the job and every task exits 0 (a local "
               "run's Ctrl-C). preempt: the pod is being taken away (Kubernetes): the chief "
               "saves a checkpoint and fails the cluster so every task restarts, and a task "
               "that got the signal exits 128 + signal (143).");
  flags.Int("metrics_port", &metrics_port,
            "Serve Prometheus metrics at http://0.0.0.0:PORT/metrics (0: a free port, "
            "logged as \"metrics at ...\"; -1: off).");
  absl::Status st = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && job_path.empty() && flags.positional().size() == 1) {
    job_path = flags.positional()[0];
  } else if (st.ok() && !flags.positional().empty()) {
    st = absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", flags.positional()[0], "'"));
  }
  if (st.ok() && job_path.empty()) st = absl::InvalidArgumentError("--job is required");
  if (st.ok() && on_sigterm != "end_job" && on_sigterm != "preempt") {
    st = absl::InvalidArgumentError(
        absl::StrCat("--on_sigterm: '", on_sigterm, "' is not end_job or preempt"));
  }
  ctx.preempt_on_sigterm = on_sigterm == "preempt";
  if (!st.ok()) {
    PrintError(role.binary, absl::StrCat(st.message(), " (see --help)"));
    return kExitBadInput;
  }
  ctx.hold = absl::Seconds(hold_secs);

  absl::StatusOr<TfConfig> tf = TfConfigFromEnvironment(tf_config_json);
  if (!tf.ok()) {
    PrintError(role.binary, tf.status().message());
    return kExitBadInput;
  }
  if (tf->cluster.empty()) {
    PrintError(role.binary, "TF_CONFIG has no cluster: role binaries run in a cluster "
                            "(use `estuary train` for one process)");
    return kExitBadInput;
  }
  if (std::find(role.task_types.begin(), role.task_types.end(), tf->task.type) ==
      role.task_types.end()) {
    PrintError(role.binary,
               absl::StrCat("TF_CONFIG task.type is '", tf->task.type, "' but this is the ",
                            role.binary, " binary (it runs: ",
                            absl::StrJoin(role.task_types, ", "), ")"));
    return kExitBadInput;
  }
  if (absl::Status c = tf->Coordinator().status(); !c.ok()) {
    PrintError(role.binary, c.message());
    return kExitBadInput;
  }
  ctx.tf_config = *std::move(tf);

  absl::StatusOr<JobSpec> job = LoadJobSpec(job_path);
  if (!job.ok()) {
    PrintError(role.binary, job.status().message());
    return kExitBadInput;
  }
  ctx.job = *std::move(job);
  absl::StatusOr<SecurityPtr> security = LoadTaskSecurity(ctx.job.security, ctx.tf_config.task);
  if (!security.ok()) {
    PrintError(role.binary, absl::StrCat(ctx.job.source, ": ", security.status().message()));
    return kExitBadInput;
  }
  ctx.security = *std::move(security);
  if (absl::StatusOr<std::string> strategy = ResolveStrategy(ctx.job, ctx.tf_config);
      !strategy.ok()) {
    PrintError(role.binary, strategy.status().message());
    return kExitBadInput;
  }

  InitLogging(ctx.tf_config.task.ToString());
  // Metrics only when served: without them no hook, PS or evaluator
  // metrics are collected (the cost stays zero).
  std::unique_ptr<TaskMetrics> metrics;
  if (metrics_port != kMetricsOff) {
    MetricsOptions metrics_options;
    metrics_options.job = ctx.tf_config.task.type;
    metrics_options.task = absl::StrCat(ctx.tf_config.task.index);
    metrics_options.port = metrics_port;
    absl::StatusOr<std::unique_ptr<TaskMetrics>> created = TaskMetrics::Create(metrics_options);
    if (!created.ok()) {
      PrintError(role.binary, created.status().message());
      return kExitBadInput;
    }
    metrics = *std::move(created);
    ctx.metrics = metrics.get();
  }
  const int code = run(ctx);
  if (ctx.Preempted() && code != kExitBadInput) {
    const int signo = ctx.signals->received();
    spdlog::info("preempted by signal {}: exiting {}", signo, 128 + signo);
    return 128 + signo;
  }
  return code;
}

TaskRuntimeOptions RuntimeOptionsFor(const RoleContext& ctx) {
  TaskRuntimeOptions o;
  o.tf_config = ctx.tf_config;
  o.timing = ctx.job.distribution;
  o.listen_address = ctx.listen_address;
  o.binary = ctx.binary;
  o.security = ctx.security;
  return o;
}

std::unique_ptr<TaskRuntime> JoinCluster(const RoleContext& ctx, TaskRuntimeOptions options,
                                         int* exit_code) {
  absl::StatusOr<std::unique_ptr<TaskRuntime>> rt = TaskRuntime::Create(std::move(options));
  absl::Status st = rt.status();
  if (rt.ok()) {
    TaskRuntime* runtime = rt->get();
    ctx.signals->OnSignal([runtime](int signo) {
      runtime->Stop(absl::CancelledError(absl::StrCat("received signal ", signo)));
    });
    st = runtime->Join();
    if (st.ok()) return *std::move(rt);
    ctx.signals->ClearCallbacks();
    if (runtime->stopped()) {
      spdlog::info("leaving before joining: {}", runtime->WaitForStop(absl::ZeroDuration()).message());
      *exit_code = kExitOk;
      return nullptr;
    }
  }
  spdlog::error("could not join the cluster: {}", st.message());
  PrintError(ctx.binary, st.message());
  *exit_code = kExitBadInput;
  return nullptr;
}

int RunMember(const RoleContext& ctx, const RoleJob& job, RoleServices extra) {
  int exit_code = kExitOk;
  TaskRuntimeOptions options = RuntimeOptionsFor(ctx);
  for (grpc::Service* service : extra.services) options.services.push_back(service);
  if (extra.report_source) options.report_sources.push_back(extra.report_source);
  std::unique_ptr<TaskRuntime> rt = JoinCluster(ctx, std::move(options), &exit_code);
  if (rt == nullptr) return exit_code;
  TaskRuntime& runtime = *rt;
  absl::Status st = runtime.StartBarrier();
  if (!st.ok() && !runtime.stopped()) {
    spdlog::error("start-up failed: {}", st.message());
    ctx.signals->ClearCallbacks();
    runtime.Leave(absl::StrCat("start-up failed: ", st.message()));
    return kExitFailure;
  }
  if (st.ok()) {
    runtime.SetPhase("running");
    if (!job) {
      spdlog::info("passed the start barrier; waiting for work from the chief");
    } else {
      absl::Status done = job(ctx, runtime);
      if (!done.ok() && !runtime.stopped()) {
        spdlog::error("failed: {}", done.message());
        PrintError(ctx.binary, done.message());
        ctx.signals->ClearCallbacks();
        runtime.Leave(std::string(done.message()));
        return kExitFailure;
      }
      if (done.ok()) spdlog::info("work done; waiting for the chief to end the job");
    }
  }
  // Returns at once if the task was stopped during start-up.
  absl::Status why = runtime.WaitForStop();
  ctx.signals->ClearCallbacks();
  if (why.ok()) {
    spdlog::info("leaving: the chief ended the job");
  } else if (absl::IsCancelled(why)) {
    spdlog::info("leaving: {}", why.message());
  } else {
    spdlog::error("leaving: {}", why.message());
  }
  runtime.Leave(why.ok() ? "job finished" : std::string(why.message()));
  return ExitCodeFor(why);
}

}  // namespace estuary
