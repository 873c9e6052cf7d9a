#include "estimator/embedding.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace estuary {
namespace {

CategoricalIds MakeIds(int64_t batch, std::vector<int64_t> rows, std::vector<int64_t> ids,
                       std::vector<float> weights = {}) {
  CategoricalIds c;
  c.batch_size = batch;
  c.num_buckets = 4;
  c.rows = std::move(rows);
  c.ids = std::move(ids);
  c.weights = std::move(weights);
  return c;
}

RowMatrixXf Table() {
  RowMatrixXf t(4, 2);
  t << 1, 2, 3, 4, 5, 6, 7, 8;
  return t;
}

TEST(EmbeddingTest, MeanDropsNegativeIdsAndEmptyRowsAreZero) {
  absl::StatusOr<RowMatrixXf> out =
      CombineEmbeddings(Table(), MakeIds(3, {0, 0, 2}, {0, 2, -1}), Combiner::kMean);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FLOAT_EQ((*out)(0, 0), 3.0f);
  EXPECT_FLOAT_EQ((*out)(0, 1), 4.0f);
  EXPECT_EQ((*out)(1, 0), 0.0f);
  EXPECT_EQ((*out)(2, 1), 0.0f);
}

TEST(EmbeddingTest, OutOfRangeIdIsInvalid) {
  EXPECT_FALSE(CombineEmbeddings(Table(), MakeIds(1, {0}, {4}), Combiner::kSum).ok());
  EXPECT_FALSE(CombineEmbeddings(Table(), MakeIds(1, {1}, {0}), Combiner::kSum).ok());
}

TEST(EmbeddingTest, GradientSumsDuplicateIds) {
  RowMatrixXf up(2, 2);
  up << 1, 1, 10, 10;
  absl::StatusOr<EmbeddingGrad> g =
      CombineEmbeddingsGrad(4, MakeIds(2, {0, 0, 1}, {3, 1, 3}), Combiner::kMean, up);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->ids, std::vector<int64_t>({1, 3}));
  EXPECT_FLOAT_EQ(g->grads(0, 0), 0.5f);
  EXPECT_FLOAT_EQ(g->grads(1, 0), 10.5f);
}

TEST(EmbeddingTest, SortedDistinctEqualsSortUnique) {
  EXPECT_TRUE(SortedDistinct({}).empty());
  EXPECT_EQ(SortedDistinct({5, -1, 5, 3, 1048575, 3, 0, -1}),
            (std::vector<int64_t>{-1, 0, 3, 5, 1048575}));
  std::mt19937_64 rng(7);
  for (int n : {1, 17, 256, 5000}) {
    std::vector<int64_t> ids(n);
    for (int64_t& id : ids) id = static_cast<int64_t>(rng() % (n / 3 + 2));
    std::vector<int64_t> want = ids;
    std::sort(want.begin(), want.end());
    want.erase(std::unique(want.begin(), want.end()), want.end());
    EXPECT_EQ(SortedDistinct(ids), want) << n;
  }
}

TEST(EmbeddingTest, ParseCombiner) {
  EXPECT_EQ(*ParseCombiner("sqrtn"), Combiner::kSqrtn);
  EXPECT_FALSE(ParseCombiner("max").ok());
  EXPECT_STREQ(CombinerName(Combiner::kMean), "mean");
}

}  // namespace
}  // namespace estuary
