// Multi-process tests of the cluster runtime: every task is a real role
// binary in its own process talking gRPC over loopback.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "common/coordination/coordination_client.h"
#include "common/rpc.h"
#include "gtest/gtest.h"
#include "proto/health.grpc.pb.h"
#include "proto/task.grpc.pb.h"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

// Heartbeats a loaded 2-core machine keeps up with: a live task is never
// declared dead because a heartbeat came a few seconds late.
constexpr absl::Duration kHeartbeatInterval = absl::Milliseconds(500);
constexpr absl::Duration kHeartbeatTimeout = absl::Seconds(5);
// Generous bound for a 2-core machine running several processes.
constexpr absl::Duration kSlack = absl::Seconds(10);

std::string FastJob() {
  return WriteTempFile("job.json", R"({"model_dir": "/tmp/estuary-test-model",
    "distribution": {"heartbeat_interval_secs": 0.5, "heartbeat_timeout_secs": 5,
                     "startup_timeout_secs": 30, "shutdown_timeout_secs": 10}})");
}

int WaitExit(Proc& p, absl::Duration timeout = kSlack) {
  absl::StatusOr<int> code = p.Wait(timeout);
  EXPECT_TRUE(code.ok()) << code.status() << "\n" << p.Output();
  return code.ok() ? *code : -1;
}

// SIGTERM to the chief ends the job: it and every other task exit 0.
void StopChiefAndExpectCleanExits(Proc& chief, std::initializer_list<Proc*> others) {
  chief.Signal(SIGTERM);
  EXPECT_EQ(WaitExit(chief), 0) << chief.Output();
  for (Proc* p : others) EXPECT_EQ(WaitExit(*p), 0) << p->Output();
}

TEST(ClusterProcessTest, LocalClusterStartsRendezvousAndShutsDownCleanly) {
  auto p = Proc::Start({Runfile("cli/estuary"), "local", FastJob(), "--workers=2", "--ps=2",
                        "--evaluator", "--timeout=60"});
  EXPECT_EQ(WaitExit(*p, absl::Seconds(60)), 0) << p->Output();
  EXPECT_TRUE(p->HasLine("cluster up: 6 tasks passed the start barrier")) << p->Output();
  EXPECT_TRUE(p->HasLine("6 of 6 tasks exited 0")) << p->Output();
  for (const char* t : {"worker:0", "worker:1", "ps:0", "ps:1", "evaluator:0"}) {
    EXPECT_TRUE(p->HasLine(absl::StrCat("task ", t, " disconnected: job finished")))
        << t << "\n" << p->Output();
  }
}

TEST(ClusterProcessTest, WorkerZeroCoordinatesWithoutChief) {
  auto p = Proc::Start({Runfile("cli/estuary"), "local", FastJob(), "--nochief", "--workers=2",
                        "--ps=0", "--timeout=60"});
  EXPECT_EQ(WaitExit(*p, absl::Seconds(60)), 0) << p->Output();
  EXPECT_TRUE(p->HasLine("[worker:0] coordinating 2 tasks: worker:0, worker:1")) << p->Output();
}

TEST(ClusterProcessTest, KilledWorkerIsDeclaredDeadWithinHeartbeatDeadline) {
  TestCluster cluster(1, 2, 1);
  const std::string job = FastJob();
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120"});
  auto w0 = cluster.StartTask("worker:0", job);
  auto w1 = cluster.StartTask("worker:1", job);
  auto ps = cluster.StartTask("ps:0", job);
  ASSERT_TRUE(chief->WaitForLine("cluster ready", kSlack)) << chief->Output();
  ASSERT_TRUE(w0->WaitForLine("passed the start barrier", kSlack)) << w0->Output();

  const absl::Time killed = absl::Now();
  w1->Signal(SIGKILL);
  ASSERT_TRUE(chief->WaitForLine("task worker:1 declared dead: no heartbeat",
                                 kHeartbeatTimeout + kSlack))
      << chief->Output();
  // The detector waits out the heartbeat timeout from the last heartbeat
  // (at most an interval before the kill, two on a slow machine), and then
  // notices within its check period; a loaded machine only adds delay.
  const absl::Duration detect = absl::Now() - killed;
  EXPECT_GE(detect, kHeartbeatTimeout - 2 * kHeartbeatInterval) << "detected after " << detect;
  EXPECT_LT(detect, kHeartbeatTimeout + kSlack) << "detected after " << detect;
  EXPECT_TRUE(w0->WaitForLine("peer worker:1 is dead", kSlack)) << w0->Output();

  // The rest of the cluster still shuts down cleanly.
  StopChiefAndExpectCleanExits(*chief, {w0.get(), ps.get()});
}

