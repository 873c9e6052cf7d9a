// multi_worker_mirrored training as real processes: a chief and one worker
// (the chief and worker binaries, through `estuary local` or started one by
// one) all-reducing over the TCP ring.
//  (a) Same model as one process: 2 ranks x per-replica batch B, reading
//      one CSV file sharded by record without shuffling, end after N steps
//      with the variables `estuary train` computes with batch 2B (the
//      final checkpoints compared; tolerance below).
//  (b) kill -9 of the worker at a random step under `estuary local
//      --restart_failed`: the chief re-forms the ring at generation 2 with
//      the worker's new incarnation, restores the last checkpoint, and the
//      job ends at max_steps with every task exiting 0.
//  (c) The same without a restart: the chief waits startup_timeout for the
//      worker, then exits 1 with one line naming worker:0; nothing is left
//      running.
//  (d) SIGSTOP of the worker: the chief's collective fails with
//      DeadlineExceeded naming worker:0 (collective_timeout_secs 2), then
//      the chief exits 1 as in (c).
//  (e) kill -9 of the chief: the worker exits 1.
// Never a hang: every wait here has a deadline.
//
// The tolerance of (a). Shard i of 2 keeps records i, i+2, ... of the file,
// so step s of the cluster reads exactly the records of the one-process
// step s, split in two halves. The gradients are mathematically equal (the
// mean over 2B examples = the mean of the two ranks' means over B), but
// float32 sums run in another order: Eigen sums B examples per rank and
// the ring adds the two, where one process sums 2B at once. Each step thus
// differs by a few ulps (~1e-7 relative) per gradient element, and
// Adagrad's updates carry that forward without amplifying it (no
// division by a near-zero accumulator: it starts at 0.1). After 40 steps
// the largest difference measured was ~1e-6 (see the test's log); the
// bound, 1e-5 absolute + 1e-4 relative, is ~10x that and still catches a
// cluster that skips a step, double-applies one, or reads other records
// (those differ by >1e-3).
#include <signal.h>

#include <cmath>
#include <random>
#include <regex>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr int kRows = 4096;
constexpr int kFeatures = 4;

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

int RandomOccurrence(int max) {
  std::random_device rd;
  return 1 + static_cast<int>(rd() % static_cast<unsigned>(max));
}

// A deterministic data set: x ~ N(0, 1)^4, label = [w.x + noise > 0].
std::string WriteData() {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  std::ostringstream csv;
  csv << "label";
  for (int j = 0; j < kFeatures; ++j) csv << ",x" << j;
  csv << "\n";
  const double w[kFeatures] = {1.5, -2.0, 0.7, 0.3};
  for (int i = 0; i < kRows; ++i) {
    double x[kFeatures], z = 0.3 * normal(rng);
    for (int j = 0; j < kFeatures; ++j) {
      x[j] = normal(rng);
      z += w[j] * x[j];
    }
    csv << (z > 0 ? 1 : 0);
    for (int j = 0; j < kFeatures; ++j) csv << "," << x[j];
    csv << "\n";
  }
  return WriteTempFile("mwms_data.csv", csv.str());
}

struct JobOptions {
  std::string name;
  int batch_size = 32;
  int64_t max_steps = 40;
  bool cluster = true;  // strategy multi_worker_mirrored (else auto: one process)
  int64_t save_checkpoints_steps = 100;
  int64_t log_step_count_steps = 100;
  double collective_timeout_secs = 30;
  double startup_timeout_secs = 30;
  std::vector<int> hidden_units = {16, 8};
  std::string communication = "auto";  // distribution.communication
};

