// `estuary local` stops every child when a task fails, at the timeout and
// on Ctrl-C, restarts failed tasks under --restart_failed, and returns the
// documented exit codes.
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr absl::Duration kBound = absl::Seconds(60);

// Heartbeats generous enough for a loaded 2-core machine.
std::string Job() {
  return WriteTempFile("launcher_job.json", R"({"model_dir": "/tmp/m",
    "distribution": {"heartbeat_interval_secs": 0.5, "heartbeat_timeout_secs": 5,
                     "startup_timeout_secs": 30, "shutdown_timeout_secs": 10}})");
}

// A bin dir whose worker binary prints an error and exits 3 at once; the
// other role binaries are the real ones.
std::string FailingWorkerBinDir(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  mkdir(dir.c_str(), 0755);
  for (const char* b : {"server/chief", "ps/ps", "server/evaluator"}) {
    const std::string role = std::string(b).substr(std::string(b).find('/') + 1);
    EXPECT_EQ(symlink(Runfile(b).c_str(), absl::StrCat(dir, "/", role).c_str()), 0);
  }
  const std::string worker = WriteTempFile(
      name + "/worker", "#!/bin/sh\necho 'worker: error: simulated crash' >&2\nexit 3\n");
  chmod(worker.c_str(), 0755);
  return dir;
}

// The pid the launcher logged for `task` ("started worker:1 (pid N)"), or 0.
pid_t LoggedPid(Proc& launcher, const std::string& task) {
  const std::string line = launcher.FindLine(absl::StrCat("started ", task, " (pid "));
  const size_t at = line.rfind("(pid ");
  int pid = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(line.substr(at + 5, line.size() - at - 6), &pid)) {
    return 0;
  }
  return pid;
}

TEST(LocalLauncherTest, FailingTaskStopsTheWholeCluster) {
  const std::string dir = FailingWorkerBinDir("bin_failing_worker");
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=1", "--ps=1",
                        absl::StrCat("--bin_dir=", dir), "--hold_secs=60", "--timeout=50"});
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 1) << p->Output();
  EXPECT_TRUE(p->HasLine("stopping the cluster: task worker:0 failed (exit code 3)")) << p->Output();
  EXPECT_TRUE(p->HasLine("simulated crash")) << p->Output();
  EXPECT_FALSE(p->HasLine("restarting")) << p->Output();  // only under --restart_failed
  EXPECT_TRUE(p->HasLine("chief:0 exited with code")) << p->Output();
  EXPECT_TRUE(p->HasLine("ps:0 exited with code")) << p->Output();
}

TEST(LocalLauncherTest, TimeoutStopsEverything) {
  // The timeout is long enough for the cluster to be up first: then every
  // task has its SIGTERM handler, and SIGTERM ends each one cleanly.
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=1", "--ps=1",
                        "--hold_secs=120", "--timeout=10"});
  ASSERT_TRUE(p->WaitForLine("cluster up: 3 tasks", kBound)) << p->Output();
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 124) << p->Output();
  EXPECT_TRUE(p->HasLine("stopping the cluster: timed out after 10s")) << p->Output();
  EXPECT_TRUE(p->HasLine("3 of 3 tasks exited 0; result 124")) << p->Output();
}

// kill -9 of a member while the cluster holds: the launcher restarts it with
// the same TF_CONFIG, the coordinator sees the new incarnation, the new
// process passes the start barrier, and the job still ends with exit 0.
TEST(LocalLauncherTest, RestartFailedBringsAKilledTaskBack) {
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=2", "--ps=0",
                        "--hold_secs=300", "--timeout=250", "--restart_failed",
                        "--restart_backoff_secs=0.1"});
  ASSERT_TRUE(p->WaitForLine("cluster up: 3 tasks", kBound)) << p->Output();
  ASSERT_TRUE(p->WaitForLine("[worker:1] passed the start barrier", kBound)) << p->Output();
  const pid_t worker = LoggedPid(*p, "worker:1");
  const pid_t chief = LoggedPid(*p, "chief:0");
  ASSERT_GT(worker, 0) << p->Output();
  ASSERT_GT(chief, 0) << p->Output();
  ASSERT_EQ(kill(worker, SIGKILL), 0);
  ASSERT_TRUE(p->WaitForLine("restarting worker:1 (exit code 137, restart 1 of 3)", kBound))
      << p->Output();
  ASSERT_TRUE(p->WaitForLine("task worker:1 restarted: incarnation", kBound)) << p->Output();
  ASSERT_TRUE(p->WaitForLines("[worker:1] passed the start barrier", 2, kBound)) << p->Output();
  EXPECT_NE(LoggedPid(*p, "worker:1"), 0);
  // SIGTERM makes the chief end the job: every task, the new worker:1
  // included, leaves cleanly and the launcher returns the chief's 0.
  ASSERT_EQ(kill(chief, SIGTERM), 0);
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 0) << p->Output();
  EXPECT_TRUE(p->HasLine("worker:1 exited with code 137")) << p->Output();
  EXPECT_TRUE(p->WaitForLines("started worker:1 (pid", 2, absl::ZeroDuration())) << p->Output();
  EXPECT_FALSE(p->WaitForLines("restarting", 2, absl::ZeroDuration())) << p->Output();
  EXPECT_TRUE(p->HasLine("3 of 3 tasks exited 0; result 0")) << p->Output();
}

