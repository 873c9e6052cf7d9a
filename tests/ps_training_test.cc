// Parameter-server training as real processes (`estuary local`: a chief, 2
// workers and 2 PS tasks on loopback) against `estuary train` in one
// process, on the same generated click log (`estuary gen-data clicks`):
//  - a linear and a wide-and-deep classifier reach the one-process
//    result within a margin (kAucMargin, kLossMargin; why below);
//  - the cluster's checkpoint restores in one process (`estuary
//    evaluate`), and a one-process checkpoint starts a cluster, which
//    resumes from its step with its optimizer slots;
//  - every task, PS included, exits 0 at the end.
//
// The margin. Both runs take the same number of steps (max_steps) of the
// same batch size over the same data, but the cluster's are asynchronous:
// three trainers each read a third of the input (shuffled with seed +
// shard index) and each step's gradient is computed from variables that
// the other trainers' steps may have updated since they were pulled (with
// 3 trainers, a gradient is typically 1-2 updates stale, on a loaded
// machine a few more). Neither changes what the model converges to on this
// data, only the path: on an idle machine the gap is ~0.003 AUC and
// ~0.0005 log-loss. The margins (0.02 AUC, 0.01 loss) leave room for a
// loaded machine's bigger staleness, and still fail a cluster that does
// not train (AUC ~0.50, loss ~0.68) or applies updates wrongly.
#include <signal.h>

#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr double kAucMargin = 0.02;
constexpr double kLossMargin = 0.01;
constexpr int64_t kSteps = 300;

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

void RunOk(const std::vector<std::string>& argv, absl::Duration timeout = absl::Minutes(3)) {
  auto p = Proc::Start(argv);
  absl::StatusOr<int> code = p->Wait(timeout);
  ASSERT_TRUE(code.ok()) << p->Output();
  ASSERT_EQ(*code, 0) << p->Output();
}

class PsTrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string estuary = Runfile("cli/estuary");
    RunOk({estuary, "gen-data", "clicks", "--rows=20000", "--files=4", "--seed=1",
           "--model_seed=7", "--out", TmpDir() + "/clicks_train"});
    RunOk({estuary, "gen-data", "clicks", "--rows=5000", "--files=1", "--seed=2",
           "--model_seed=7", "--out", TmpDir() + "/clicks_eval"});
  }

  // A click-log job: the linear part on 10 hashed columns; the wide-and-deep
  // one adds a 16-8 DNN over 4-dim embeddings of 4 of them.
  static std::string Job(const std::string& name, bool wide_and_deep, int64_t max_steps,
                         const std::string& file = "") {
    nlohmann::json cols = nlohmann::json::array(), linear = nlohmann::json::array(),
                   dnn = nlohmann::json::array();
    for (int i = 1; i <= 10; ++i) {
      const std::string key = absl::StrCat("C", i);
      cols.push_back({{"type", "categorical_with_hash_bucket"},
                      {"key", key},
                      {"hash_bucket_size", 1000}});
      linear.push_back(key);
      if (i <= 4) {
        cols.push_back({{"type", "embedding"}, {"categorical_column", key}, {"dimension", 4}});
        dnn.push_back(key + "_embedding");
      }
    }
    nlohmann::json defaults = nlohmann::json::array({0});
    for (int i = 0; i < 13; ++i) defaults.push_back(0.0);
    for (int i = 0; i < 26; ++i) defaults.push_back("");
    nlohmann::json est = {{"type", "linear_classifier"}, {"linear_feature_columns", linear}};
    if (wide_and_deep) {
      est = {{"type", "dnn_linear_combined_classifier"},
             {"linear_feature_columns", linear},
             {"dnn_feature_columns", dnn},
             {"hidden_units", {16, 8}},
             {"linear_optimizer", {{"type", "ftrl"}, {"learning_rate", 0.1}}},
             {"dnn_optimizer", {{"type", "adagrad"}, {"learning_rate", 0.05}}}};
    }
    auto input = [&](const std::string& dir, int batch, int epochs) {
      return nlohmann::json{{"format", "csv"},
                            {"files", {TmpDir() + "/" + dir + "/*.csv"}},
                            {"header", true},
                            {"column_defaults", defaults},
                            {"label_key", "label"},
                            {"batch_size", batch},
                            {"num_epochs", epochs},
                            {"shuffle_buffer_size", 1000}};
    };
    const nlohmann::json job = {
        {"model_dir", TmpDir() + "/" + name},
        {"estimator", est},
        {"feature_columns", cols},
        {"train_input", input("clicks_train", 128, -1)},
        {"eval_input", input("clicks_eval", 500, 1)},
        {"run_config",
         {{"tf_random_seed", 3}, {"save_checkpoints_steps", 100}, {"log_step_count_steps", 50}}},
        {"train_spec", {{"max_steps", max_steps}}},
        {"eval_spec", {{"steps", nullptr}}}};
    nlohmann::json j = job;
    // Fault tests: a dead task is noticed within 5 s.
    j["distribution"] = {{"heartbeat_interval_secs", 0.5}, {"heartbeat_timeout_secs", 5}};
    return WriteTempFile((file.empty() ? name : file) + ".json", j.dump(1));
  }

  struct Metrics {
    double auc = -1, loss = -1;
    int64_t global_step = -1;
  };
  // The metrics `estuary evaluate` (or train) printed last.
  static Metrics LastMetrics(Proc& p) {
    Metrics m;
    const std::regex auc("(^|, )auc = ([0-9.e-]+)"), loss("average_loss = ([0-9.e-]+)"),
        step("global_step = ([0-9]+)");
    std::smatch match;
    std::istringstream lines(p.Output());
    for (std::string l; std::getline(lines, l);) {
      if (!std::regex_search(l, match, auc)) continue;
      m.auc = std::stod(match[2]);
      if (std::regex_search(l, match, loss)) m.loss = std::stod(match[1]);
      if (std::regex_search(l, match, step)) m.global_step = std::stoll(match[1]);
    }
    return m;
  }

  static Metrics TrainOneProcess(const std::string& job) {
    auto p = Proc::Start({Runfile("cli/estuary"), "train", job});
    absl::StatusOr<int> code = p->Wait(absl::Minutes(3));
    EXPECT_TRUE(code.ok() && *code == 0) << p->Output();
    return LastMetrics(*p);
  }

  // chief + 2 workers + 2 PS; every task must exit 0.
  static std::unique_ptr<Proc> TrainCluster(const std::string& job) {
    auto p = Proc::Start({Runfile("cli/estuary"), "local", job, "--workers=2", "--ps=2",
                          "--timeout=150"});
    absl::StatusOr<int> code = p->Wait(absl::Minutes(3));
    EXPECT_TRUE(code.ok() && *code == 0) << p->Output();
    EXPECT_TRUE(p->HasLine("5 of 5 tasks exited 0")) << p->Output();
    return p;
  }

  static Metrics Evaluate(const std::string& job) {
    auto p = Proc::Start({Runfile("cli/estuary"), "evaluate", job});
    absl::StatusOr<int> code = p->Wait(absl::Minutes(2));
    EXPECT_TRUE(code.ok() && *code == 0) << p->Output();
    return LastMetrics(*p);
  }

  static void ExpectClose(const Metrics& cluster, const Metrics& one, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_GE(cluster.global_step, kSteps);
    EXPECT_NEAR(cluster.auc, one.auc, kAucMargin);
    EXPECT_NEAR(cluster.loss, one.loss, kLossMargin);
    EXPECT_GT(one.auc, 0.6);  // both learned (an untrained model: ~0.5)
  }
};

