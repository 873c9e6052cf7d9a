#include "cli/status_command.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/cluster.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/job_config.h"
#include "common/rpc.h"
#include "common/security.h"
#include "common/status/live_status.h"
#include "common/status_macros.h"
#include "httplib.h"
#include "proto/coordination.grpc.pb.h"

namespace estuary {
namespace {

// Where `estuary status` asks.
struct Target {
  std::string grpc_address;  // host:port of the coordination service
  std::string http_base;     // http://host:port (status page), if given
  std::string what;          // for messages
};

bool IsFile(const std::string& path) {
  std::ifstream in(path);
  return in.good();
}

absl::StatusOr<Target> TargetFromTfConfig(const std::string& json, const std::string& source) {
  absl::StatusOr<TfConfig> tf = TfConfigFromEnvironment(json);
  if (!tf.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", tf.status().message()));
  ASSIGN_OR_RETURN(TaskId coordinator, tf->Coordinator());
  ASSIGN_OR_RETURN(std::string address, tf->cluster.Address(coordinator));
  return Target{address, "", absl::StrCat(coordinator.ToString(), " at ", address)};
}

absl::StatusOr<Target> ParseTarget(const std::string& arg) {
  if (arg.empty()) return TargetFromTfConfig("", "$TF_CONFIG");
  if (absl::StartsWith(arg, "https://")) {
    return absl::InvalidArgumentError("the status page is plain HTTP: use http://host:port");
  }
  if (absl::StartsWith(arg, "http://")) {
    std::string base(absl::StripSuffix(arg, "/"));
    base = std::string(absl::StripSuffix(base, "/status.json"));
    return Target{"", base, base};
  }
  if (absl::StartsWith(arg, "{")) return TargetFromTfConfig(arg, "TF_CONFIG argument");
  if (IsFile(arg)) {
    std::ifstream in(arg);
    std::stringstream ss;
    ss << in.rdbuf();
    return TargetFromTfConfig(ss.str(), arg);
  }
  const size_t colon = arg.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(arg.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", arg, "' is neither TF_CONFIG JSON, a file, host:port nor http://host:port"));
  }
  return Target{arg, "", arg};
}

absl::StatusOr<coordination::ClusterStatus> FetchHttp(const Target& t, absl::Duration timeout) {
  httplib::Client client(t.http_base);
  const int64_t us = absl::ToInt64Microseconds(timeout);
  client.set_connection_timeout(us / 1000000, us % 1000000);
  client.set_read_timeout(us / 1000000, us % 1000000);
  httplib::Result res = client.Get("/status.json");
  if (!res) {
    return absl::UnavailableError(absl::StrCat("cannot reach the status page ", t.http_base, ": ",
                                               httplib::to_string(res.error())));
  }
  if (res->status != 200) {
    return absl::UnavailableError(
        absl::StrCat(t.http_base, "/status.json answered HTTP ", res->status, ": ", res->body));
  }
  return StatusFromJson(res->body);
}

absl::StatusOr<coordination::ClusterStatus> FetchGrpc(
    coordination::CoordinationService::Stub* stub, const Target& t, absl::Duration timeout) {
  coordination::GetStatusRequest req;
  coordination::ClusterStatus resp;
  CallOptions options;
  options.deadline = absl::Now() + timeout;
  options.what = absl::StrCat("GetStatus to ", t.what);
  RETURN_IF_ERROR(CallUnary(stub, &coordination::CoordinationService::Stub::GetStatus, req, &resp,
                            options));
  return resp;
}

int Error(absl::string_view msg, int code) {
  std::fprintf(stderr, "estuary status: error: %.*s\n", static_cast<int>(msg.size()), msg.data());
  return code;
}

// The client side of a secured cluster from `file`: a job file (its
// "security" block) or the block alone (`estuary certs`' security.json).
// The CA and the job token are the job's; the certificate is the tools'
// client certificate (client.crt / client.key beside the task certificates
// when they are a directory, else --client_cert / --client_key).
absl::StatusOr<SecurityPtr> LoadClientSecurity(const std::string& file, std::string cert,
                                               std::string key) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --security file ", file));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  }
  const bool job_file = doc.contains("security");
  const std::string base_dir = file.find('/') == std::string::npos
                                   ? std::string(".")
                                   : file.substr(0, file.rfind('/'));
  ASSIGN_OR_RETURN(SecurityConfig config,
                   ParseSecurityConfig(job_file ? doc["security"] : doc,
                                       job_file ? JsonPath{file}.Key("security") : JsonPath{file},
                                       base_dir));
  if (config.tls()) {
    if (cert.empty() && !config.cert.empty() && config.cert.back() == '/') {
      cert = config.cert + "client.crt";
    }
    if (key.empty() && !config.key.empty() && config.key.back() == '/') {
      key = config.key + "client.key";
    }
    if (cert.empty() || key.empty()) {
      return absl::InvalidArgumentError(
          "the job uses TLS: give the tools' client certificate with --client_cert and "
          "--client_key (`estuary certs` writes client.crt / client.key)");
    }
    config.cert = cert;
    config.key = key;
  }
  return LoadTaskSecurity(config, TaskId{kToolsClientType, 0});
}

}  // namespace

int StatusCommand(int argc, char** argv, SignalWatcher* signals) {
  bool watch = false, json = false;
  double interval_secs = 2, timeout_secs = 5;
  FlagSet flags(
      "estuary status [TF_CONFIG | FILE | host:port | http://host:port] [--watch]",
      "Prints the live view of a running cluster as a table: every task's state, incarnation, "
      "restarts, global step, steps/s, examples/s, loss, step-phase split (input wait / "
      "compute / communication / apply, ms per step), PS shard size, last checkpoint and "
      "evaluation. It asks the coordinator (the chief; worker:0 without one) over gRPC at the "
      "address TF_CONFIG gives it (the argument: JSON or a file; none: $TF_CONFIG) or at "
      "host:port, or reads an http:// status page's /status.json (chief --status_port).\n"
      "Exit codes: 0 ok, 1 the chief could not be reached, 2 bad input.");
  flags.Bool("watch", &watch, "Redraw every --interval seconds until Ctrl-C.");
  flags.Double("interval", &interval_secs, "Seconds between redraws with --watch.");
  flags.Double("timeout", &timeout_secs, "Deadline of each request, in seconds.");
  flags.Bool("json", &json, "Print the status as JSON (the page's /status.json) instead.");
  std::string security_file, client_cert, client_key;
  flags.String("security", &security_file,
               "For a secured cluster: the job file, or `estuary certs`' security.json: its CA "
               "and job token secure the call.");
  flags.String("client_cert", &client_cert,
               "With --security and TLS: the client certificate (default: client.crt in the "
               "job's certificate directory).");
  flags.String("client_key", &client_key, "Its key (default: client.key beside it).");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && flags.positional().size() > 1) {
    st = absl::InvalidArgumentError("expected at most one TF_CONFIG or address");
  }
  if (st.ok() && !(interval_secs > 0)) st = absl::InvalidArgumentError("--interval must be > 0");
  if (st.ok() && !(timeout_secs > 0)) st = absl::InvalidArgumentError("--timeout must be > 0");
  if (!st.ok()) return Error(absl::StrCat(st.message(), " (see --help)"), kExitBadInput);
  absl::StatusOr<Target> target =
      ParseTarget(flags.positional().empty() ? "" : flags.positional()[0]);
  if (!target.ok()) return Error(target.status().message(), kExitBadInput);

