// Membership over real gRPC: registration, heartbeats and the failure
// detector, restarts, shutdown. The key-value store and barriers are tested
// for both Store implementations in store_test.cc.
#include "common/coordination/coordination_service.h"

#include <atomic>
#include <thread>

#include "common/coordination/coordination_client.h"
#include "common/coordination/grpc_service.h"
#include "common/coordination/types.h"
#include "common/rpc.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

const TaskId kChief0{"chief", 0};
const TaskId kWorker0{"worker", 0};
const TaskId kWorker1{"worker", 1};

absl::Time In(absl::Duration d) { return absl::Now() + d; }

// A real gRPC server on a loopback port chosen by the kernel, with the
// service, and clients for tasks.
class CoordinationServiceTest : public testing::Test {
 protected:
  void StartService(absl::Duration hb_timeout = absl::Seconds(10)) {
    CoordinationServiceOptions o;
    o.cluster_tasks = {kChief0, kWorker0, kWorker1};
    o.heartbeat_interval = absl::Milliseconds(20);
    o.heartbeat_timeout = hb_timeout;
    o.leader_incarnation = 77;
    service_ = std::make_unique<CoordinationService>(o);
    grpc_service_ = std::make_unique<GrpcCoordinationService>(service_.get());
    grpc::ServerBuilder b;
    ConfigureServerBuilder(&b, ServerOptions{}, &port_);
    b.RegisterService(grpc_service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (service_) service_->Stop();
    if (server_) server_->Shutdown(absl::ToChronoTime(In(absl::Seconds(1))));
  }
  std::unique_ptr<CoordinationClient> Client(const TaskId& t, uint64_t incarnation) {
    const std::string addr = absl::StrCat("127.0.0.1:", port_);
    return std::make_unique<CoordinationClient>(CreateChannel(addr), t, incarnation, addr);
  }
  std::unique_ptr<CoordinationClient> Registered(const TaskId& t, uint64_t incarnation) {
    auto c = Client(t, incarnation);
    auto r = c->Register("127.0.0.1:1", In(absl::Seconds(10)));
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_EQ(r->leader_incarnation(), 77u);
    }
    return c;
  }
  coordination::TaskInfo Info(const TaskId& t) {
    const coordination::ClusterState state = service_->State();
    for (const auto& i : state.tasks()) {
      if (FromProto(i.task()) == t) return i;
    }
    return {};
  }

  std::unique_ptr<CoordinationService> service_;
  std::unique_ptr<GrpcCoordinationService> grpc_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(CoordinationServiceTest, SilentTaskIsDeclaredDeadAndFailsWaiters) {
  // 5 s: the beating tasks stay alive even when a loaded machine stalls
  // their heartbeat thread for seconds.
  constexpr absl::Duration kTimeout = absl::Seconds(5);
  StartService(kTimeout);
  auto c = Registered(kChief0, 1), w1 = Registered(kWorker1, 3);
  const absl::Time w0_registering = absl::Now();
  auto w0 = Registered(kWorker0, 2);  // never heartbeats again
  std::atomic<bool> stop{false};
  std::thread beats([&] {
    while (!stop) {
      (void)c->Heartbeat(In(absl::Seconds(1)));
      (void)w1->Heartbeat(In(absl::Seconds(1)));
      absl::SleepFor(absl::Milliseconds(100));  // the heartbeat clock, not synchronisation
    }
  });
  // Far beyond the detection time: the detector, not this deadline, ends it.
  absl::Status b = c->Barrier("after", {}, In(absl::Seconds(120)));
  const absl::Time failed = absl::Now();
  stop = true;
  beats.join();
  EXPECT_EQ(b.code(), absl::StatusCode::kUnavailable) << b;
  EXPECT_NE(b.message().find("task worker:0 is dead: no heartbeat"), absl::string_view::npos)
      << b;
  // Never before the timeout has passed since w0's last sign of life.
  EXPECT_GE(failed - w0_registering, kTimeout);
  EXPECT_EQ(Info(kWorker0).state(), coordination::TASK_DEAD);
  EXPECT_EQ(Info(kWorker1).state(), coordination::TASK_ALIVE);
  EXPECT_EQ(Info(kChief0).state(), coordination::TASK_ALIVE);
  // The dead incarnation is told so.
  EXPECT_EQ(w0->Heartbeat(In(absl::Seconds(1))).status().code(), absl::StatusCode::kAborted);
}

TEST_F(CoordinationServiceTest, RestartGetsNewIncarnationAndStaleOneIsAborted) {
  StartService();
  auto c = Registered(kChief0, 1);
  auto old = Registered(kWorker0, 100);
  const uint64_t version = service_->State().version();
  auto fresh = Registered(kWorker0, 200);
  coordination::TaskInfo info = Info(kWorker0);
  EXPECT_EQ(info.incarnation(), 200u);
  EXPECT_EQ(info.restarts(), 1);
  EXPECT_EQ(info.state(), coordination::TASK_ALIVE);
  absl::Status stale = old->Heartbeat(In(absl::Seconds(1))).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.message().find("is stale"), absl::string_view::npos) << stale;
  EXPECT_TRUE(fresh->Heartbeat(In(absl::Seconds(1))).ok());
  // Watchers learn it.
  absl::StatusOr<coordination::ClusterState> st = c->WatchCluster(version, absl::Seconds(5));
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->version(), version);
}