TEST_F(PsTrainingTest, LinearMatchesOneProcessAndCheckpointsRoundTrip) {
  const Metrics one = TrainOneProcess(Job("linear_one", false, kSteps));
  ASSERT_EQ(one.global_step, kSteps);

  // A cluster's checkpoint restores in one process (`estuary evaluate`).
  const std::string cluster_job = Job("linear_cluster", false, kSteps);
  auto cluster = TrainCluster(cluster_job);
  EXPECT_TRUE(cluster->HasLine("[worker:0] ps tasks initialized")) << cluster->Output();
  EXPECT_TRUE(cluster->HasLine("training finished: final checkpoint at global_step"))
      << cluster->Output();
  ExpectClose(Evaluate(cluster_job), one, "linear");

  // A one-process checkpoint starts a cluster: it resumes at step 300 with
  // the FTRL slots and trains on to 400.
  auto resumed = TrainCluster(Job("linear_one", false, kSteps + 100));
  EXPECT_TRUE(resumed->HasLine("restoring parameters from")) << resumed->Output();
  EXPECT_TRUE(resumed->HasLine(absl::StrCat("at global_step ", kSteps, " (generation 1")))
      << resumed->Output();
  const Metrics after = Evaluate(Job("linear_one", false, kSteps + 100));
  EXPECT_GE(after.global_step, kSteps + 100);
  EXPECT_NEAR(after.auc, one.auc, kAucMargin);
}

