// PsClient against two real gRPC parameter servers in this process
// (loopback, port 0).
#include "common/ps/ps_client.h"

#include <cstdlib>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "common/ps/ps_service.h"
#include "common/ps/ps_shard.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// With `data_plane`, Push and Pull reach the PS over its TCP data plane
// (ps_data_plane.h), else over gRPC; the fixture's PS 0 has it and PS 1 not,
// so every test runs both paths side by side.
struct TestPs {
  explicit TestPs(bool data_plane = false) : service(std::make_unique<PsGrpcService>(&shard)) {
    if (data_plane) {
      EXPECT_TRUE(service->StartDataPlane("127.0.0.1").ok());
    }
    grpc::ServerBuilder b;
    ConfigureServerBuilder(&b, ServerOptions{}, &port);
    b.RegisterService(service.get());
    server = b.BuildAndStart();
    address = absl::StrCat("127.0.0.1:", port);
  }
  ~TestPs() { Stop(); }
  // As a PS that dies: gRPC and the data plane go.
  void Stop() {
    if (server) server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server.reset();
    service.reset();
  }
  PsShard shard;
  std::unique_ptr<PsGrpcService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;
};

RowMatrixXf Random(int64_t rows, int64_t cols, std::mt19937* rng) {
  std::normal_distribution<float> d(0.f, 1.f);
  RowMatrixXf m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = d(*rng);
  return m;
}

absl::Time Deadline() { return absl::Now() + absl::Seconds(30); }

std::string NewDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "'").c_str()), 0);
  return dir;
}

class PsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) ps_[i] = std::make_unique<TestPs>(i == 0);
    chief_ = *PsClient::Create({ps_[0]->address, ps_[1]->address}, {});
    worker_ = *PsClient::Create({ps_[0]->address, ps_[1]->address}, {});
    std::mt19937 rng(3);
    config_.type = "adam";
    config_.learning_rate = 0.1;
    // The table is big enough to be partitioned; the kernels are dense.
    table_ = Random(kPartitionMinRows + 5, 2, &rng);
    kernel_ = Random(30, 20, &rng);
    bias_ = Random(1, 20, &rng);
    vars_ = {{"table", table_, true, true, config_, {}, 0},
             {"kernel", kernel_, false, true, config_, {}, 0},
             {"bias", bias_, false, true, config_, {}, 0}};
  }
  // What the PS tasks should hold: the initial values with every step
  // of Gradients() applied on whole variables.
  struct Reference {
    std::unique_ptr<Optimizer> opt;
    RowMatrixXf t, k, b;
    Slots ts, ks, bs;
  };
  Reference MakeReference() {
    Reference r{*MakeOptimizer(config_), table_, kernel_, bias_, {}, {}, {}};
    r.ts = r.opt->CreateSlots(r.t);
    r.ks = r.opt->CreateSlots(r.k);
    r.bs = r.opt->CreateSlots(r.b);
    return r;
  }
  // One step's gradients (rows of the table on both PS), applied to *ref.
  Gradients StepGradients(int step, std::mt19937* rng, Reference* ref) {
    Gradients g;
    g.dense["kernel"] = Random(30, 20, rng);
    g.dense["bias"] = Random(1, 20, rng);
    g.sparse["table"] = {{1, 2, 9, kPartitionMinRows + 1}, Random(4, 2, rng)};
    ref->opt->ApplyDense(&ref->k, &ref->ks, g.dense["kernel"], step);
    ref->opt->ApplyDense(&ref->b, &ref->bs, g.dense["bias"], step);
    ref->opt->ApplySparse(&ref->t, &ref->ts, g.sparse["table"].rows, g.sparse["table"].values,
                          step);
    return g;
  }
  std::unique_ptr<TestPs> ps_[2];
  std::unique_ptr<PsClient> chief_, worker_;
  OptimizerConfig config_;
  RowMatrixXf table_, kernel_, bias_;
  std::vector<PsVariableInit> vars_;
};

