// The acceptance run for a cluster: examples/fashion_mnist_cluster.json
// (the 256-128 DNN with Adam) on a chief, 2 workers and 1 PS trains to
// max_steps asynchronously and its final checkpoint, evaluated in one
// process, reaches >= 0.88 accuracy. Every task exits 0.
#include <fstream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

TEST(PsFashionMnistTest, TwoWorkersAndOnePsReachTheAccuracy) {
  std::ifstream in(Runfile("examples/fashion_mnist_cluster.json"));
  nlohmann::json job = nlohmann::json::parse(in);
  job["model_dir"] = absl::StrCat(std::getenv("TEST_TMPDIR"), "/fashion_cluster");
  const std::string path = WriteTempFile("fashion_cluster.json", job.dump(2));

  auto cluster = Proc::Start({Runfile("cli/estuary"), "local", path, "--workers=2", "--ps=1",
                              "--timeout=800"});
  absl::StatusOr<int> code = cluster->Wait(absl::Minutes(14));
  ASSERT_TRUE(code.ok()) << cluster->Output();
  ASSERT_EQ(*code, 0) << cluster->Output();
  EXPECT_TRUE(cluster->HasLine("4 of 4 tasks exited 0")) << cluster->Output();

  auto eval = Proc::Start({Runfile("cli/estuary"), "evaluate", path});
  code = eval->Wait(absl::Minutes(3));
  ASSERT_TRUE(code.ok() && *code == 0) << eval->Output();
  const std::regex re("^accuracy = ([0-9.]+), ");
  double accuracy = -1;
  std::smatch m;
  std::istringstream lines(eval->Output());
  for (std::string l; std::getline(lines, l);) {
    if (std::regex_search(l, m, re)) accuracy = std::stod(m[1]);
  }
  EXPECT_GE(accuracy, 0.88) << eval->Output();
}

}  // namespace
}  // namespace estuary::testing
