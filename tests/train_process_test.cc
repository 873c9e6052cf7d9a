// `estuary train` as a real process: Fashion-MNIST accuracy (the dataset's
// own benchmark MLP reaches 0.8833), and kill -9 at random points of a
// checkpointed run followed by a restart that resumes from the last
// complete checkpoint.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

std::string JobWithModelDir(const std::string& name, const std::string& model_dir,
                            const std::function<void(nlohmann::json&)>& edit = nullptr) {
  std::ifstream in(Runfile("examples/fashion_mnist_dnn.json"));
  nlohmann::json job = nlohmann::json::parse(in);
  job["model_dir"] = model_dir;
  if (edit) edit(job);
  return WriteTempFile(name, job.dump(2));
}

// The last "<prefix>N" number printed, or -1.
int64_t LastNumberAfter(Proc& p, const std::string& prefix) {
  const std::regex re(prefix + "(\\d+)");
  int64_t last = -1;
  std::smatch m;
  for (const std::string& line : p.StderrLines()) {
    if (std::regex_search(line, m, re)) last = std::stoll(m[1]);
  }
  return last;
}

TEST(TrainProcessTest, FashionMnistDnnReachesTheBenchmarkAccuracy) {
  const std::string job =
      JobWithModelDir("fashion.json", absl::StrCat(std::getenv("TEST_TMPDIR"), "/fashion_model"));
  auto p = Proc::Start({Runfile("cli/estuary"), "train", job});
  absl::StatusOr<int> code = p->Wait(absl::Minutes(10));
  ASSERT_TRUE(code.ok()) << p->Output();
  ASSERT_EQ(*code, 0) << p->Output();
  const std::regex re("^accuracy = ([0-9.]+), ");
  double accuracy = -1;
  std::smatch m;
  for (const std::string& line : {p->Output()}) {
    std::istringstream lines(line);
    std::string l;
    while (std::getline(lines, l)) {
      if (std::regex_search(l, m, re)) accuracy = std::stod(m[1]);
    }
  }
  EXPECT_GE(accuracy, 0.8833) << p->Output();

  // `estuary predict --out F`: one JSON object per test image, TF's keys.
  const std::string out = absl::StrCat(std::getenv("TEST_TMPDIR"), "/predictions.jsonl");
  auto predict = Proc::Start({Runfile("cli/estuary"), "predict", job,
                              "--predict_keys=class_ids,probabilities", "--out", out});
  code = predict->Wait(absl::Minutes(5));
  ASSERT_TRUE(code.ok()) << predict->Output();
  ASSERT_EQ(*code, 0) << predict->Output();
  std::ifstream lines(out);
  int64_t n = 0;
  for (std::string l; std::getline(lines, l); ++n) {
    const nlohmann::json j = nlohmann::json::parse(l);
    ASSERT_EQ(j.size(), 2u) << l;
    ASSERT_EQ(j["probabilities"].size(), 10u) << l;
    ASSERT_GE(j["class_ids"][0].get<int64_t>(), 0) << l;
    ASSERT_LT(j["class_ids"][0].get<int64_t>(), 10) << l;
  }
  EXPECT_EQ(n, 10000);
  EXPECT_NE(predict->Output().find("predicted 10000 examples"), std::string::npos)
      << predict->Output();
}

TEST(TrainProcessTest, KillDuringTrainingThenResumeFromTheLastCompleteCheckpoint) {
  const std::string model_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/kill_model");
  const std::string job = JobWithModelDir("kill.json", model_dir, [](nlohmann::json& j) {
    j["run_config"]["save_checkpoints_steps"] = 40;
    j["run_config"]["log_step_count_steps"] = 1000000;
    j["run_config"]["keep_checkpoint_max"] = 3;
  });
  std::mt19937 rng(12345);
  int64_t last_saved = -1;
  for (int round = 0; round < 4; ++round) {
    auto p = Proc::Start({Runfile("cli/estuary"), "train", job, "--max_steps=100000"});
    // Wait for a few checkpoints, then kill at a random moment (often in the
    // middle of the next checkpoint write).
    const int64_t target = std::max<int64_t>(last_saved, 0) + 40 * (2 + round);
    ASSERT_TRUE(p->WaitForLine(absl::StrCat("saving checkpoints for ", target), absl::Minutes(2)))
        << p->Output();
    const auto spin_until = std::chrono::steady_clock::now() +
                            std::chrono::microseconds(std::uniform_int_distribution<int>(0, 150000)(rng));
    while (std::chrono::steady_clock::now() < spin_until) {
    }
    p->Signal(SIGKILL);
    ASSERT_EQ(*p->Wait(absl::Seconds(30)), 128 + SIGKILL);
    last_saved = LastNumberAfter(*p, "saving checkpoints for ");
    ASSERT_GE(last_saved, target);
  }
  // The restart restores the newest complete checkpoint: at least the last
  // one announced (a later one may have completed before the kill).
  auto p = Proc::Start({Runfile("cli/estuary"), "train", job,
                        absl::StrCat("--max_steps=", last_saved + 80), "--noevaluate"});
  ASSERT_EQ(*p->Wait(absl::Minutes(2)), 0) << p->Output();
  const int64_t restored = LastNumberAfter(*p, "\\(global_step ");
  EXPECT_GE(restored, last_saved) << p->Output();
  EXPECT_LE(restored, last_saved + 40) << p->Output();
  EXPECT_TRUE(p->HasLine(absl::StrCat("loss for final step: global_step = ", last_saved + 80)))
      << p->Output();
}