TEST_F(PsClientTest, InitializePullPushGlobalStepAndCheckpoint) {
  ASSERT_TRUE(chief_->Initialize(7, vars_, 40, Deadline()).ok());
  const Placement placement = chief_->placement();
  EXPECT_EQ(placement.row_partitioned, std::set<std::string>{"table"});
  EXPECT_NE(placement.dense_ps.at("kernel"), placement.dense_ps.at("bias"));

  absl::StatusOr<uint64_t> gen = worker_->WaitInitialized(7, Deadline());
  ASSERT_TRUE(gen.ok()) << gen.status();
  EXPECT_EQ(*gen, 7u);
  EXPECT_EQ(worker_->placement().dense_ps, placement.dense_ps);
  EXPECT_EQ(*worker_->GlobalStep(Deadline()), 40);

  // Pull the dense variables and a few rows (on both PS).
  Variables mirror;
  const std::vector<int64_t> rows = {0, 3, 8, kPartitionMinRows + 4};
  ASSERT_TRUE(worker_->Pull({"kernel", "bias"}, {{"table", rows}}, &mirror, Deadline()).ok());
  EXPECT_TRUE(mirror.floats.at("kernel") == kernel_);
  EXPECT_TRUE(mirror.floats.at("bias") == bias_);
  ASSERT_EQ(mirror.floats.at("table").rows(), table_.rows());
  for (int64_t r : rows) EXPECT_TRUE(mirror.floats.at("table").row(r) == table_.row(r)) << r;
  EXPECT_TRUE(mirror.floats.at("table").row(1).isZero());  // not pulled

  // Two pushes; the reference applies the same on whole variables.
  Reference ref = MakeReference();
  const RowMatrixXf &t = ref.t, &k = ref.k;
  const Slots &ts = ref.ts, &bs = ref.bs;
  std::mt19937 rng(11);
  for (int step = 0; step < 2; ++step) {
    absl::StatusOr<int64_t> gs = worker_->Push(StepGradients(step, &rng, &ref), Deadline());
    ASSERT_TRUE(gs.ok()) << gs.status();
    EXPECT_EQ(*gs, 41 + step);
  }
  // Each PS's handler counted both pushes (the ps logs these timings at exit).
  for (auto& p : ps_) {
    EXPECT_EQ(p->service->push_times().calls, 2);
    EXPECT_THAT(p->service->TimingSummary(), HasSubstr("; push 2 calls: receive "));
  }
  ASSERT_TRUE(worker_->Pull({"kernel", "table"}, {}, &mirror, Deadline()).ok());
  EXPECT_TRUE(mirror.floats.at("kernel") == k);
  EXPECT_TRUE(mirror.floats.at("table") == t);

  // A cluster checkpoint restores whole, bit-identically, in one process.
  const std::string dir = NewDir("cluster_ckpt");
  int64_t saved_step = -1;
  absl::StatusOr<std::vector<ShardEntry>> shards = chief_->SaveShards(dir, Deadline(), &saved_step);
  ASSERT_TRUE(shards.ok()) << shards.status();
  EXPECT_EQ(saved_step, 42);
  ASSERT_EQ(shards->size(), 2u);
  ASSERT_TRUE(checkpoint::CommitCheckpoint(dir, 42, *shards).ok());
  absl::StatusOr<checkpoint::RestoredCheckpoint> back = checkpoint::RestoreLatest(dir);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->step, 42);
  EXPECT_EQ(back->vars.ints.at("global_step"), 42);
  EXPECT_TRUE(back->vars.floats.at("table") == t);
  EXPECT_TRUE(back->vars.floats.at("table/adam/m") == ts.by_name.at("m"));
  EXPECT_TRUE(back->vars.floats.at("table/adam/v") == ts.by_name.at("v"));
  EXPECT_TRUE(back->vars.floats.at("kernel") == k);
  EXPECT_TRUE(back->vars.floats.at("bias/adam/v") == bs.by_name.at("v"));
  EXPECT_EQ(back->vars.ints.at("table/adam/updates"), 2);

  // ...and initialises a cluster again (the chief's restore), same values.
  std::vector<PsVariableInit> again;
  for (const char* name : {"table", "kernel", "bias"}) {
    PsVariableInit v{name, back->vars.floats.at(name), std::string(name) == "table", true,
                     config_, {}, back->vars.ints.at(absl::StrCat(name, "/adam/updates"))};
    for (const char* slot : {"m", "v"}) {
      v.slots[slot] = back->vars.floats.at(absl::StrCat(name, "/adam/", slot));
    }
    again.push_back(std::move(v));
  }
  ASSERT_TRUE(chief_->Initialize(8, again, back->vars.ints.at("global_step"), Deadline()).ok());
  // The worker's generation is stale now.
  absl::StatusOr<int64_t> stale = worker_->Push(Gradients{}, Deadline());
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  ASSERT_EQ(*worker_->WaitInitialized(8, Deadline()), 8u);
  Variables fresh;
  ASSERT_TRUE(worker_->Pull({"table", "kernel"}, {}, &fresh, Deadline()).ok());
  EXPECT_TRUE(fresh.floats.at("table") == t);
  EXPECT_EQ(*worker_->GlobalStep(Deadline()), 42);
}

