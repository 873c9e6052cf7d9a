// One suite, two Stores: the gRPC client of a real coordination service on
// loopback, and the in-memory fake. Both must behave alike, deadlines and
// failure codes included.
#include "common/coordination/store.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/coordination/coordination_client.h"
#include "common/coordination/coordination_service.h"
#include "common/coordination/grpc_service.h"
#include "common/coordination/in_memory_store.h"
#include "common/coordination/types.h"
#include "common/rpc.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

const TaskId kW0{"worker", 0};
const TaskId kW1{"worker", 1};
const TaskId kW2{"worker", 2};
const std::vector<TaskId> kTasks = {kW0, kW1, kW2};

absl::Time In(absl::Duration d) { return absl::Now() + d; }

// Long enough never to pass in a green run; a hang would show as this.
absl::Time Later() { return In(absl::Seconds(30)); }

// Three tasks over InMemoryCoordination.
class InMemoryEnv {
 public:
  InMemoryEnv() : coordination_(kTasks) {}
  std::unique_ptr<Store> Connect(const TaskId& t) {
    absl::StatusOr<std::unique_ptr<InMemoryStore>> s = coordination_.Connect(t);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  void DeclareDead(const TaskId& t) { ASSERT_TRUE(coordination_.DeclareDead(t, "killed").ok()); }
  void StopService() { coordination_.Stop(); }

 private:
  InMemoryCoordination coordination_;
};

// Three tasks talking gRPC to a coordination service on a loopback port.
class GrpcEnv {
 public:
  GrpcEnv() : service_(Options()), grpc_service_(&service_) {
    grpc::ServerBuilder b;
    ConfigureServerBuilder(&b, ServerOptions{}, &port_);
    b.RegisterService(&grpc_service_);
    server_ = b.BuildAndStart();
    EXPECT_NE(port_, 0);
  }
  ~GrpcEnv() {
    service_.Stop();
    server_->Shutdown(absl::ToChronoTime(In(absl::Seconds(1))));
  }
  std::unique_ptr<Store> Connect(const TaskId& t) {
    const std::string addr = absl::StrCat("127.0.0.1:", port_);
    auto c = std::make_unique<CoordinationClient>(CreateChannel(addr), t, NewIncarnation(), addr);
    auto r = c->Register(addr, In(absl::Seconds(10)));
    EXPECT_TRUE(r.ok()) << r.status();
    return c;
  }
  void DeclareDead(const TaskId& t) { ASSERT_TRUE(service_.ReportTaskError(t, "killed").ok()); }
  void StopService() { service_.Stop(); }

 private:
  static CoordinationServiceOptions Options() {
    CoordinationServiceOptions o;
    o.cluster_tasks = kTasks;
    o.heartbeat_timeout = absl::InfiniteDuration();  // the tests send no heartbeats
    return o;
  }
  CoordinationService service_;
  GrpcCoordinationService grpc_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

template <typename Env>
class StoreTest : public testing::Test {
 protected:
  void SetUp() override {
    for (const TaskId& t : kTasks) stores_.push_back(env_.Connect(t));
  }
  Store& w(int i) { return *stores_[i]; }
  // Every task at barrier `id` in its own thread; returns their results.
  std::vector<absl::Status> AllArrive(const std::string& id, absl::Time deadline,
                                      int tasks = 3, std::vector<TaskId> participants = {}) {
    std::vector<absl::Status> out(tasks);
    std::vector<std::thread> threads;
    for (int i = 0; i < tasks; ++i) {
      threads.emplace_back([&, i] { out[i] = w(i).Barrier(id, participants, deadline); });
    }
    for (std::thread& t : threads) t.join();
    return out;
  }

  Env env_;
  std::vector<std::unique_ptr<Store>> stores_;
};

using Envs = testing::Types<InMemoryEnv, GrpcEnv>;
class EnvNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, InMemoryEnv> ? "InMemory" : "Grpc";
  }
};
TYPED_TEST_SUITE(StoreTest, Envs, EnvNames);

