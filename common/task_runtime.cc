#include "common/task_runtime.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/coordination/types.h"
#include "common/logging.h"
#include "common/rpc.h"
#include "common/status_macros.h"
#include "grpcpp/health_check_service_interface.h"

namespace estuary {
namespace {

std::string Secs(absl::Duration d) { return absl::StrFormat("%.1f s", absl::ToDoubleSeconds(d)); }

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

// How a task's membership ends when the chief shuts the cluster down.
absl::Status ShutdownStatus(bool job_failed, const std::string& reason) {
  if (job_failed) return absl::AbortedError(absl::StrCat("the chief ended the job as failed: ", reason));
  return absl::OkStatus();
}

// "mutual TLS + job token", for the start-up log line.
std::string SecuritySummary(const SecurityPtr& s) {
  const bool tls = s != nullptr && s->tls();
  const bool token = s != nullptr && s->has_token();
  if (tls && token) return "mutual TLS + job token";
  if (tls) return "mutual TLS";
  if (token) return "job token, no TLS";
  return "no TLS, no job token";
}

// A registration that never got through the transport: say what the
// security settings make likely (gRPC's own message is a bare
// "failed to connect" / "Socket closed").
absl::Status WithSecurityHint(const absl::Status& s, const SecurityPtr& security) {
  if (!absl::IsUnavailable(s) && !absl::IsDeadlineExceeded(s)) return s;
  const std::string hint =
      security != nullptr && security->tls()
          ? "TLS is on here: the chief must serve TLS with a certificate of this job's CA "
            "(security.ca) naming the host dialed, and accept this task's certificate"
          : "TLS is off here: if the chief's port is open but gRPC cannot talk to it, the "
            "chief probably requires TLS (security in its job file)";
  return absl::Status(s.code(), absl::StrCat(s.message(), " (", hint, ")"));
}

}  // namespace

class TaskRuntime::StatusService final : public task::TaskService::Service {
 public:
  explicit StatusService(TaskRuntime* rt) : rt_(rt) {}
  grpc::Status GetTaskStatus(grpc::ServerContext* ctx, const task::GetTaskStatusRequest*,
                             task::TaskStatus* resp) override {
    if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
    resp->set_type(rt_->task_.type);
    resp->set_index(rt_->task_.index);
    resp->set_pid(getpid());
    resp->set_binary(rt_->options_.binary);
    resp->set_uptime_secs(absl::ToDoubleSeconds(absl::Now() - rt_->started_));
    absl::MutexLock l(&rt_->mu_);
    resp->set_phase(rt_->phase_);
    resp->set_incarnation(rt_->incarnation_);
    return grpc::Status::OK;
  }

 private:
  TaskRuntime* const rt_;
};

int ExitCodeFor(const absl::Status& stop_reason) {
  if (stop_reason.ok() || absl::IsCancelled(stop_reason)) return 0;
  return 1;
}

TaskRuntime::TaskRuntime(TaskRuntimeOptions options, TaskId task)
    : options_(std::move(options)), task_(std::move(task)) {}

absl::StatusOr<std::unique_ptr<TaskRuntime>> TaskRuntime::Create(TaskRuntimeOptions options) {
  ASSIGN_OR_RETURN(TaskId coordinator, options.tf_config.Coordinator());
  ASSIGN_OR_RETURN(std::string coordinator_address,
                   options.tf_config.cluster.Address(coordinator));
  TaskId task = options.tf_config.task;
  std::unique_ptr<TaskRuntime> rt(new TaskRuntime(std::move(options), task));
  const TaskRuntimeOptions& opts = rt->options_;

  absl::StatusOr<std::string> own = opts.tf_config.OwnAddress();
  std::string listen = opts.listen_address;
  if (listen.empty()) listen = own.ok() ? ListenAddressFor(*own) : "0.0.0.0:0";

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  ServerOptions server_options;
  server_options.listen_address = listen;
  server_options.security = opts.security;
  server_options.what = absl::StrCat("gRPC server of ", task.ToString());
  ConfigureServerBuilder(&builder, server_options, &rt->port_);
  rt->status_service_ = std::make_unique<StatusService>(rt.get());
  builder.RegisterService(rt->status_service_.get());
  for (grpc::Service* s : opts.services) builder.RegisterService(s);
  for (const LiveReport::Edit& source : opts.report_sources) rt->report_.AddSource(source);
  rt->server_ = builder.BuildAndStart();
  if (rt->server_ == nullptr || rt->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("task ", task.ToString(), " cannot listen on ",
                                               listen, " (is the port in use?)"));
  }
  if (own.ok()) {
    rt->address_ = *own;
  } else {
    // Outside the cluster spec: a specific listen IP is reachable as such;
    // a wildcard is reached through the host name.
    std::string host = listen.substr(0, listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]") host = HostName();
    rt->address_ = absl::StrCat(host, ":", rt->port_);
  }
  spdlog::info("serving gRPC on {} (cluster address {}; {})", listen, rt->address_,
               SecuritySummary(opts.security));

