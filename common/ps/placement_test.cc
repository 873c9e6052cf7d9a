#include "common/ps/placement.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

TEST(PlacementTest, BalancesDenseByBytesLargestFirst) {
  // 100, 60, 50, 10 floats on 2 PS: 100 -> 0, 60 -> 1, 50 -> 1, 10 -> 0.
  std::vector<VariableSpec> specs = {
      {"a", 10, 1}, {"b", 50, 1}, {"c", 100, 1}, {"d", 60, 1}};
  Placement p = PlaceVariables(specs, 2);
  EXPECT_EQ(p.num_ps, 2);
  EXPECT_TRUE(p.row_partitioned.empty());
  EXPECT_EQ(p.dense_ps.at("c"), 0);
  EXPECT_EQ(p.dense_ps.at("d"), 1);
  EXPECT_EQ(p.dense_ps.at("b"), 1);
  EXPECT_EQ(p.dense_ps.at("a"), 0);
  EXPECT_EQ(p.BytesPerPs(specs), (std::vector<int64_t>{440, 440}));
}

TEST(PlacementTest, NotRoundRobin) {
  // TF's round-robin puts both big kernels on ps 0 (TF #45291).
  std::vector<VariableSpec> specs = {
      {"k0", 1000, 100}, {"b0", 1, 100}, {"k1", 1000, 100}, {"b1", 1, 100}};
  Placement p = PlaceVariables(specs, 2);
  EXPECT_NE(p.dense_ps.at("k0"), p.dense_ps.at("k1"));
}

TEST(PlacementTest, PartitionsBigRowSparseTablesByRowMod) {
  std::vector<VariableSpec> specs = {
      {"linear/weights", 1 << 20, 1, true},   // many rows
      {"emb", 1000, 512, true},               // 2 MB
      {"small_emb", 100, 8, true},            // small: whole
      {"dense", 100, 100, false},
  };
  Placement p = PlaceVariables(specs, 3);
  EXPECT_EQ(p.row_partitioned, (std::set<std::string>{"emb", "linear/weights"}));
  EXPECT_EQ(p.dense_ps.count("small_emb"), 1u);
  EXPECT_EQ(p.dense_ps.count("emb"), 0u);
  EXPECT_EQ(p.PsOfRow(7), 1);
  EXPECT_EQ(p.LocalRow(7), 2);
  // 1000 rows over 3: 334, 333, 333.
  EXPECT_EQ(p.LocalRows(1000, 0), 334);
  EXPECT_EQ(p.LocalRows(1000, 1), 333);
  EXPECT_EQ(p.LocalRows(1000, 2), 333);
  EXPECT_EQ(p.LocalRows(2, 2), 0);
  int64_t total = 0;
  for (int64_t b : p.BytesPerPs(specs)) total += b;
  EXPECT_EQ(total, ((1 << 20) + 1000 * 512 + 800 + 10000) * 4);
  // The two whole variables go to the least loaded PS (2 and 1 hold fewer
  // partitioned rows than 0).
  EXPECT_NE(p.dense_ps.at("dense"), 0);
}

TEST(PlacementTest, OnePsHoldsEverything) {
  std::vector<VariableSpec> specs = {{"a", 5, 5}, {"t", 1 << 17, 4, true}};
  Placement p = PlaceVariables(specs, 1);
  EXPECT_EQ(p.dense_ps.at("a"), 0);
  EXPECT_EQ(p.LocalRows(1 << 17, 0), 1 << 17);
  EXPECT_EQ(p.LocalRow(12345), 12345);
}

TEST(PlacementTest, Explains) {
  std::vector<VariableSpec> specs = {{"w", 4, 2}, {"t", 1 << 20, 1, true}};
  const std::string text = ExplainPlacement(PlaceVariables(specs, 2), specs);
  EXPECT_NE(text.find("ps:0"), std::string::npos) << text;
  EXPECT_NE(text.find("rows mod 2 on every ps"), std::string::npos) << text;
  EXPECT_NE(text.find("w  [4, 2]"), std::string::npos) << text;
}

}  // namespace
}  // namespace estuary