TEST_F(CoordinationServiceTest, RejectsTasksOutsideTheSpecButAcceptsEvaluator) {
  StartService();
  auto stranger = Client({"worker", 7}, 5);
  auto r = stranger->Register("h:1", In(absl::Seconds(5)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not in the chief's cluster spec"), absl::string_view::npos);
  auto eval = Client({"evaluator", 0}, 6);
  EXPECT_TRUE(eval->Register("h:2", In(absl::Seconds(5))).ok());
}

TEST_F(CoordinationServiceTest, ShutdownAndDisconnect) {
  StartService();
  auto c = Registered(kChief0, 1), w0 = Registered(kWorker0, 2);
  service_->RequestShutdown("done", /*job_failed=*/false);
  auto hb = w0->Heartbeat(In(absl::Seconds(1)));
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->shutdown_requested());
  EXPECT_EQ(service_->WaitUntilAllLeft(kChief0, absl::Milliseconds(50)),
            std::vector<TaskId>{kWorker0});
  EXPECT_TRUE(w0->Disconnect("bye", In(absl::Seconds(5))).ok());
  EXPECT_TRUE(service_->WaitUntilAllLeft(kChief0, absl::Seconds(5)).empty());
  EXPECT_EQ(Info(kWorker0).state(), coordination::TASK_DISCONNECTED);
  // A task that left cannot come back with the same incarnation.
  EXPECT_EQ(w0->Heartbeat(In(absl::Seconds(1))).status().code(), absl::StatusCode::kAborted);
}

TEST_F(CoordinationServiceTest, StopWakesBlockedCalls) {
  StartService();
  auto c = Registered(kChief0, 1);
  absl::StatusOr<std::vector<std::string>> waited;
  std::thread t([&] { waited = c->Wait({"never"}, In(absl::Seconds(60))); });
  // Whether the wait is already blocked or arrives after Stop, it must end
  // with Unavailable rather than run to its 60 s timeout.
  service_->Stop();
  t.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kUnavailable) << waited.status();
}

TEST_F(CoordinationServiceTest, RegisterReportsAnUnreachableCoordinator) {
  StartService();
  auto c = Client(kChief0, 1);
  server_->Shutdown(absl::ToChronoTime(absl::Now()));
  auto r = c->Register("h:1", In(absl::Milliseconds(300)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().message().find("cannot reach the chief"), absl::string_view::npos)
      << r.status();
}

}  // namespace
}  // namespace estuary
