#include "server/coordination_service.h"

#include <atomic>
#include <thread>

#include "common/coordination_client.h"
#include "common/rpc.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

const TaskId kChief0{"chief", 0};
const TaskId kWorker0{"worker", 0};
const TaskId kWorker1{"worker", 1};

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
    service_ = std::make_unique<CoordinationServiceImpl>(o);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (service_) service_->Stop();
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  std::unique_ptr<CoordinationClient> Client(const TaskId& t, uint64_t incarnation) {
    const std::string addr = absl::StrCat("127.0.0.1:", port_);
    return std::make_unique<CoordinationClient>(CreateChannel(addr), t, incarnation, addr);
  }
  std::unique_ptr<CoordinationClient> Registered(const TaskId& t, uint64_t incarnation) {
    auto c = Client(t, incarnation);
    auto r = c->Register("127.0.0.1:1", absl::Seconds(10));
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

  std::unique_ptr<CoordinationServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(CoordinationServiceTest, BarrierReleasesEveryoneWhenAllArrive) {
  StartService();
  auto c = Registered(kChief0, 1), w0 = Registered(kWorker0, 2), w1 = Registered(kWorker1, 3);
  absl::Status s0, s1, s2;
  std::thread t0([&] { s0 = c->Barrier("b", absl::Seconds(20)); });
  std::thread t1([&] { s1 = w0->Barrier("b", absl::Seconds(20)); });
  s2 = w1->Barrier("b", absl::Seconds(20));
  t0.join();
  t1.join();
  EXPECT_TRUE(s0.ok()) << s0;
  EXPECT_TRUE(s1.ok()) << s1;
  EXPECT_TRUE(s2.ok()) << s2;
  // A task arriving again at a passed barrier (e.g. after a restart) passes.
  EXPECT_TRUE(w1->Barrier("b", absl::Seconds(1)).ok());
}

TEST_F(CoordinationServiceTest, BarrierTimeoutNamesMissingTasks) {
  StartService();
  auto c = Registered(kChief0, 1), w0 = Registered(kWorker0, 2);
  absl::Status s1;
  std::thread t([&] { s1 = w0->Barrier("b", absl::Milliseconds(300)); });
  absl::Status s0 = c->Barrier("b", absl::Milliseconds(300));
  t.join();
  EXPECT_EQ(s0.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(s0.message().find("still waiting for worker:1 (never registered)"),
            absl::string_view::npos)
      << s0;
  EXPECT_EQ(s1.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CoordinationServiceTest, SilentTaskIsDeclaredDeadAndFailsWaiters) {
  StartService(/*hb_timeout=*/absl::Milliseconds(300));
  auto c = Registered(kChief0, 1), w1 = Registered(kWorker1, 3);
  auto w0 = Registered(kWorker0, 2);  // never heartbeats again
  std::atomic<bool> stop{false};
  std::thread beats([&] {
    while (!stop) {
      (void)c->Heartbeat(absl::Seconds(1));
      (void)w1->Heartbeat(absl::Seconds(1));
      absl::SleepFor(absl::Milliseconds(20));  // the heartbeat clock, not synchronisation
    }
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> v = w1->WaitForKey("never", absl::Seconds(20), kWorker0);
  absl::Status b = c->Barrier("after", absl::Seconds(20));
  stop = true;
  beats.join();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(v.status().message().find("task worker:0 is dead: no heartbeat"),
            absl::string_view::npos)
      << v.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(b.code(), absl::StatusCode::kUnavailable) << b;
  EXPECT_NE(b.message().find("worker:0"), absl::string_view::npos) << b;
  EXPECT_EQ(Info(kWorker0).state(), coordination::TASK_DEAD);
  // The dead incarnation is told so.
  EXPECT_EQ(w0->Heartbeat(absl::Seconds(1)).status().code(), absl::StatusCode::kAborted);
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
  absl::Status stale = old->Heartbeat(absl::Seconds(1)).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_NE(stale.message().find("is stale"), absl::string_view::npos) << stale;
  EXPECT_TRUE(fresh->Heartbeat(absl::Seconds(1)).ok());
  // Watchers learn it.
  absl::StatusOr<coordination::ClusterState> st = c->WatchCluster(version, absl::Seconds(5));
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->version(), version);
}

TEST_F(CoordinationServiceTest, KeyValueStoreAndWaits) {
  StartService();
  auto c = Registered(kChief0, 1);
  EXPECT_EQ(c->Get("k").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::string> waited;
  std::thread t([&] { waited = c->WaitForKey("k", absl::Seconds(20)); });
  EXPECT_TRUE(c->Set("k", "v").ok());
  t.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(*waited, "v");
  EXPECT_EQ(c->Set("k", "w").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(c->Set("k", "w", /*allow_overwrite=*/true).ok());
  EXPECT_EQ(*c->Get("k"), "w");
  EXPECT_EQ(c->WaitForKey("missing", absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CoordinationServiceTest, RejectsTasksOutsideTheSpecButAcceptsEvaluator) {
  StartService();
  auto stranger = Client({"worker", 7}, 5);
  auto r = stranger->Register("h:1", absl::Seconds(5));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not in the chief's cluster spec"), absl::string_view::npos);
  auto eval = Client({"evaluator", 0}, 6);
  EXPECT_TRUE(eval->Register("h:2", absl::Seconds(5)).ok());
}

TEST_F(CoordinationServiceTest, ShutdownAndDisconnect) {
  StartService();
  auto c = Registered(kChief0, 1), w0 = Registered(kWorker0, 2);
  service_->RequestShutdownLocal("done");
  auto hb = w0->Heartbeat(absl::Seconds(1));
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->shutdown_requested());
  EXPECT_EQ(service_->WaitUntilAllLeft(kChief0, absl::Milliseconds(50)),
            std::vector<TaskId>{kWorker0});
  EXPECT_TRUE(w0->Disconnect("bye").ok());
  EXPECT_TRUE(service_->WaitUntilAllLeft(kChief0, absl::Seconds(5)).empty());
  EXPECT_EQ(Info(kWorker0).state(), coordination::TASK_DISCONNECTED);
}

TEST_F(CoordinationServiceTest, StopWakesBlockedCalls) {
  StartService();
  auto c = Registered(kChief0, 1);
  absl::StatusOr<std::string> waited;
  std::thread t([&] { waited = c->WaitForKey("never", absl::Seconds(60)); });
  // Whether the wait is already blocked or arrives after Stop, it must end
  // with UNAVAILABLE rather than run to its 60 s timeout.
  service_->Stop();
  t.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kUnavailable) << waited.status();
}

TEST_F(CoordinationServiceTest, ClientCancelEndsBlockingCall) {
  StartService();
  auto c = Registered(kChief0, 1);
  absl::StatusOr<std::string> waited;
  std::thread t([&] { waited = c->WaitForKey("never", absl::Seconds(60)); });
  c->CancelBlockingCalls();
  t.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kCancelled) << waited.status();
}

}  // namespace
}  // namespace estuary