// A small CSV of a learnable binary problem (y = [2a - b + (c == x) > 0.5]).
std::string WriteTinyData(const std::string& name, int rows) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::string text = "a,b,c,y\n";
  for (int i = 0; i < rows; ++i) {
    const float a = u(rng), b = u(rng);
    const bool x = i % 3 == 0;
    absl::StrAppend(&text, a, ",", b, ",", x ? "x" : "y", ",", 2 * a - b + x > 0.5f ? 1 : 0, "\n");
  }
  return WriteTempFile(name, text);
}

std::string TinyJob(const std::string& name, const std::string& model_dir, double throttle_secs) {
  const std::string data = WriteTinyData(name + ".csv", 400);
  nlohmann::json input = {{"format", "csv"},          {"files", {data}},
                          {"header", true},           {"column_defaults", {0.0, 0.0, "", 0}},
                          {"label_key", "y"},         {"batch_size", 32}};
  nlohmann::json train = input;
  train["num_epochs"] = -1;
  train["shuffle_buffer_size"] = 100;
  train["seed"] = 1;
  nlohmann::json job = {
      {"model_dir", model_dir},
      {"estimator", {{"type", "linear_classifier"}}},
      {"feature_columns",
       {{{"type", "numeric"}, {"key", "a"}},
        {{"type", "numeric"}, {"key", "b"}},
        {{"type", "categorical_with_vocabulary_list"}, {"key", "c"},
         {"vocabulary_list", {"x", "y"}}}}},
      {"train_input", train},
      {"eval_input", input},
      {"run_config",
       {{"save_checkpoints_steps", 50}, {"keep_checkpoint_max", 1}, {"tf_random_seed", 3}}},
      {"train_spec", {{"max_steps", 200}}},
      {"eval_spec", {{"steps", nullptr}, {"name", "tiny"}, {"throttle_secs", throttle_secs}}}};
  return WriteTempFile(name + ".json", job.dump(2));
}

TEST(TrainProcessTest, TrainAndEvaluateEvaluatesEachCheckpointAndTheFinalOne) {
  const std::string model_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/tae_model");
  auto p = Proc::Start({Runfile("cli/estuary"), "train_and_evaluate",
                        TinyJob("tae", model_dir, /*throttle_secs=*/0)});
  ASSERT_EQ(*p->Wait(absl::Minutes(2)), 0) << p->Output();
  EXPECT_TRUE(p->HasLine("start train and evaluate loop")) << p->Output();
  for (int step : {50, 100, 150, 200}) {
    EXPECT_TRUE(p->HasLine(absl::StrCat("saving dict for global step ", step, ": accuracy = ")))
        << step << "\n" << p->Output();
  }
  EXPECT_TRUE(p->HasLine("loss for final step: global_step = 200")) << p->Output();
  // The final metrics (printed, and logged); the model learned the rule.
  const std::regex accuracy("accuracy = ([0-9.e+-]+), .*global_step = 200");
  std::smatch m;
  const std::string output = p->Output();
  ASSERT_TRUE(std::regex_search(output, m, accuracy)) << output;
  EXPECT_GT(std::stod(m[1]), 0.8) << output;
  // Eval summaries in model_dir/eval_tiny.
  bool events = false;
  for (const auto& e : std::filesystem::directory_iterator(model_dir + "/eval_tiny")) {
    events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  }
  EXPECT_TRUE(events);
}

TEST(TrainProcessTest, TrainAndEvaluateThrottlesEvaluations) {
  const std::string model_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/tae_throttled");
  auto p = Proc::Start({Runfile("cli/estuary"), "train_and_evaluate",
                        TinyJob("throttled", model_dir, /*throttle_secs=*/600)});
  ASSERT_EQ(*p->Wait(absl::Minutes(2)), 0) << p->Output();
  EXPECT_TRUE(p->HasLine("skip the current checkpoint eval due to throttle secs (600 secs)"))
      << p->Output();
  EXPECT_TRUE(p->HasLine("saving dict for global step 50: ")) << p->Output();  // the first
  EXPECT_FALSE(p->HasLine("saving dict for global step 100:")) << p->Output();
  EXPECT_TRUE(p->HasLine("saving dict for global step 200: accuracy = ")) << p->Output();
  // Again: max_steps already reached, so it only evaluates what is there.
  auto again = Proc::Start({Runfile("cli/estuary"), "train_and_evaluate",
                            TinyJob("throttled", model_dir, 600)});
  ASSERT_EQ(*again->Wait(absl::Minutes(2)), 0) << again->Output();
  EXPECT_TRUE(again->HasLine("saving dict for global step 200: ")) << again->Output();
}

}  // namespace
}  // namespace estuary::testing
