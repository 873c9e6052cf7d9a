#include "cli/local_launcher.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/cluster.h"
#include "common/cluster_plan.h"
#include "common/exit_codes.h"
#include "common/job_spec.h"
#include "common/subprocess.h"
#include "common/task_runtime.h"

namespace estuary {
namespace {

constexpr int kExitTimeout = 124;
constexpr int kExitInterrupted = 130;

std::string RoleSubdir(const std::string& name) {
  if (name == "worker") return "worker";
  if (name == "ps") return "ps";
  return "server";  // chief, evaluator
}

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

std::string SelfExe(const std::string& argv0) {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) return std::string(buf, static_cast<size_t>(n));
  return argv0;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// What an evaluator logs with each evaluation's metrics (Estimator::Evaluate).
constexpr absl::string_view kEvalResultLog = "saving dict for global step ";
// What a task logs when its metrics / the coordinator's status page listen
// (common/metrics.cc, common/coordination/coordinator.cc).
constexpr absl::string_view kMetricsLog = "metrics at http://";
constexpr absl::string_view kStatusPageLog = "status page: http://";

// The loopback URL of a listener a task logged as "<marker>HOST:PORT/...":
// "http://127.0.0.1:PORT<path>", or "" when the line has none.
std::string LoggedUrl(absl::string_view line, absl::string_view marker, absl::string_view path) {
  const size_t at = line.find(marker);
  if (at == absl::string_view::npos) return "";
  absl::string_view rest = line.substr(at + marker.size());
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return "";
  return absl::StrCat("http://127.0.0.1:", rest.substr(colon + 1), path);
}

// Serialises log lines from the children's reader threads, and keeps the
// evaluator's latest metrics to repeat them at the end.
class LogMux {
 public:
  void Line(const std::string& prefix, const std::string& line) {
    absl::MutexLock l(&mu_);
    std::fprintf(stdout, "%-12s| %s\n", prefix.c_str(), line.c_str());
    std::fflush(stdout);
  }
  void Say(const std::string& line) { Line("estuary", line); }
  void NoteEvaluation(const std::string& task, const std::string& line) {
    const size_t at = absl::string_view(line).find(kEvalResultLog);
    if (at == std::string::npos) return;
    absl::MutexLock l(&mu_);
    last_eval_ = absl::StrCat("final evaluation by ", task, ": global step ",
                              line.substr(at + kEvalResultLog.size()));
  }
  std::string last_eval() {
    absl::MutexLock l(&mu_);
    return last_eval_;
  }

 private:
  absl::Mutex mu_;
  std::string last_eval_ ABSL_GUARDED_BY(mu_);
};

struct Child {
  TaskId task;
  SubprocessOptions start;  // how to (re)start it
  std::unique_ptr<Subprocess> process;
  std::optional<int> exit_code;  // of its latest run, once that ended
  int restarts = 0;
  std::optional<absl::Time> restart_at;  // a restart is due then
};

constexpr absl::Duration kMaxRestartBackoff = absl::Seconds(30);

}  // namespace

std::string FindRoleBinary(const std::string& name, const std::string& bin_dir,
                           const std::string& argv0) {
  std::vector<std::string> candidates;
  if (!bin_dir.empty()) candidates.push_back(absl::StrCat(bin_dir, "/", name));
  if (const char* env = std::getenv("ESTUARY_BIN_DIR"); env != nullptr && *env) {
    candidates.push_back(absl::StrCat(env, "/", name));
  }
  const std::string self = SelfExe(argv0);
  const std::string dir = DirName(self);
  candidates.push_back(absl::StrCat(dir, "/", name));
  candidates.push_back(absl::StrCat(dir, "/../", RoleSubdir(name), "/", name));
  candidates.push_back(absl::StrCat(self, ".runfiles/estuary/", RoleSubdir(name), "/", name));
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* env = std::getenv(var); env != nullptr && *env) {
      candidates.push_back(absl::StrCat(env, "/estuary/", RoleSubdir(name), "/", name));
    }
  }
  for (const std::string& c : candidates) {
    if (Executable(c)) return c;
  }
  return "";
}