std::string Job(const std::string& data, const JobOptions& o) {
  nlohmann::json cols = nlohmann::json::array(), defaults = nlohmann::json::array({0});
  for (int j = 0; j < kFeatures; ++j) {
    cols.push_back({{"type", "numeric"}, {"key", absl::StrCat("x", j)}});
    defaults.push_back(0.0);
  }
  nlohmann::json job = {
      {"model_dir", TmpDir() + "/" + o.name},
      {"estimator",
       {{"type", "dnn_classifier"},
        {"hidden_units", o.hidden_units},
        {"optimizer", {{"type", "adagrad"}, {"learning_rate", 0.1}}}}},
      {"feature_columns", cols},
      {"train_input",
       {{"format", "csv"},
        {"files", {data}},
        {"header", true},
        {"column_defaults", defaults},
        {"label_key", "label"},
        {"batch_size", o.batch_size},
        {"num_epochs", -1},
        {"shard", "auto"}}},
      {"run_config",
       {{"tf_random_seed", 3},
        {"save_checkpoints_steps", o.save_checkpoints_steps},
        {"log_step_count_steps", o.log_step_count_steps}}},
      {"train_spec", {{"max_steps", o.max_steps}}},
      {"distribution",
       {{"strategy", o.cluster ? "multi_worker_mirrored" : "auto"},
        {"communication", o.communication},
        {"heartbeat_interval_secs", 0.5},
        {"heartbeat_timeout_secs", 5},
        {"startup_timeout_secs", o.startup_timeout_secs},
        {"shutdown_timeout_secs", 5},
        {"collective_timeout_secs", o.collective_timeout_secs}}}};
  return WriteTempFile(o.name + ".json", job.dump(1));
}

checkpoint::RestoredCheckpoint Latest(const std::string& name) {
  absl::StatusOr<checkpoint::RestoredCheckpoint> r =
      checkpoint::RestoreLatest(TmpDir() + "/" + name);
  EXPECT_TRUE(r.ok()) << name << ": " << r.status();
  return r.ok() ? *std::move(r) : checkpoint::RestoredCheckpoint{};
}

// The number after the last "<prefix>" in `p`'s output, or -1.
int64_t LastNumberAfter(Proc& p, const std::string& prefix) {
  const std::regex re(prefix + "(\\d+)");
  int64_t last = -1;
  std::smatch m;
  std::istringstream lines(p.Output());
  for (std::string l; std::getline(lines, l);) {
    if (std::regex_search(l, m, re)) last = std::stoll(m[1]);
  }
  return last;
}

class MwmsTrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = new std::string(WriteData()); }
  static std::string* data_;
};
std::string* MwmsTrainingTest::data_ = nullptr;

// (a)
TEST_F(MwmsTrainingTest, TwoRanksEqualOneProcessWithTheGlobalBatch) {
  constexpr int kB = 32;
  constexpr int64_t kN = 40;
  JobOptions one{.name = "one", .batch_size = 2 * kB, .max_steps = kN, .cluster = false};
  auto train = Proc::Start({Runfile("cli/estuary"), "train", Job(*data_, one)});
  absl::StatusOr<int> code = train->Wait(absl::Minutes(2));
  ASSERT_TRUE(code.ok() && *code == 0) << train->Output();

  JobOptions two{.name = "two", .batch_size = kB, .max_steps = kN};
  auto local = Proc::Start({Runfile("cli/estuary"), "local", Job(*data_, two), "--workers=1",
                            "--ps=0", "--timeout=100"});
  code = local->Wait(absl::Minutes(2));
  ASSERT_TRUE(code.ok() && *code == 0) << local->Output();
  EXPECT_TRUE(local->HasLine("2 of 2 tasks exited 0")) << local->Output();
  EXPECT_TRUE(local->HasLine("[worker:0] ring generation 1 formed: rank 1 of 2"))
      << local->Output();
  // `auto` says which collective it took and why (this test's build and
  // machine: no CUDA, or no GPU).
  EXPECT_TRUE(local->HasLine(
      "[chief:0] all-reduce over the TCP ring: distribution.communication 'auto' and "))
      << local->Output();
  EXPECT_TRUE(
      local->HasLine(absl::StrCat("training finished: final checkpoint at global_step ", kN)))
      << local->Output();

  const checkpoint::RestoredCheckpoint a = Latest("one"), b = Latest("two");
  EXPECT_EQ(a.step, kN);
  EXPECT_EQ(b.step, kN);
  ASSERT_FALSE(a.vars.floats.empty());
  double max_diff = 0;
  for (const auto& [name, x] : a.vars.floats) {  // variables and optimizer slots
    SCOPED_TRACE(name);
    ASSERT_EQ(b.vars.floats.count(name), 1u);
    const RowMatrixXf& y = b.vars.floats.at(name);
    ASSERT_EQ(x.rows(), y.rows());
    ASSERT_EQ(x.cols(), y.cols());
    for (int64_t i = 0; i < x.size(); ++i) {
      const double d = std::abs(double{x.data()[i]} - y.data()[i]);
      max_diff = std::max(max_diff, d);
      ASSERT_LE(d, 1e-5 + 1e-4 * std::abs(x.data()[i])) << "element " << i;
    }
  }
  std::cout << "largest difference between the two runs' variables: " << max_diff << "\n";
}