TEST(ClusterProcessTest, KilledChiefMakesEveryTaskExitNonZero) {
  TestCluster cluster(1, 2, 1);
  const std::string job = FastJob();
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120"});
  std::vector<std::unique_ptr<Proc>> others;
  for (const char* t : {"worker:0", "worker:1", "ps:0"}) others.push_back(cluster.StartTask(t, job));
  for (auto& o : others) ASSERT_TRUE(o->WaitForLine("passed the start barrier", kSlack)) << o->Output();

  chief->Signal(SIGKILL);
  // Each task gives up within its heartbeat deadline (plus slack for the
  // machine), never hangs.
  for (auto& o : others) {
    EXPECT_EQ(WaitExit(*o, kHeartbeatTimeout + kSlack), 1) << o->Output();
    EXPECT_TRUE(o->HasLine("lost the chief chief:0")) << o->Output();
  }
}

TEST(ClusterProcessTest, RestartedTaskIsSeenWithNewIncarnation) {
  TestCluster cluster(1, 2, 0);
  const std::string job = FastJob();
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120"});
  auto w0 = cluster.StartTask("worker:0", job);
  auto w1 = cluster.StartTask("worker:1", job);
  ASSERT_TRUE(w1->WaitForLine("passed the start barrier", kSlack)) << w1->Output();
  ASSERT_TRUE(w0->WaitForLine("passed the start barrier", kSlack)) << w0->Output();

  // What the chief knows before.
  const std::string chief_addr = *cluster.spec().Address({"chief", 0});
  CoordinationClient observer(CreateChannel(chief_addr), {"test", 0}, 1, chief_addr);
  absl::StatusOr<coordination::ClusterState> before =
      observer.GetClusterState(absl::Now() + kSlack);
  ASSERT_TRUE(before.ok()) << before.status();
  uint64_t old_incarnation = 0;
  for (const auto& t : before->tasks()) {
    if (t.task().type() == "worker" && t.task().index() == 1) old_incarnation = t.incarnation();
  }
  ASSERT_NE(old_incarnation, 0u);

  w1->Signal(SIGKILL);
  ASSERT_EQ(WaitExit(*w1), 128 + SIGKILL);
  auto again = cluster.StartTask("worker:1", job);
  ASSERT_TRUE(again->WaitForLine("passed the start barrier", kSlack)) << again->Output();
  EXPECT_TRUE(chief->WaitForLine("task worker:1 restarted: incarnation", kSlack))
      << chief->Output();
  EXPECT_TRUE(w0->WaitForLine("peer worker:1 restarted", kSlack)) << w0->Output();

  absl::StatusOr<coordination::ClusterState> after = observer.GetClusterState(absl::Now() + kSlack);
  ASSERT_TRUE(after.ok()) << after.status();
  for (const auto& t : after->tasks()) {
    if (t.task().type() == "worker" && t.task().index() == 1) {
      EXPECT_NE(t.incarnation(), old_incarnation);
      EXPECT_EQ(t.restarts(), 1);
      EXPECT_EQ(t.state(), coordination::TASK_ALIVE);
    }
  }
  StopChiefAndExpectCleanExits(*chief, {w0.get(), again.get()});
}

TEST(ClusterProcessTest, SigtermMakesATaskLeaveCleanly) {
  TestCluster cluster(1, 1, 1);
  const std::string job = FastJob();
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120"});
  auto w0 = cluster.StartTask("worker:0", job);
  auto ps = cluster.StartTask("ps:0", job);
  ASSERT_TRUE(ps->WaitForLine("passed the start barrier", kSlack)) << ps->Output();
  ps->Signal(SIGTERM);
  EXPECT_EQ(WaitExit(*ps), 0) << ps->Output();
  EXPECT_TRUE(chief->WaitForLine("task ps:0 disconnected: received signal 15", kSlack))
      << chief->Output();
  StopChiefAndExpectCleanExits(*chief, {w0.get()});
}

TEST(ClusterProcessTest, EvaluatorOutsideTheClusterSpecJoinsAndLeaves) {
  // tf.estimator's convention: the evaluator's TF_CONFIG has the training
  // cluster without an evaluator job, and task evaluator:0.
  TestCluster cluster(1, 1, 0);
  const std::string job = FastJob();
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120"});
  auto w0 = cluster.StartTask("worker:0", job);
  auto eval = Proc::Start({TestCluster::BinaryFor("evaluator"), "--job=" + job,
                           "--listen=127.0.0.1:0"},
                          {{"TF_CONFIG", cluster.TfConfig("evaluator:0")}}, "evaluator:0");
  ASSERT_TRUE(eval->WaitForLine("passed the start barrier", kSlack)) << eval->Output();
  EXPECT_TRUE(chief->WaitForLine("task evaluator:0 registered from 127.0.0.1:", kSlack))
      << chief->Output();
  StopChiefAndExpectCleanExits(*chief, {eval.get(), w0.get()});
  EXPECT_TRUE(chief->HasLine("task evaluator:0 disconnected")) << chief->Output();
}

