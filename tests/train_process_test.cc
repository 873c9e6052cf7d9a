// `estuary train` as a real process: Fashion-MNIST accuracy (the dataset's
// own benchmark MLP reaches 0.8833), and kill -9 at random points of a
// checkpointed run followed by a restart that resumes from the last
// complete checkpoint.
#include <signal.h>

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

}  // namespace
}  // namespace estuary::testing