// A task that keeps failing is restarted --max_restarts times, then fails
// the cluster as without the flag.
TEST(LocalLauncherTest, RestartsAreBounded) {
  const std::string dir = FailingWorkerBinDir("bin_always_failing_worker");
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=1", "--ps=0",
                        absl::StrCat("--bin_dir=", dir), "--hold_secs=60", "--timeout=50",
                        "--restart_failed", "--max_restarts=2", "--restart_backoff_secs=0.05"});
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 1) << p->Output();
  EXPECT_TRUE(p->HasLine("restarting worker:0 (exit code 3, restart 1 of 2)")) << p->Output();
  EXPECT_TRUE(p->HasLine("restarting worker:0 (exit code 3, restart 2 of 2)")) << p->Output();
  EXPECT_FALSE(p->HasLine("restart 3 of")) << p->Output();
  EXPECT_TRUE(p->HasLine("worker:0 failed 3 times; not restarting it again (--max_restarts=2)"))
      << p->Output();
  EXPECT_TRUE(p->WaitForLines("simulated crash", 3, absl::ZeroDuration())) << p->Output();
  EXPECT_FALSE(p->WaitForLines("simulated crash", 4, absl::ZeroDuration())) << p->Output();
  EXPECT_TRUE(p->HasLine("stopping the cluster: task worker:0 failed (exit code 3)")) << p->Output();
}

TEST(LocalLauncherTest, InterruptStopsEveryChildCleanly) {
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=2", "--ps=1",
                        "--evaluator", "--hold_secs=60", "--timeout=50"});
  ASSERT_TRUE(p->WaitForLine("cluster up: 5 tasks", kBound)) << p->Output();
  // The coordinator's line and the evaluator's own can arrive in either
  // order; wait for the evaluator's too.
  ASSERT_TRUE(p->WaitForLine("[evaluator:0] passed the start barrier", kBound)) << p->Output();
  p->Signal(SIGINT);
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 130) << p->Output();
  EXPECT_TRUE(p->HasLine("stopping the cluster: interrupted by signal 2")) << p->Output();
  // SIGTERM makes the chief end the job, so every task leaves cleanly.
  EXPECT_TRUE(p->HasLine("5 of 5 tasks exited 0")) << p->Output();
}

// The URL the launcher reported in "<what> of <task>: http://...".
std::string ReportedUrl(Proc& launcher, const std::string& what, const std::string& task) {
  const std::string marker = absl::StrCat(what, " of ", task, ": ");
  const std::string line = launcher.FindLine(marker);
  const size_t at = line.find(marker);
  return at == std::string::npos ? "" : line.substr(at + marker.size());
}

// GET `url` ("http://127.0.0.1:PORT/path"): the body, or "" on failure.
std::string HttpGet(const std::string& url) {
  const std::string rest = url.substr(std::string("http://").size());
  const size_t slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  int port = 0;
  if (!absl::SimpleAtoi(hostport.substr(hostport.rfind(':') + 1), &port)) return "";
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(10);
  client.set_read_timeout(30);
  httplib::Result r = client.Get(rest.substr(slash).c_str());
  return r && r->status == 200 ? r->body : "";
}

// --metrics_port_base=0 and --status_port=0: every task binds a free port,
// the launcher reports where, and those addresses serve each task's own
// metrics and the coordinator's status page.
TEST(LocalLauncherTest, ReportsTheMetricsAndStatusAddressesTheTasksChose) {
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=1", "--ps=1",
                        "--metrics_port_base=0", "--status_port=0", "--hold_secs=120",
                        "--timeout=100"});
  ASSERT_TRUE(p->WaitForLine("cluster up: 3 tasks", kBound)) << p->Output();
  EXPECT_TRUE(p->HasLine("task -> metrics address")) << p->Output();
  EXPECT_TRUE(p->HasLine("  worker:0     -> a free port")) << p->Output();
  EXPECT_TRUE(p->HasLine("  chief:0      -> status page a free port")) << p->Output();
  for (const auto& [task, type, index] :
       {std::tuple<std::string, std::string, std::string>{"chief:0", "chief", "0"},
        {"worker:0", "worker", "0"},
        {"ps:0", "ps", "0"}}) {
    ASSERT_TRUE(p->WaitForLine(absl::StrCat("metrics of ", task, ": http://127.0.0.1:"), kBound))
        << p->Output();
    const std::string text = HttpGet(ReportedUrl(*p, "metrics", task));
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("job=\"", type, "\"")) &&
                absl::StrContains(text, absl::StrCat("task=\"", index, "\"")))
        << task << ":\n" << text;
    EXPECT_TRUE(absl::StrContains(text, "estuary_")) << task << ":\n" << text;
  }
  ASSERT_TRUE(p->WaitForLine("status page of chief:0: http://127.0.0.1:", kBound)) << p->Output();
  const std::string status = HttpGet(ReportedUrl(*p, "status page", "chief:0") + "status.json");
  EXPECT_TRUE(absl::StrContains(status, "\"worker\"")) << status;
  p->Signal(SIGINT);
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 130) << p->Output();
}

TEST(LocalLauncherTest, BadJobIsExit2) {
  const std::string job = WriteTempFile("bad_launcher_job.json", R"({"model_dir": "m", "oops": 1})");
  auto p = Proc::Start({Runfile("cli/estuary"), "local", job});
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  EXPECT_TRUE(p->HasLine("estuary local: error: ")) << p->Output();
  EXPECT_TRUE(p->HasLine("$.oops: unknown key")) << p->Output();
}

}  // namespace
}  // namespace estuary::testing