  {
    absl::MutexLock l(&rt->mu_);
    rt->incarnation_ = NewIncarnation();
    rt->coordinator_address_ = coordinator_address;
    ChannelOptions channel;
    channel.security = opts.security;
    rt->client_ = std::make_unique<CoordinationClient>(
        CreateChannel(coordinator_address, channel), task, rt->incarnation_,
        absl::StrCat(coordinator.ToString(), " at ", coordinator_address));
  }
  return rt;
}

absl::Status TaskRuntime::WaitForCoordinatorPort(absl::Time deadline) {
  // A refused connect costs microseconds, so probing often while a cluster
  // starts is cheap; the interval bounds how late a task notices its chief.
  // After a while (a chief started by hand, a pod not scheduled yet) probe
  // less often.
  constexpr absl::Duration kProbeTimeout = absl::Milliseconds(200);
  constexpr absl::Duration kFastPhase = absl::Seconds(2);
  const absl::Time start = absl::Now();
  absl::Duration interval = absl::Milliseconds(1);
  TcpProbe probe(coordinator_address_);
  while (true) {
    const absl::Status st = probe.Probe(std::min(kProbeTimeout, deadline - absl::Now()));
    if (st.ok()) return absl::OkStatus();
    // Only "nobody listens (yet)" is worth waiting for; a malformed address
    // stays malformed.
    if (!absl::IsUnavailable(st)) return st;
    const absl::Duration cap =
        absl::Now() - start < kFastPhase ? absl::Milliseconds(5) : absl::Milliseconds(50);
    interval = std::min(cap, interval * 2);
    const absl::Time next = std::min(deadline, absl::Now() + interval);
    absl::MutexLock l(&mu_);
    // The wait is the probe's clock; Stop() ends it.
    if (mu_.AwaitWithDeadline(absl::Condition(&stop_), next)) {
      return absl::CancelledError(absl::StrCat("stopped while waiting for ",
                                               client_->coordinator()));
    }
    if (absl::Now() >= deadline) {
      return CoordinatorUnreachableError(client_->coordinator(), absl::Now() - start);
    }
  }
}

absl::Status TaskRuntime::Join() {
  const absl::Time deadline = absl::Now() + options_.timing.startup_timeout;
  RETURN_IF_ERROR(WaitForCoordinatorPort(deadline));
  absl::StatusOr<coordination::RegisterTaskResponse> registered =
      client_->Register(address_, deadline);
  if (!registered.ok()) return WithSecurityHint(registered.status(), options_.security);
  coordination::RegisterTaskResponse reg = *std::move(registered);
  leader_incarnation_ = reg.leader_incarnation();
  heartbeat_interval_ = absl::Milliseconds(reg.heartbeat_interval_ms());
  heartbeat_timeout_ = absl::Milliseconds(reg.heartbeat_timeout_ms());
  spdlog::info("registered with {} (incarnation {:x})", client_->coordinator(), incarnation_);
  absl::MutexLock l(&mu_);
  if (left_) return absl::CancelledError("task left before joining");
  joined_ = true;
  heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  watcher_ = std::thread([this] { WatchLoop(); });
  return absl::OkStatus();
}

TaskRuntime::~TaskRuntime() { Leave("task runtime destroyed"); }

absl::Status TaskRuntime::StartBarrier() {
  return client_->Barrier(kStartBarrier, /*participants=*/{},
                          absl::Now() + options_.timing.startup_timeout);
}

bool TaskRuntime::StopLocked(absl::Status why) {
  if (stop_) return false;
  stop_ = true;
  stop_reason_ = std::move(why);
  return true;
}

void TaskRuntime::Stop(absl::Status why) {
  absl::MutexLock l(&mu_);
  if (StopLocked(std::move(why)) && client_ != nullptr) client_->CancelBlockingCalls();
}

void TaskRuntime::SetPhase(const std::string& phase) {
  absl::MutexLock l(&mu_);
  phase_ = phase;
}

bool TaskRuntime::stopped() const {
  absl::MutexLock l(&mu_);
  return stop_;
}

absl::Status TaskRuntime::WaitForStop(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  if (!mu_.AwaitWithTimeout(absl::Condition(&stop_), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat("task ", task_.ToString(), " still running after ", Secs(timeout)));
  }
  return stop_reason_;
}