TEST(ClusterProcessTest, SigtermWhileWaitingForTheChiefExitsPromptly) {
  TestCluster cluster(1, 2, 0);
  const std::string job = WriteTempFile("long_startup.json", R"({"model_dir": "/tmp/m",
    "distribution": {"heartbeat_interval_secs": 0.5, "heartbeat_timeout_secs": 5,
                     "startup_timeout_secs": 600}})");
  auto w1 = cluster.StartTask("worker:1", job);  // no chief: would wait 600 s
  ASSERT_TRUE(w1->WaitForLine("serving gRPC", kSlack)) << w1->Output();
  w1->Signal(SIGTERM);
  // The signal, not the start-up timeout, ends the wait: exit 0 with this
  // line, long before 600 s.
  EXPECT_EQ(WaitExit(*w1, kSlack), 0) << w1->Output();
  EXPECT_TRUE(w1->HasLine("leaving before joining: received signal 15")) << w1->Output();
}

TEST(ClusterProcessTest, ServesHealthAndTaskStatus) {
  TestCluster cluster(1, 1, 0);
  const std::string job = FastJob();
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120"});
  auto w0 = cluster.StartTask("worker:0", job);
  ASSERT_TRUE(w0->WaitForLine("passed the start barrier", kSlack)) << w0->Output();
  const std::string addr = *cluster.spec().Address({"worker", 0});
  auto channel = CreateChannel(addr);
  CallOptions options;
  options.deadline = absl::Now() + kSlack;
  grpc::health::v1::HealthCheckResponse health;
  auto health_stub = grpc::health::v1::Health::NewStub(channel);
  ASSERT_TRUE(CallUnary(health_stub.get(), &grpc::health::v1::Health::Stub::Check,
                        grpc::health::v1::HealthCheckRequest(), &health, options)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  task::TaskStatus status;
  auto status_stub = task::TaskService::NewStub(channel);
  ASSERT_TRUE(CallUnary(status_stub.get(), &task::TaskService::Stub::GetTaskStatus,
                        task::GetTaskStatusRequest(), &status, options)
                  .ok());
  EXPECT_EQ(status.type(), "worker");
  EXPECT_EQ(status.index(), 0);
  EXPECT_EQ(status.phase(), "running");
  EXPECT_EQ(status.pid(), w0->pid());
  EXPECT_EQ(status.binary(), "worker");
  StopChiefAndExpectCleanExits(*chief, {w0.get()});
}

TEST(ClusterProcessTest, StartBarrierTimesOutNamingTheMissingTask) {
  TestCluster cluster(1, 2, 0);
  const std::string job = WriteTempFile("short_startup.json", R"({"model_dir": "/tmp/m",
    "distribution": {"heartbeat_interval_secs": 0.5, "heartbeat_timeout_secs": 5,
                     "startup_timeout_secs": 5}})");
  auto chief = cluster.StartTask("chief:0", job);
  auto w0 = cluster.StartTask("worker:0", job);
  EXPECT_EQ(WaitExit(*chief, absl::Seconds(5) + kSlack), 1) << chief->Output();
  EXPECT_TRUE(chief->HasLine("still waiting for worker:1 (never registered)")) << chief->Output();
  EXPECT_EQ(WaitExit(*w0), 1) << w0->Output();
}

// --on_sigterm=preempt (the Kubernetes manifests): SIGTERM is a
// preemption, not the end of the job. A preempted worker exits 143; a
// preempted chief exits 143 and fails the cluster, so the others exit 1
// (Kubernetes restarts them).
TEST(ClusterProcessTest, PreemptedTasksExit143AndAPreemptedChiefFailsTheCluster) {
  TestCluster cluster(1, 2, 0);
  const std::string job = FastJob();
  auto chief = cluster.StartTask("chief:0", job, {"--hold_secs=120", "--on_sigterm=preempt"});
  auto w0 = cluster.StartTask("worker:0", job, {"--on_sigterm=preempt"});
  auto w1 = cluster.StartTask("worker:1", job, {"--on_sigterm=preempt"});
  ASSERT_TRUE(w1->WaitForLine("passed the start barrier", kSlack)) << w1->Output();
  w1->Signal(SIGTERM);
  EXPECT_EQ(WaitExit(*w1), 143) << w1->Output();
  EXPECT_TRUE(w1->HasLine("preempted by signal 15: exiting 143")) << w1->Output();
  chief->Signal(SIGTERM);
  EXPECT_EQ(WaitExit(*chief), 143) << chief->Output();
  EXPECT_EQ(WaitExit(*w0), 1) << w0->Output();
}

}  // namespace
}  // namespace estuary::testing
