#include "cli/ps_placement.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

TEST(PsPlacementTest, WideAndDeepJobPartitionsTablesAndBalancesKernels) {
  absl::StatusOr<JobSpec> job = LoadJobSpec("examples/clicks_wide_deep.json");
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<std::vector<VariableSpec>> specs = ModelVariableSpecs(*job);
  ASSERT_TRUE(specs.ok()) << specs.status();
  bool saw_embedding = false, saw_kernel = false;
  for (const VariableSpec& s : *specs) {
    if (s.name == "dnn/input_from_feature_columns/input_layer/C1_embedding/embedding_weights") {
      saw_embedding = true;
      EXPECT_TRUE(s.row_sparse);
      EXPECT_EQ(s.rows, 100000);
      EXPECT_EQ(s.cols, 8);
    }
    if (s.name == "dnn/hiddenlayer_1/kernel") {
      saw_kernel = true;
      EXPECT_FALSE(s.row_sparse);
    }
  }
  EXPECT_TRUE(saw_embedding);
  EXPECT_TRUE(saw_kernel);
  const Placement p = PlaceVariables(*specs, 2);
  EXPECT_TRUE(p.row_partitioned.count(
      "dnn/input_from_feature_columns/input_layer/C1_embedding/embedding_weights"));
  const std::vector<int64_t> bytes = p.BytesPerPs(*specs);
  EXPECT_LT(std::abs(bytes[0] - bytes[1]), bytes[0] / 50) << bytes[0] << " vs " << bytes[1];
  absl::StatusOr<std::string> text = ExplainPsPlacement(*job, 2);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("placement over 2 parameter server(s)"), std::string::npos);
}

}  // namespace
}  // namespace estuary
