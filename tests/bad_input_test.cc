// Bad input to every binary: a one-line error naming the problem, exit code
// 2, and no hang.
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr absl::Duration kBound = absl::Seconds(15);

struct Case {
  const char* name;
  const char* binary;  // runfile
  const char* tf_config;
  const char* job;      // job file contents; null: no --job flag
  const char* extra_flag;
  const char* error;
};

class BadInputTest : public ::testing::TestWithParam<Case> {};

constexpr char kGoodJob[] = R"({"model_dir": "/tmp/m", "distribution": {"startup_timeout_secs": 1}})";
constexpr char kTwoWorkers[] =
    R"({"cluster": {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]},
        "task": {"type": "worker", "index": 1}})";

TEST_P(BadInputTest, OneLineErrorAndExitCode2) {
  const Case& c = GetParam();
  std::vector<std::string> argv = {Runfile(c.binary)};
  if (c.job != nullptr) {
    argv.push_back(absl::StrCat("--job=", WriteTempFile(absl::StrCat(c.name, ".json"), c.job)));
  }
  if (c.extra_flag != nullptr) argv.push_back(c.extra_flag);
  std::map<std::string, std::string> env;
  env["TF_CONFIG"] = c.tf_config;
  auto p = Proc::Start(argv, env);
  absl::StatusOr<int> code = p->Wait(kBound);
  ASSERT_TRUE(code.ok()) << "hung: " << p->Output();
  EXPECT_EQ(*code, 2) << p->Output();
  std::vector<std::string> err = p->StderrLines();
  ASSERT_FALSE(err.empty()) << p->Output();
  bool found = false;
  for (const std::string& line : err) found |= line.find(c.error) != std::string::npos;
  EXPECT_TRUE(found) << "want: " << c.error << "\n" << p->Output();
  EXPECT_NE(err.back().find("error:"), std::string::npos) << p->Output();
}

INSTANTIATE_TEST_SUITE_P(
    Binaries, BadInputTest,
    ::testing::Values(
        Case{"malformed_tf_config", "worker/worker", R"({"cluster": )", kGoodJob, nullptr,
             "TF_CONFIG: not valid JSON"},
        Case{"missing_task", "worker/worker", R"({"cluster": {"worker": ["127.0.0.1:2"]}})",
             kGoodJob, nullptr, "TF_CONFIG: task is missing"},
        Case{"wrong_type", "worker/worker",
             R"({"cluster": {"worker": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": "0"}})",
             kGoodJob, nullptr, "task.index must be an integer, got string \"0\""},
        Case{"unknown_task_type", "ps/ps",
             R"({"cluster": {"worker": ["127.0.0.1:2"]}, "task": {"type": "parameter_server"}})",
             kGoodJob, nullptr, "task.type 'parameter_server' is unknown"},
        Case{"index_out_of_range", "worker/worker",
             R"({"cluster": {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]},
                 "task": {"type": "worker", "index": 3}})",
             kGoodJob, nullptr, "task.index 3 out of range: cluster has 2 'worker' tasks"},
        Case{"duplicate_addresses", "server/chief",
             R"({"cluster": {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:1"]},
                 "task": {"type": "chief"}})",
             kGoodJob, nullptr, "cluster.worker[0] '127.0.0.1:1' duplicates cluster.chief[0]"},
        Case{"wrong_binary", "ps/ps", kTwoWorkers, kGoodJob, nullptr,
             "TF_CONFIG task.type is 'worker' but this is the ps binary"},
        Case{"no_tf_config", "worker/worker", "", kGoodJob, nullptr, "TF_CONFIG is not set"},
        Case{"job_unknown_key", "worker/worker", kTwoWorkers,
             R"({"model_dir": "m", "run_config": {"save_checkpoint_steps": 5}})", nullptr,
             "$.run_config.save_checkpoint_steps: unknown key; did you mean 'save_checkpoints_steps'?"},
        Case{"job_missing_field", "worker/worker", kTwoWorkers, R"({"estimator": {"type": "dnn_classifier"}})",
             nullptr, "$.model_dir: is required"},
        Case{"job_wrong_type", "worker/worker", kTwoWorkers, R"({"model_dir": 3})", nullptr,
             "$.model_dir: expected a string, got number 3"},
        Case{"job_malformed", "worker/worker", kTwoWorkers, "{\"model_dir\": ", nullptr,
             "invalid JSON"},
        Case{"job_missing_file", "worker/worker", kTwoWorkers, nullptr, "--job=/nonexistent.json",
             "cannot read job file: cannot open '/nonexistent.json'"},
        Case{"strategy_mismatch", "worker/worker", kTwoWorkers,
             R"({"model_dir": "m", "distribution": {"strategy": "parameter_server"}})", nullptr,
             "'parameter_server' needs ps tasks"},
        Case{"unknown_flag", "server/chief", kTwoWorkers, kGoodJob, "--hold=3",
             "unknown flag --hold; did you mean 'hold_secs'?"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(UnreachableChiefTest, GivesUpAfterStartupTimeoutWithExit2) {
  // Nothing listens on the chief's (reserved) port: the worker gives up
  // after the job's start-up timeout (1 s) instead of hanging.
  TestCluster cluster(1, 2, 0);
  const std::string job = WriteTempFile("unreachable.json", kGoodJob);
  const absl::Time start = absl::Now();
  auto w = cluster.StartTask("worker:1", job);
  absl::StatusOr<int> code = w->Wait(kBound);
  ASSERT_TRUE(code.ok()) << "hung: " << w->Output();
  EXPECT_EQ(*code, 2) << w->Output();
  // It waited the start-up timeout out (kBound caught a hang above).
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));
  std::vector<std::string> err = w->StderrLines();
  ASSERT_FALSE(err.empty());
  EXPECT_NE(err.back().find(absl::StrCat("worker: error: cannot reach the chief chief:0 at ",
                                         *cluster.spec().Address({"chief", 0}))),
            std::string::npos)
      << w->Output();
}