TEST_F(PsClientTest, PushPullAnswersWithThePushApplied) {
  ASSERT_TRUE(chief_->Initialize(1, vars_, 0, Deadline()).ok());
  ASSERT_TRUE(worker_->WaitInitialized(1, Deadline()).ok());
  Reference ref = MakeReference();
  const RowMatrixXf &t = ref.t, &k = ref.k, &b = ref.b;
  std::mt19937 rng(5);
  Variables mirror;
  // Rows on both PS, and rows the push did not touch.
  const std::vector<int64_t> rows = {1, 4, kPartitionMinRows + 1, kPartitionMinRows + 2};
  for (int step = 0; step < 3; ++step) {
    absl::StatusOr<int64_t> gs = worker_->PushPull(StepGradients(step, &rng, &ref),
                                                   {"kernel", "bias"}, {{"table", rows}}, &mirror,
                                                   Deadline());
    ASSERT_TRUE(gs.ok()) << gs.status();
    EXPECT_EQ(*gs, step + 1);
    // The values pulled are those after this push (bitwise: same optimizer).
    EXPECT_TRUE(mirror.floats.at("kernel") == k) << step;
    EXPECT_TRUE(mirror.floats.at("bias") == b) << step;
    for (int64_t r : rows) EXPECT_TRUE(mirror.floats.at("table").row(r) == t.row(r)) << r;
    EXPECT_TRUE(mirror.floats.at("table").row(2).isZero());  // pushed, not pulled
  }
  // One call per PS and step: the pull rode on the push.
  for (auto& p : ps_) {
    EXPECT_EQ(p->service->push_times().calls, 3);
    EXPECT_EQ(p->service->pull_times().calls, 0);
  }
  // A bad pull is InvalidArgument before anything is sent.
  Gradients none;
  EXPECT_EQ(worker_->PushPull(none, {}, {{"table", {5, 3}}}, &mirror, Deadline()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*worker_->GlobalStep(Deadline()), 3);
}

TEST_F(PsClientTest, BadGradientsAreInvalidArgument) {
  ASSERT_TRUE(chief_->Initialize(1, vars_, 0, Deadline()).ok());
  Gradients g;
  g.dense["nope"] = RowMatrixXf::Ones(1, 1);
  absl::StatusOr<int64_t> s = chief_->Push(g, Deadline());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("'nope'"));
  g.dense.clear();
  g.dense["kernel"] = RowMatrixXf::Ones(20, 30);
  EXPECT_EQ(chief_->Push(g, Deadline()).status().code(), absl::StatusCode::kInvalidArgument);
  Variables mirror;
  EXPECT_EQ(chief_->Pull({}, {{"table", {5, 3}}}, &mirror, Deadline()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*chief_->GlobalStep(Deadline()), 0);
}

TEST_F(PsClientTest, FailedPreconditionBeforeInitialize) {
  Variables mirror;
  EXPECT_EQ(worker_->Pull({"kernel"}, {}, &mirror, Deadline()).code(),
            absl::StatusCode::kFailedPrecondition);
  // Waiting for an initialisation that does not come ends at the deadline.
  const absl::Time start = absl::Now();
  EXPECT_EQ(worker_->WaitInitialized(1, start + absl::Seconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(PsClientTest, WorkersWaitForTheChiefsInitialize) {
  absl::StatusOr<uint64_t> gen;
  std::thread waiter([&] { gen = worker_->WaitInitialized(3, Deadline()); });
  ASSERT_TRUE(chief_->Initialize(3, vars_, 0, Deadline()).ok());
  waiter.join();
  ASSERT_TRUE(gen.ok()) << gen.status();
  EXPECT_EQ(*gen, 3u);
}

TEST_F(PsClientTest, StoppedPsIsUnavailableNamingIt) {
  ASSERT_TRUE(chief_->Initialize(1, vars_, 0, Deadline()).ok());
  ps_[1]->Stop();
  Gradients g;
  g.sparse["table"] = {{1}, RowMatrixXf::Ones(1, 2)};  // row 1 lives on ps:1
  const absl::Time start = absl::Now();
  absl::StatusOr<int64_t> s = chief_->Push(g, start + absl::Seconds(10));
  EXPECT_THAT(s.status().code(),
              AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("Push to ps:1 at " + ps_[1]->address));
  EXPECT_LT(absl::Now() - start, absl::Seconds(11));
  Variables mirror;
  absl::Status p = chief_->Pull({}, {{"table", {3}}}, &mirror, absl::Now() + absl::Seconds(10));
  EXPECT_THAT(p.code(), AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(std::string(p.message()), HasSubstr("ps:1"));
}

TEST_F(PsClientTest, APsThatDiesUnderItsDataPlaneIsUnavailableNamingIt) {
  ASSERT_TRUE(chief_->Initialize(1, vars_, 0, Deadline()).ok());
  Gradients g;
  g.sparse["table"] = {{0}, RowMatrixXf::Ones(1, 2)};  // row 0 lives on ps:0
  ASSERT_TRUE(chief_->Push(g, Deadline()).ok());  // connected to its data plane
  ps_[0]->Stop();
  for (int call = 0; call < 2; ++call) {  // the broken connection, then a refused one
    const absl::Time start = absl::Now();
    absl::StatusOr<int64_t> s = chief_->Push(g, start + absl::Seconds(10));
    EXPECT_THAT(s.status().code(),
                AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded))
        << s.status();
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("Push to ps:0 at "));
    EXPECT_LT(absl::Now() - start, absl::Seconds(11));
  }
}

TEST_F(PsClientTest, CancelledCallsEndAtOnce) {
  CallCanceller canceller;
  PsClientOptions o;
  o.canceller = &canceller;
  std::unique_ptr<PsClient> c = *PsClient::Create({ps_[0]->address, ps_[1]->address}, o);
  canceller.CancelAll();
  EXPECT_EQ(c->WaitInitialized(1, Deadline()).status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace estuary