int RunLocalCluster(const LocalClusterOptions& options, const std::string& argv0) {
  LogMux log;
  auto fail = [&](int code, const std::string& msg) {
    std::fprintf(stderr, "estuary local: error: %s\n", msg.c_str());
    return code;
  };
  if (options.workers < (options.chief ? 0 : 1) || options.ps < 0) {
    return fail(kExitBadInput, options.chief ? "--workers and --ps must be >= 0"
                                             : "--nochief needs --workers >= 1");
  }
  absl::StatusOr<JobSpec> job = LoadJobSpec(options.job_path);
  if (!job.ok()) return fail(kExitBadInput, std::string(job.status().message()));

  // Reserve every port first; the reservations stay open until the cluster
  // is up so no other process can take them.
  std::vector<PortReservation> ports;
  auto reserve = [&]() -> absl::StatusOr<std::string> {
    absl::StatusOr<PortReservation> r = PortReservation::Reserve();
    if (!r.ok()) return r.status();
    ports.push_back(std::move(*r));
    return absl::StrCat("127.0.0.1:", ports.back().port());
  };
  ClusterSpec::Jobs jobs;
  auto add = [&](absl::string_view type, int n) -> absl::Status {
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<std::string> addr = reserve();
      if (!addr.ok()) return addr.status();
      jobs[std::string(type)][i] = *addr;
    }
    return absl::OkStatus();
  };
  absl::Status st = add(kChief, options.chief ? 1 : 0);
  if (st.ok()) st = add(kWorker, options.workers);
  if (st.ok()) st = add(kPs, options.ps);
  // The evaluator goes into the cluster spec (TF's tf.distribute
  // convention; both are accepted): the chief then knows it from the start
  // and its start barrier and shutdown include it. An evaluator outside the
  // spec could join after a short job has already ended.
  if (st.ok()) st = add(kEvaluator, options.evaluator ? 1 : 0);
  if (!st.ok()) return fail(kExitFailure, std::string(st.message()));
  for (auto it = jobs.begin(); it != jobs.end();) {
    it = it->second.empty() ? jobs.erase(it) : std::next(it);
  }
  TfConfig tf;
  tf.cluster = ClusterSpec(jobs);
  std::vector<TaskId> tasks = tf.cluster.AllTasks();
  tf.task = tasks.front();
  absl::StatusOr<std::string> strategy = ResolveStrategy(*job, tf);
  if (!strategy.ok()) return fail(kExitBadInput, std::string(strategy.status().message()));
  absl::StatusOr<TaskId> coordinator = tf.Coordinator();
  if (!coordinator.ok()) return fail(kExitBadInput, std::string(coordinator.status().message()));

  std::map<std::string, std::string> binaries;
  for (const TaskId& t : tasks) {
    const std::string name = BinaryFor(t);
    if (binaries.count(name)) continue;
    binaries[name] = FindRoleBinary(name, options.bin_dir, argv0);
    if (binaries[name].empty()) {
      return fail(kExitBadInput,
                  absl::StrCat("cannot find the '", name,
                               "' binary (build with `bazel build //...`, or pass --bin_dir)"));
    }
  }

  // A signal or the end of a child wakes the main loop.
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  absl::Mutex sig_mu;
  int signal_received = 0;
  if (options.signals != nullptr) {
    options.signals->OnSignal([&](int signo) {
      {
        absl::MutexLock l(&sig_mu);
        signal_received = signo;
      }
      const uint64_t one = 1;
      (void)!write(wake_fd, &one, sizeof(one));
    });
  }

  if (options.metrics_port_base > 0 &&
      options.metrics_port_base + static_cast<int64_t>(tasks.size()) - 1 > 65535) {
    return fail(kExitBadInput, absl::StrCat("--metrics_port_base=", options.metrics_port_base,
                                            " leaves no port for the last of ", tasks.size(),
                                            " tasks (65535 is the highest)"));
  }
  log.Say(absl::StrFormat("starting %d tasks (strategy %s), job %s", tasks.size(), *strategy,
                          options.job_path));
  if (options.metrics_port_base >= 0 || options.status_port >= 0) {
    log.Say("task -> metrics address (a free port: reported when the task listens)");
    auto address = [](int port, absl::string_view path) {
      return port == 0 ? std::string("a free port")
                       : absl::StrCat("http://127.0.0.1:", port, path);
    };
    for (size_t k = 0; options.metrics_port_base >= 0 && k < tasks.size(); ++k) {
      const int port =
          options.metrics_port_base == 0 ? 0 : options.metrics_port_base + static_cast<int>(k);
      log.Say(absl::StrFormat("  %-12s -> %s", tasks[k].ToString(), address(port, "/metrics")));
    }
    if (options.status_port >= 0) {
      log.Say(absl::StrFormat("  %-12s -> status page %s", coordinator->ToString(),
                              address(options.status_port, "/")));
    }
  }
  const absl::Time launch = absl::Now();
  std::vector<Child> children;
  // Starts (or restarts) a child; logs its pid.
  auto start = [&log](Child& c) -> absl::Status {
    absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Start(c.start);
    if (!p.ok()) return p.status();
    c.process = *std::move(p);
    c.exit_code.reset();
    c.restart_at.reset();
    log.Say(absl::StrCat("started ", c.task.ToString(), " (pid ", c.process->pid(), ")"));
    return absl::OkStatus();
  };
  for (size_t k = 0; k < tasks.size(); ++k) {
    const TaskId& t = tasks[k];
    TfConfig task_tf = tf;
    task_tf.task = t;
    SubprocessOptions so;
    so.argv = {binaries[BinaryFor(t)], absl::StrCat("--job=", options.job_path)};
    if (options.metrics_port_base >= 0) {
      so.argv.push_back(absl::StrCat(
          "--metrics_port=",
          options.metrics_port_base == 0 ? 0 : options.metrics_port_base + static_cast<int>(k)));
    }
    if (t == *coordinator && options.hold_secs > 0) {
      so.argv.push_back(absl::StrCat("--hold_secs=", options.hold_secs));
    }
    if (t == *coordinator && options.status_port >= 0) {
      so.argv.push_back(absl::StrCat("--status_port=", options.status_port));
    }
    so.env["TF_CONFIG"] = task_tf.ToJson();
    const std::string prefix = t.ToString();
    const bool is_coordinator = t == *coordinator;
    const size_t num_tasks = tasks.size();
    const bool is_evaluator = t.type == kEvaluator;
    const bool report_metrics = options.metrics_port_base == 0;
    const bool report_status = is_coordinator && options.status_port == 0;
    so.on_line = [&log, prefix, is_coordinator, is_evaluator, launch, num_tasks, report_metrics,
                  report_status](const std::string& line, bool) {
      log.Line(prefix, line);
      if (is_evaluator) log.NoteEvaluation(prefix, line);
      if (report_metrics) {
        if (std::string url = LoggedUrl(line, kMetricsLog, "/metrics"); !url.empty()) {
          log.Say(absl::StrCat("metrics of ", prefix, ": ", url));
        }
      }
      if (report_status) {
        if (std::string url = LoggedUrl(line, kStatusPageLog, "/"); !url.empty()) {
          log.Say(absl::StrCat("status page of ", prefix, ": ", url));
        }
      }
      // The coordinator logs this right after the start barrier; the pipe
      // delivers it within a millisecond.
      if (is_coordinator && absl::StrContains(line, kClusterReadyLog)) {
        log.Say(absl::StrFormat("cluster up: %d tasks passed the start barrier %.1f ms after launch",
                                num_tasks, absl::ToDoubleMilliseconds(absl::Now() - launch)));
      }
    };
    children.push_back({t, std::move(so), nullptr, std::nullopt});
    if (absl::Status started = start(children.back()); !started.ok()) {
      for (Child& c : children) {
        if (c.process != nullptr) c.process->Signal(SIGKILL);
      }
      return fail(kExitFailure, std::string(started.message()));
    }
  }

  const absl::Time deadline = launch + options.timeout;
  int result = -1;
  std::string stop_reason;
  while (result < 0) {
    std::vector<pollfd> fds;
    fds.push_back({wake_fd, POLLIN, 0});
    absl::Time wake_at = deadline;
    for (Child& c : children) {
      if (!c.exit_code) fds.push_back({c.process->exit_fd(), POLLIN, 0});
      if (c.restart_at) wake_at = std::min(wake_at, *c.restart_at);
    }
    const absl::Time now = absl::Now();
    if (deadline <= now) {
      stop_reason = absl::StrCat("timed out after ", absl::FormatDuration(options.timeout));
      result = kExitTimeout;
      break;
    }
    const int64_t wait_ms = std::min<int64_t>(
        absl::ToInt64Milliseconds(std::max(wake_at - now, absl::ZeroDuration())) + 1, 1 << 30);
    poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
    {
      uint64_t drained;
      (void)!read(wake_fd, &drained, sizeof(drained));
      absl::MutexLock l(&sig_mu);
      if (signal_received != 0) {
        stop_reason = absl::StrCat("interrupted by signal ", signal_received);
        result = kExitInterrupted;
        break;
      }
    }
    for (Child& c : children) {
      if (c.exit_code) continue;
      c.exit_code = c.process->Poll();
      if (!c.exit_code) continue;
      const int code = *c.exit_code;
      (void)c.process->Wait();  // drain its output
      log.Say(absl::StrCat(c.task.ToString(), " exited with code ", code));
      if (code != 0 && options.restart_failed && c.restarts < options.max_restarts) {
        const absl::Duration backoff =
            std::min(options.restart_backoff * (int64_t{1} << std::min(c.restarts, 30)),
                     kMaxRestartBackoff);
        c.restart_at = absl::Now() + backoff;
        continue;
      }
      if (code != 0 && options.restart_failed) {
        log.Say(absl::StrCat(c.task.ToString(), " failed ",
                             c.restarts == 0 ? std::string("once")
                                             : absl::StrCat(c.restarts + 1, " times"),
                             "; not restarting it again (--max_restarts=", options.max_restarts,
                             ")"));
      }
      if (c.task == *coordinator) {
        result = code;
      } else if (code != 0 && result < 0) {
        stop_reason = absl::StrCat("task ", c.task.ToString(), " failed (exit code ", code, ")");
        result = kExitFailure;
      }
    }
    if (result >= 0) break;
    for (Child& c : children) {
      if (!c.restart_at || *c.restart_at > absl::Now()) continue;
      ++c.restarts;
      log.Say(absl::StrCat("restarting ", c.task.ToString(), " (exit code ", *c.exit_code,
                           ", restart ", c.restarts, " of ", options.max_restarts, ")"));
      if (absl::Status started = start(c); !started.ok()) {
        stop_reason = absl::StrCat("cannot restart ", c.task.ToString(), ": ", started.message());
        result = kExitFailure;
        break;
      }
    }
  }
  ports.clear();
  // Let the other tasks finish their clean shutdown, then stop stragglers.
  const bool clean_end = stop_reason.empty();
  if (!clean_end) {
    log.Say(absl::StrCat("stopping the cluster: ", stop_reason));
    for (Child& c : children) {
      if (!c.exit_code) c.process->Signal(SIGTERM);
    }
  }
  const absl::Time grace_end =
      absl::Now() + (clean_end ? job->distribution.shutdown_timeout : absl::Seconds(10));
  for (Child& c : children) {
    if (c.exit_code) continue;
    absl::StatusOr<int> code = c.process->Wait(std::max(grace_end - absl::Now(), absl::ZeroDuration()));
    if (!code.ok()) {
      log.Say(absl::StrCat(c.task.ToString(), " did not exit; killing it"));
      c.process->Signal(SIGKILL);
      code = c.process->Wait();
    }
    c.exit_code = code.ok() ? *code : -1;
    log.Say(absl::StrCat(c.task.ToString(), " exited with code ", *c.exit_code));
  }
  if (options.signals != nullptr) options.signals->ClearCallbacks();
  close(wake_fd);
  int failed = 0;
  for (Child& c : children) failed += (*c.exit_code != 0);
  if (const std::string eval = log.last_eval(); !eval.empty()) log.Say(eval);
  log.Say(absl::StrFormat("done in %.1f s: %d of %d tasks exited 0; result %d",
                          absl::ToDoubleSeconds(absl::Now() - launch),
                          static_cast<int>(children.size()) - failed, children.size(), result));
  return result;
}

}  // namespace estuary