TEST_F(PsTrainingTest, WideAndDeepMatchesOneProcess) {
  const Metrics one = TrainOneProcess(Job("wd_one", true, kSteps));
  ASSERT_EQ(one.global_step, kSteps);
  const std::string cluster_job = Job("wd_cluster", true, kSteps);
  TrainCluster(cluster_job);
  ExpectClose(Evaluate(cluster_job), one, "wide and deep");
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

std::map<std::string, std::unique_ptr<Proc>> StartAll(const TestCluster& cluster,
                                                      const std::string& job) {
  std::map<std::string, std::unique_ptr<Proc>> procs;
  for (const std::string t : {"ps:0", "ps:1", "chief:0", "worker:0", "worker:1"}) {
    procs[t] = cluster.StartTask(t, job);
  }
  return procs;
}

// kill -9 of a worker: a new incarnation rejoins (as `estuary local
// --restart_failed` or Kubernetes restarts it) and trains; a worker that
// stays dead does not stop the others, and the job ends with every live
// task exiting 0.
TEST_F(PsTrainingTest, KilledWorkersRejoinOrAreLeftBehind) {
  const std::string job = Job("worker_kill", false, 1500);
  TestCluster cluster(1, 2, 2);
  auto procs = StartAll(cluster, job);
  ASSERT_TRUE(procs["worker:1"]->WaitForLine("[worker:1] loss = ", absl::Minutes(1)))
      << procs["worker:1"]->Output();
  procs["worker:1"]->Signal(SIGKILL);
  ASSERT_EQ(*procs["worker:1"]->Wait(absl::Seconds(30)), 128 + SIGKILL);

  procs["worker:1"] = cluster.StartTask("worker:1", job);
  ASSERT_TRUE(procs["worker:1"]->WaitForLine("ps tasks initialized", absl::Minutes(1)))
      << procs["worker:1"]->Output();
  ASSERT_TRUE(procs["worker:0"]->WaitForLine("[worker:0] loss = ", absl::Minutes(1)))
      << procs["worker:0"]->Output();
  procs["worker:0"]->Signal(SIGKILL);
  ASSERT_EQ(*procs["worker:0"]->Wait(absl::Seconds(30)), 128 + SIGKILL);

  for (const std::string t : {"chief:0", "worker:1", "ps:0", "ps:1"}) {
    absl::StatusOr<int> code = procs[t]->Wait(absl::Minutes(2));
    ASSERT_TRUE(code.ok()) << t << "\n" << procs[t]->Output();
    EXPECT_EQ(*code, 0) << t << "\n" << procs[t]->Output();
  }
  EXPECT_GE(LastNumberAfter(*procs["chief:0"], "final checkpoint at global_step "), 1500)
      << procs["chief:0"]->Output();
}

// kill -9 of the chief: every other task exits non-zero within its
// heartbeat deadline; relaunching the job resumes from the last checkpoint
// and finishes, every task exiting 0.
TEST_F(PsTrainingTest, KilledChiefFailsEveryTaskAndARelaunchResumes) {
  const std::string job = Job("chief_kill", false, 1000000);
  TestCluster cluster(1, 2, 2);
  auto procs = StartAll(cluster, job);
  ASSERT_TRUE(procs["chief:0"]->WaitForLine("saving checkpoints for ", absl::Minutes(1)))
      << procs["chief:0"]->Output();
  procs["chief:0"]->Signal(SIGKILL);
  ASSERT_EQ(*procs["chief:0"]->Wait(absl::Seconds(30)), 128 + SIGKILL);
  for (const std::string t : {"worker:0", "worker:1", "ps:0", "ps:1"}) {
    absl::StatusOr<int> code = procs[t]->Wait(absl::Seconds(60));
    ASSERT_TRUE(code.ok()) << t << "\n" << procs[t]->Output();
    EXPECT_EQ(*code, 1) << t << "\n" << procs[t]->Output();
  }
  const int64_t saved = LastNumberAfter(*procs["chief:0"], "saving checkpoints for ");
  ASSERT_GT(saved, 0);

  const std::string relaunch = Job("chief_kill", false, saved + 300, "chief_kill_relaunch");
  procs = StartAll(cluster, relaunch);
  for (const std::string t : {"chief:0", "worker:0", "worker:1", "ps:0", "ps:1"}) {
    absl::StatusOr<int> code = procs[t]->Wait(absl::Minutes(2));
    ASSERT_TRUE(code.ok()) << t << "\n" << procs[t]->Output();
    EXPECT_EQ(*code, 0) << t << "\n" << procs[t]->Output();
  }
  Proc& chief = *procs["chief:0"];
  EXPECT_GE(LastNumberAfter(chief, "\\(global_step "), saved) << chief.Output();
  EXPECT_GE(LastNumberAfter(chief, "final checkpoint at global_step "), saved + 300)
      << chief.Output();
}

// kill -9 of a PS: the chief sees its next pull or push fail, and once the
// PS is back (a new, empty process) reinitialises every PS from the last
// checkpoint with generation 2; the workers wait for that generation, and
// training resumes from the checkpoint's step and finishes, every task
// exiting 0.
TEST_F(PsTrainingTest, KilledPsIsReinitialisedFromTheLastCheckpoint) {
  const std::string job = Job("ps_kill", false, 2000);
  TestCluster cluster(1, 2, 2);
  auto procs = StartAll(cluster, job);
  ASSERT_TRUE(procs["chief:0"]->WaitForLine("saving checkpoints for ", absl::Minutes(1)))
      << procs["chief:0"]->Output();
  procs["ps:1"]->Signal(SIGKILL);
  ASSERT_EQ(*procs["ps:1"]->Wait(absl::Seconds(30)), 128 + SIGKILL);
  procs["ps:1"] = cluster.StartTask("ps:1", job);
  ASSERT_TRUE(procs["chief:0"]->WaitForLine("(generation 2", absl::Minutes(1)))
      << procs["chief:0"]->Output();
  for (const std::string t : {"chief:0", "worker:0", "worker:1", "ps:0", "ps:1"}) {
    absl::StatusOr<int> code = procs[t]->Wait(absl::Minutes(2));
    ASSERT_TRUE(code.ok()) << t << "\n" << procs[t]->Output();
    EXPECT_EQ(*code, 0) << t << "\n" << procs[t]->Output();
  }
  Proc& chief = *procs["chief:0"];
  EXPECT_TRUE(chief.HasLine("reinitialising them from the latest checkpoint as generation 2"))
      << chief.Output();
  EXPECT_GE(LastNumberAfter(chief, "final checkpoint at global_step "), 2000) << chief.Output();
  EXPECT_GE(Evaluate(job).global_step, 2000);
}

}  // namespace
}  // namespace estuary::testing