TYPED_TEST(StoreTest, SetGetAndOverwrite) {
  EXPECT_EQ(this->w(0).Get("k", Later()).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(this->w(0).Set("k", "v1", Later()).ok());
  EXPECT_EQ(*this->w(1).Get("k", Later()), "v1");
  ASSERT_TRUE(this->w(2).Set("k", std::string("v\0 2", 4), Later()).ok());
  EXPECT_EQ(*this->w(0).Get("k", Later()), std::string("v\0 2", 4));
  EXPECT_EQ(this->w(0).Set("", "v", Later()).code(), absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, WaitReturnsValuesInOrderOnceEveryKeyIsSet) {
  absl::StatusOr<std::vector<std::string>> got;
  std::thread waiter([&] { got = this->w(0).Wait({"x", "y"}, Later()); });
  ASSERT_TRUE(this->w(1).Set("y", "Y", Later()).ok());
  ASSERT_TRUE(this->w(2).Set("x", "X", Later()).ok());
  waiter.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<std::string>{"X", "Y"}));
  // Already set: returns at once.
  EXPECT_EQ(*this->w(1).Wait({"y"}, In(absl::Seconds(5))), std::vector<std::string>{"Y"});
}

TYPED_TEST(StoreTest, WaitDeadlineNamesTheMissingKeys) {
  ASSERT_TRUE(this->w(0).Set("a", "1", Later()).ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<std::string>> got =
      this->w(1).Wait({"a", "b"}, In(absl::Milliseconds(200)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_NE(got.status().message().find("key 'b' was not set"), absl::string_view::npos)
      << got.status();
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(20));  // its own deadline ended it, not a hang
}

TYPED_TEST(StoreTest, BadArguments) {
  EXPECT_EQ(this->w(0).Wait({}, Later()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(this->w(0).Wait({"a", ""}, Later()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(this->w(0).Add("", 1, Later()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(this->w(0).Barrier("", {}, Later()).code(), absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, APassedDeadlineFailsEveryCallAtOnce) {
  const absl::Time past = absl::Now() - absl::Milliseconds(1);
  EXPECT_EQ(this->w(0).Set("k", "v", past).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(this->w(0).Get("k", past).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(this->w(0).Add("n", 1, past).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(this->w(0).Wait({"k"}, past).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(this->w(0).Barrier("b", {}, past).code(), absl::StatusCode::kDeadlineExceeded);
}

TYPED_TEST(StoreTest, AddCountsAcrossTasksAndThreads) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k) ASSERT_TRUE(this->w(i).Add("n", 2, Later()).ok());
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(*this->w(0).Add("n", -20, Later()), 100);
  EXPECT_EQ(*this->w(1).Get("n", Later()), "100");
  // A key set by Add is a key like any other: waiters see it.
  EXPECT_EQ(*this->w(2).Wait({"n"}, Later()), std::vector<std::string>{"100"});
  ASSERT_TRUE(this->w(0).Set("text", "abc", Later()).ok());
  EXPECT_EQ(this->w(0).Add("text", 1, Later()).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(this->w(0).Set("big", "9223372036854775807", Later()).ok());
  EXPECT_EQ(this->w(0).Add("big", 1, Later()).status().code(), absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, BarrierReleasesEveryoneWhenAllArrive) {
  for (const absl::Status& s : this->AllArrive("b", Later())) EXPECT_TRUE(s.ok()) << s;
  // A task arriving again at a passed barrier (e.g. after a restart) passes.
  EXPECT_TRUE(this->w(1).Barrier("b", {}, In(absl::Seconds(1))).ok());
}

TYPED_TEST(StoreTest, BarrierOfSomeParticipants) {
  for (const absl::Status& s : this->AllArrive("pair", Later(), 2, {kW1, kW0})) {
    EXPECT_TRUE(s.ok()) << s;
  }
  absl::Status other = this->w(2).Barrier("pair", {kW0, kW2}, Later());
  EXPECT_EQ(other.code(), absl::StatusCode::kInvalidArgument) << other;
}

TYPED_TEST(StoreTest, BarrierTimeoutNamesTheMissingTask) {
  const absl::Time start = absl::Now();
  for (const absl::Status& s : this->AllArrive("b", In(absl::Milliseconds(300)), 2)) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_NE(s.message().find("still waiting for worker:2"), absl::string_view::npos) << s;
  }
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(20));  // its own deadline ended it, not Later()'s 30 s
  // The barrier failed for good: a late arrival learns it at once.
  EXPECT_EQ(this->w(2).Barrier("b", {}, Later()).code(), absl::StatusCode::kDeadlineExceeded);
}

TYPED_TEST(StoreTest, BarrierFailsWhenAParticipantIsDeclaredDead) {
  absl::Status s0;
  std::thread t([&] { s0 = this->w(0).Barrier("b", {}, Later()); });
  this->env_.DeclareDead(kW2);
  t.join();
  EXPECT_EQ(s0.code(), absl::StatusCode::kUnavailable) << s0;
  EXPECT_NE(s0.message().find("task worker:2 is dead: killed"), absl::string_view::npos) << s0;
  // The dead task itself is told it is gone.
  EXPECT_EQ(this->w(2).Barrier("c", {}, Later()).code(), absl::StatusCode::kAborted);
}

TYPED_TEST(StoreTest, CancelEndsBlockingCallsButNotQuickOnes) {
  absl::StatusOr<std::vector<std::string>> waited;
  std::thread t([&] { waited = this->w(0).Wait({"never"}, Later()); });
  this->w(0).CancelBlockingCalls();
  t.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kCancelled) << waited.status();
  EXPECT_EQ(this->w(0).Barrier("b", {}, Later()).code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(this->w(0).Set("k", "v", Later()).ok());
  EXPECT_EQ(this->w(0).Wait({"k"}, Later()).status().code(), absl::StatusCode::kCancelled);
  // Other tasks' stores are not affected.
  EXPECT_EQ(*this->w(1).Wait({"k"}, Later()), std::vector<std::string>{"v"});
}

TYPED_TEST(StoreTest, StoppingTheServiceWakesWaitersWithUnavailable) {
  absl::StatusOr<std::vector<std::string>> waited;
  std::thread t([&] { waited = this->w(0).Wait({"never"}, Later()); });
  this->env_.StopService();
  t.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kUnavailable) << waited.status();
}

// Fault injection exists only in the fake.
TEST(InMemoryStoreTest, FailsAfterNCalls) {
  InMemoryCoordination coordination(kTasks);
  InMemoryStoreOptions options;
  options.fail_after_calls = 2;
  options.failure = absl::AbortedError("injected");
  auto store = coordination.Connect(kW0, options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Set("a", "1", Later()).ok());
  EXPECT_TRUE((*store)->Get("a", Later()).ok());
  EXPECT_EQ((*store)->Get("a", Later()).status(), absl::AbortedError("injected"));
  EXPECT_EQ((*store)->Barrier("b", {}, Later()), absl::AbortedError("injected"));
}

TEST(InMemoryStoreTest, ReconnectingIsARestart) {
  InMemoryCoordination coordination(kTasks);
  auto first = coordination.Connect(kW1);
  auto second = coordination.Connect(kW1);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ((*first)->Barrier("b", {kW1}, Later()).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE((*second)->Barrier("b", {kW1}, Later()).ok());
  const coordination::ClusterState state = coordination.service().State();
  for (const auto& info : state.tasks()) {
    if (FromProto(info.task()) == kW1) {
      EXPECT_EQ(info.restarts(), 1);
    }
  }
  EXPECT_EQ(coordination.Connect({"worker", 9}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace estuary