// (b)
TEST_F(MwmsTrainingTest, KilledWorkerRestartsAndTheJobEndsAtMaxSteps) {
  // ~8000 steps/s on an idle machine: the kill (by loss line #5 at the
  // latest, step 1000) lands well before the end.
  JobOptions o{.name = "restart", .max_steps = 20000, .save_checkpoints_steps = 1000,
               .log_step_count_steps = 200};
  auto local = Proc::Start({Runfile("cli/estuary"), "local", Job(*data_, o), "--workers=1",
                            "--ps=0", "--restart_failed", "--timeout=100"});
  const int kill_at = RandomOccurrence(5);
  SCOPED_TRACE(absl::StrCat("worker:0 killed after its loss line #", kill_at));
  ASSERT_TRUE(local->WaitForLines("[worker:0] loss = ", kill_at, absl::Seconds(60)))
      << local->Output();
  const int64_t pid = LastNumberAfter(*local, "started worker:0 \\(pid ");
  ASSERT_GT(pid, 0) << local->Output();
  ASSERT_EQ(kill(static_cast<pid_t>(pid), SIGKILL), 0);
  absl::StatusOr<int> code = local->Wait(absl::Seconds(90));
  ASSERT_TRUE(code.ok()) << local->Output();
  EXPECT_EQ(*code, 0) << local->Output();
  EXPECT_TRUE(local->HasLine("restarting worker:0 (exit code 137")) << local->Output();
  EXPECT_TRUE(local->HasLine("re-forming the ring at generation 2")) << local->Output();
  EXPECT_TRUE(local->HasLine("2 of 2 tasks exited 0")) << local->Output();
  EXPECT_EQ(LastNumberAfter(*local, "final checkpoint at global_step "), o.max_steps)
      << local->Output();
  EXPECT_EQ(Latest("restart").step, o.max_steps);
}

// Starts the chief and worker:0 of a 2-rank cluster, waits for the worker's
// `occurrence`-th loss line.
struct TwoTasks {
  TestCluster cluster{1, 1, 0};
  std::unique_ptr<Proc> chief, worker;
};
std::unique_ptr<TwoTasks> StartTwo(const std::string& job, int occurrence) {
  auto t = std::make_unique<TwoTasks>();
  t->chief = t->cluster.StartTask("chief:0", job);
  t->worker = t->cluster.StartTask("worker:0", job);
  EXPECT_TRUE(t->worker->WaitForLines("loss = ", occurrence, absl::Seconds(60)))
      << t->chief->Output() << t->worker->Output();
  return t;
}

// (c)
TEST_F(MwmsTrainingTest, KilledWorkerWithoutRestartFailsTheChiefNamingIt) {
  JobOptions o{.name = "no_restart", .max_steps = 1000000, .startup_timeout_secs = 6};
  const int kill_at = RandomOccurrence(3);
  SCOPED_TRACE(absl::StrCat("worker:0 killed after its loss line #", kill_at));
  auto t = StartTwo(Job(*data_, o), kill_at);
  t->worker->Signal(SIGKILL);
  absl::StatusOr<int> worker = t->worker->Wait(absl::Seconds(30));
  ASSERT_TRUE(worker.ok());
  EXPECT_EQ(*worker, 128 + SIGKILL);
  const absl::Time killed = absl::Now();
  // Unavailable at once, then up to startup_timeout (6 s) for a new
  // incarnation, then the shutdown.
  absl::StatusOr<int> chief = t->chief->Wait(absl::Seconds(60));
  ASSERT_TRUE(chief.ok()) << t->chief->Output();
  EXPECT_EQ(*chief, 1) << t->chief->Output();
  EXPECT_LT(absl::Now() - killed, absl::Seconds(40));
  const std::string error = t->chief->FindLine("chief: error: ");
  EXPECT_NE(error.find("worker:0"), std::string::npos) << t->chief->Output();
  EXPECT_NE(error.find("re-forming the ring at generation 2"), std::string::npos)
      << t->chief->Output();
}