void TaskRuntime::HeartbeatLoop() {
  absl::Time last_ok = absl::Now();
  std::string last_error;
  absl::MutexLock l(&mu_);
  // The timed wait is the heartbeat clock; threads_done_ ends the loop.
  while (!mu_.AwaitWithTimeout(absl::Condition(&threads_done_), heartbeat_interval_)) {
    const std::string phase = phase_;
    mu_.Unlock();
    coordination::TaskReport report = report_.Snapshot();
    report.set_phase(phase);
    report.set_uptime_secs(absl::ToDoubleSeconds(absl::Now() - started_));
    absl::StatusOr<coordination::HeartbeatResponse> r = client_->Heartbeat(
        absl::Now() + std::max(heartbeat_interval_, absl::Milliseconds(200)), &report);
    const absl::Time now = absl::Now();
    mu_.Lock();
    if (stop_) continue;
    bool stopped = false;
    if (r.ok()) {
      last_ok = now;
      if (r->leader_incarnation() != leader_incarnation_) {
        stopped = StopLocked(absl::AbortedError(absl::StrCat(
            "the chief restarted (leader incarnation ", absl::Hex(leader_incarnation_), " -> ",
            absl::Hex(r->leader_incarnation()), "): this task must restart to rejoin")));
      } else if (r->shutdown_requested()) {
        stopped = StopLocked(ShutdownStatus(r->job_failed(), r->shutdown_reason()));
      }
    } else if (absl::IsAborted(r.status()) || absl::IsFailedPrecondition(r.status())) {
      stopped = StopLocked(absl::AbortedError(r.status().message()));
    } else {
      last_error = std::string(r.status().message());
      if (now - last_ok > heartbeat_timeout_) {
        stopped = StopLocked(absl::UnavailableError(
            absl::StrCat("lost the chief ", client_->coordinator(), ": no answer for ",
                         Secs(now - last_ok), " (heartbeat timeout ", Secs(heartbeat_timeout_),
                         "); last error: ", last_error)));
      }
    }
    if (stopped) client_->CancelBlockingCalls();
  }
}

void TaskRuntime::WatchLoop() {
  uint64_t known = 0;
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (threads_done_) return;
    }
    absl::StatusOr<coordination::ClusterState> st =
        client_->WatchCluster(known, std::max(heartbeat_timeout_, absl::Seconds(5)));
    if (st.ok()) {
      LogChanges(*st);
      known = st->version();
      if (st->shutdown_requested()) {
        Stop(ShutdownStatus(st->job_failed(), st->shutdown_reason()));
      }
      continue;
    }
    // The heartbeat decides whether the chief is lost; here just back off.
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&threads_done_), heartbeat_interval_);
  }
}

void TaskRuntime::LogChanges(const coordination::ClusterState& state) {
  absl::MutexLock l(&mu_);
  const bool first = peers_.empty();
  for (const coordination::TaskInfo& info : state.tasks()) {
    const TaskId t = FromProto(info.task());
    if (t == task_) continue;
    auto it = peers_.find(t);
    if (!first && it != peers_.end()) {
      const coordination::TaskInfo& old = it->second;
      if (old.incarnation() != 0 && old.incarnation() != info.incarnation()) {
        spdlog::warn("peer {} restarted: incarnation {:x} -> {:x}", t.ToString(),
                     old.incarnation(), info.incarnation());
      } else if (old.state() != info.state() && info.state() == coordination::TASK_DEAD) {
        spdlog::warn("peer {} is dead: {}", t.ToString(), info.reason());
      }
    }
    peers_[t] = info;
  }
}

void TaskRuntime::Leave(const std::string& reason) {
  absl::Status why;
  bool joined;
  {
    absl::MutexLock l(&mu_);
    if (left_) return;
    left_ = true;
    threads_done_ = true;
    phase_ = "leaving";
    why = stop_reason_;
    joined = joined_;
  }
  if (client_ != nullptr) client_->CancelBlockingCalls();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (watcher_.joinable()) watcher_.join();
  if (joined && !absl::IsUnavailable(why) && !absl::IsAborted(why)) {
    absl::Status st = client_->Disconnect(reason, absl::Now() + absl::Seconds(2));
    if (!st.ok()) spdlog::warn("could not say goodbye to the chief: {}", st.message());
  }
  // Close our connection to the chief first: when the chief is this process,
  // an open but idle self-connection would hold the server's graceful
  // shutdown until its deadline.
  std::unique_ptr<CoordinationClient> client;
  {
    absl::MutexLock l(&mu_);
    client = std::move(client_);
  }
  client.reset();
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server_->Wait();
  }
}

}  // namespace estuary