TEST(HelpTest, EveryBinaryHasHelp) {
  for (const char* b : {"server/chief", "worker/worker", "ps/ps", "server/evaluator", "cli/estuary"}) {
    auto p = Proc::Start({Runfile(b), "--help"});
    absl::StatusOr<int> code = p->Wait(kBound);
    ASSERT_TRUE(code.ok()) << b;
    EXPECT_EQ(*code, 0) << p->Output();
    EXPECT_TRUE(p->HasLine("Usage:")) << p->Output();
  }
  auto p = Proc::Start({Runfile("cli/estuary"), "local", "--help"});
  ASSERT_EQ(*p->Wait(kBound), 0);
  EXPECT_TRUE(p->HasLine("--workers")) << p->Output();
}

TEST(ExplainConfigTest, SaysWhatEachTaskDoes) {
  const std::string job = WriteTempFile("explain.json", R"({"model_dir": "/tmp/m"})");
  auto p = Proc::Start(
      {Runfile("cli/estuary"), "explain-config", job},
      {{"TF_CONFIG",
        R"({"cluster":{"chief":["mnist-chief-0.kubeflow.svc:2222"],"ps":["mnist-ps-0.kubeflow.svc:2222"],
            "worker":["mnist-worker-0.kubeflow.svc:2222","mnist-worker-1.kubeflow.svc:2222"]},
            "task":{"type":"worker","index":1},"environment":"cloud"})"}});
  ASSERT_EQ(*p->Wait(kBound), 0) << p->Output();
  EXPECT_TRUE(p->HasLine("coordinator: chief:0 at mnist-chief-0.kubeflow.svc:2222")) << p->Output();
  EXPECT_TRUE(p->HasLine("strategy: parameter_server")) << p->Output();
  EXPECT_TRUE(p->HasLine("this process: worker:1, runs the `worker` binary")) << p->Output();
  EXPECT_TRUE(p->HasLine("holds a shard of the variables")) << p->Output();
}

TEST(ExplainConfigTest, PreciseErrorAndExit2) {
  auto p = Proc::Start({Runfile("cli/estuary"), "explain-config",
                        R"(--tf_config={"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 3}})"});
  ASSERT_EQ(*p->Wait(kBound), 2) << p->Output();
  EXPECT_TRUE(p->HasLine("estuary explain-config: error: TF_CONFIG: task.index 3 out of range: "
                         "cluster has 2 'worker' tasks"))
      << p->Output();
}

}  // namespace
}  // namespace estuary::testing