  ChannelOptions channel;
  if (!security_file.empty()) {
    absl::StatusOr<SecurityPtr> security =
        LoadClientSecurity(security_file, client_cert, client_key);
    if (!security.ok()) return Error(security.status().message(), kExitBadInput);
    channel.security = *std::move(security);
  }
  std::unique_ptr<coordination::CoordinationService::Stub> stub;
  if (!target->grpc_address.empty()) {
    stub = coordination::CoordinationService::NewStub(
        CreateChannel(target->grpc_address, channel));
  }
  const absl::Duration timeout = absl::Seconds(timeout_secs);
  auto fetch = [&]() {
    return stub != nullptr ? FetchGrpc(stub.get(), *target, timeout)
                           : FetchHttp(*target, timeout);
  };
  auto render = [&](const coordination::ClusterStatus& s) {
    return json ? StatusToJson(s) + "\n" : FormatStatusTable(s);
  };
  if (!watch) {
    absl::StatusOr<coordination::ClusterStatus> s = fetch();
    if (!s.ok()) return Error(s.status().message(), kExitFailure);
    std::printf("%s", render(*s).c_str());
    return kExitOk;
  }
  absl::Notification stop;
  signals->OnSignal([&stop](int) {
    if (!stop.HasBeenNotified()) stop.Notify();
  });
  while (!stop.HasBeenNotified()) {
    absl::StatusOr<coordination::ClusterStatus> s = fetch();
    // Home the cursor and clear the screen, then draw.
    std::printf("\033[H\033[2J%s (every %.3g s, Ctrl-C to stop)\n\n%s", target->what.c_str(),
                interval_secs,
                s.ok() ? render(*s).c_str()
                       : absl::StrCat("error: ", s.status().message(), "\n").c_str());
    std::fflush(stdout);
    // The wait is the redraw clock; a signal ends it.
    stop.WaitForNotificationWithTimeout(absl::Seconds(interval_secs));
  }
  signals->ClearCallbacks();
  return kExitOk;
}

}  // namespace estuary