// (d)
TEST_F(MwmsTrainingTest, StoppedWorkerFailsTheChiefWithDeadlineExceededNamingIt) {
  JobOptions o{.name = "sigstop", .max_steps = 1000000, .collective_timeout_secs = 2,
               .startup_timeout_secs = 6};
  auto t = StartTwo(Job(*data_, o), 1);
  t->worker->Signal(SIGSTOP);
  absl::StatusOr<int> chief = t->chief->Wait(absl::Seconds(60));
  t->worker->Signal(SIGKILL);
  ASSERT_TRUE(t->worker->Wait(absl::Seconds(30)).ok());
  ASSERT_TRUE(chief.ok()) << t->chief->Output();
  EXPECT_EQ(*chief, 1) << t->chief->Output();
  const std::string failed = t->chief->FindLine("collective failed at ring generation 1");
  EXPECT_NE(failed.find("DEADLINE_EXCEEDED"), std::string::npos) << t->chief->Output();
  EXPECT_NE(failed.find("worker:0"), std::string::npos) << t->chief->Output();
  EXPECT_NE(t->chief->FindLine("chief: error: ").find("worker:0"), std::string::npos)
      << t->chief->Output();
}

// (e) kill -9 of the chief: the worker's collective fails at once, the
// coordination service is gone, and the worker exits 1 (within the
// heartbeat deadline at the latest), as under parameter_server.
TEST_F(MwmsTrainingTest, KilledChiefFailsTheWorker) {
  JobOptions o{.name = "chief_kill", .max_steps = 1000000};
  auto t = StartTwo(Job(*data_, o), RandomOccurrence(3));
  t->chief->Signal(SIGKILL);
  absl::StatusOr<int> chief = t->chief->Wait(absl::Seconds(30));
  ASSERT_TRUE(chief.ok());
  EXPECT_EQ(*chief, 128 + SIGKILL);
  const absl::Time killed = absl::Now();
  absl::StatusOr<int> worker = t->worker->Wait(absl::Seconds(60));
  ASSERT_TRUE(worker.ok()) << t->worker->Output();
  EXPECT_EQ(*worker, 1) << t->worker->Output();
  EXPECT_LT(absl::Now() - killed, absl::Seconds(30)) << t->worker->Output();
}

// (f)
TEST_F(MwmsTrainingTest, NcclWhereItCanNotRunFailsAtStartUpNamingTheField) {
  JobOptions o{.name = "nccl", .max_steps = 1000000, .communication = "nccl"};
  const std::string job = Job(*data_, o);
  TestCluster cluster(1, 1, 0);
  auto chief = cluster.StartTask("chief:0", job);
  auto worker = cluster.StartTask("worker:0", job);
  absl::StatusOr<int> chief_code = chief->Wait(absl::Seconds(60));
  absl::StatusOr<int> worker_code = worker->Wait(absl::Seconds(60));
  ASSERT_TRUE(chief_code.ok()) << chief->Output();
  ASSERT_TRUE(worker_code.ok()) << worker->Output();
  if (chief->HasLine("all-reduce over NCCL")) {
    GTEST_SKIP() << "this build and machine run NCCL (a GPU is visible); the refusal is for "
                    "builds and machines without it";
  }
  EXPECT_EQ(*chief_code, 1) << chief->Output();
  EXPECT_EQ(*worker_code, 1) << worker->Output();
  for (Proc* p : {chief.get(), worker.get()}) {
    // The task's own "error: ..." line, or (a worker the chief's failure
    // reached first) "leaving: the chief ended the job as failed: ...":
    // either names the field.
    const std::string error = p->FindLine("distribution.communication 'nccl' can not run here: ");
    EXPECT_NE(error, "") << p->Output();
    // Without CUDA in the build, or without a usable GPU.
    EXPECT_TRUE(error.find("this build has no CUDA") != std::string::npos ||
                error.find("no usable GPU") != std::string::npos ||
                error.find("no CUDA device visible") != std::string::npos)
        << error;
    EXPECT_FALSE(p->HasLine("loss = ")) << p->Output();
  }
}

}  // namespace
}  // namespace estuary::testing
