// `estuary local` stops every child when a task fails, at the timeout and
// on Ctrl-C, and returns the documented exit codes.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr absl::Duration kBound = absl::Seconds(60);

std::string Job() {
  return WriteTempFile("launcher_job.json", R"({"model_dir": "/tmp/m",
    "distribution": {"heartbeat_interval_secs": 0.1, "heartbeat_timeout_secs": 1,
                     "startup_timeout_secs": 30, "shutdown_timeout_secs": 10}})");
}

TEST(LocalLauncherTest, FailingTaskStopsTheWholeCluster) {
  // A bin dir whose worker binary fails at once; the others are real.
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/bin_failing_worker");
  mkdir(dir.c_str(), 0755);
  for (const char* b : {"server/chief", "ps/ps", "server/evaluator"}) {
    const std::string name = std::string(b).substr(std::string(b).find('/') + 1);
    ASSERT_EQ(symlink(Runfile(b).c_str(), absl::StrCat(dir, "/", name).c_str()), 0);
  }
  const std::string worker = WriteTempFile("bin_failing_worker/worker",
                                           "#!/bin/sh\necho 'worker: error: simulated crash' >&2\nexit 3\n");
  chmod(worker.c_str(), 0755);
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=1", "--ps=1",
                        absl::StrCat("--bin_dir=", dir), "--hold_secs=60", "--timeout=50"});
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 1) << p->Output();
  EXPECT_TRUE(p->HasLine("stopping the cluster: task worker:0 failed (exit code 3)")) << p->Output();
  EXPECT_TRUE(p->HasLine("simulated crash")) << p->Output();
  EXPECT_TRUE(p->HasLine("chief:0 exited with code")) << p->Output();
  EXPECT_TRUE(p->HasLine("ps:0 exited with code")) << p->Output();
}

TEST(LocalLauncherTest, TimeoutStopsEverything) {
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=1", "--ps=1",
                        "--hold_secs=60", "--timeout=3"});
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 124) << p->Output();
  EXPECT_TRUE(p->HasLine("stopping the cluster: timed out after 3s")) << p->Output();
  EXPECT_TRUE(p->HasLine("0 of 3 tasks exited 0") || p->HasLine("3 of 3 tasks exited 0"))
      << p->Output();
}

TEST(LocalLauncherTest, InterruptStopsEveryChildCleanly) {
  auto p = Proc::Start({Runfile("cli/estuary"), "local", Job(), "--workers=2", "--ps=1",
                        "--evaluator", "--hold_secs=60", "--timeout=50"});
  ASSERT_TRUE(p->WaitForLine("cluster up: 5 tasks", kBound)) << p->Output();
  // The evaluator is outside the cluster spec, so the barrier does not wait
  // for it; wait until it has joined too.
  ASSERT_TRUE(p->WaitForLine("[evaluator:0] passed the start barrier", kBound)) << p->Output();
  p->Signal(SIGINT);
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 130) << p->Output();
  EXPECT_TRUE(p->HasLine("stopping the cluster: interrupted by signal 2")) << p->Output();
  // SIGTERM makes the chief end the job, so every task leaves cleanly.
  EXPECT_TRUE(p->HasLine("5 of 5 tasks exited 0")) << p->Output();
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
