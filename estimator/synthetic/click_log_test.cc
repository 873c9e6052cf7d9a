#include "estimator/synthetic/click_log.h"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_split.h"
#include "common/io/tfrecord.h"
#include "estimator/synthetic/zipf.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

TEST(ZipfTest, FollowsThePowerLaw) {
  ZipfDistribution zipf(1000, 1.1);
  std::mt19937_64 rng(7);
  std::map<int64_t, int> counts;
  constexpr int kDraws = 200000;
  for (int i = 0; i < kDraws; ++i) {
    const int64_t k = zipf(rng);
    ASSERT_GE(k, 1);
    ASSERT_LE(k, 1000);
    ++counts[k];
  }
  // P(1)/P(2) = 2^1.1 ≈ 2.14 and P(1)/P(10) = 10^1.1 ≈ 12.6.
  EXPECT_NEAR(static_cast<double>(counts[1]) / counts[2], std::pow(2.0, 1.1), 0.15);
  EXPECT_NEAR(static_cast<double>(counts[1]) / counts[10], std::pow(10.0, 1.1), 1.5);
}

TEST(ClickLogTest, RowsAreDeterministicAndLookLikeCriteo) {
  ClickLogGenerator a(42), b(42), c(43);
  ClickRow ra, rb, rc;
  int clicks = 0, missing_c23 = 0;
  double mean_p = 0;
  constexpr int kRows = 20000;
  for (int i = 0; i < kRows; ++i) {
    a.Row(i, &ra);
    b.Row(i, &rb);
    ASSERT_EQ(ra.label, rb.label);
    ASSERT_EQ(ra.cats, rb.cats);
    ASSERT_EQ(ra.ints, rb.ints);
    clicks += ra.label;
    mean_p += ra.probability;
    missing_c23 += ra.cats[22].empty();
    for (const std::string& cat : ra.cats) {
      if (!cat.empty()) {
        ASSERT_EQ(cat.size(), 8u);
      }
    }
  }
  c.Row(0, &rc);
  a.Row(0, &ra);
  EXPECT_TRUE(rc.cats != ra.cats || rc.ints != ra.ints) << "another seed, other rows";
  const double ctr = static_cast<double>(clicks) / kRows;
  EXPECT_GT(ctr, 0.15);
  EXPECT_LT(ctr, 0.45);
  EXPECT_NEAR(ctr, mean_p / kRows, 0.02) << "labels follow the hidden model";
  EXPECT_NEAR(static_cast<double>(missing_c23) / kRows, 0.76, 0.02);
}

TEST(ClickLogTest, LabelsAreLearnable) {
  // The hidden probability separates clicks from non-clicks: AUC of the
  // true probability well above 0.5.
  ClickLogGenerator gen(1);
  ClickRow row;
  std::vector<std::pair<double, int>> scored;
  for (int i = 0; i < 20000; ++i) {
    gen.Row(i, &row);
    scored.push_back({row.probability, row.label});
  }
  std::sort(scored.begin(), scored.end());
  double rank_sum = 0;
  int64_t pos = 0;
  for (size_t i = 0; i < scored.size(); ++i) {
    if (scored[i].second) {
      rank_sum += static_cast<double>(i + 1);
      ++pos;
    }
  }
  const int64_t neg = static_cast<int64_t>(scored.size()) - pos;
  const double auc = (rank_sum - pos * (pos + 1) / 2.0) / (static_cast<double>(pos) * neg);
  EXPECT_GT(auc, 0.7);
}

TEST(ClickLogTest, WritesShardedCsvWithHeader) {
  ClickLogOptions o;
  o.rows = 1001;
  o.num_files = 3;
  // Missing parents are created (as `estuary gen-data clicks --out` on a
  // fresh machine needs).
  o.out_dir = std::string(std::getenv("TEST_TMPDIR")) + "/fresh/parent/clicks";
  ASSERT_TRUE(WriteClickLog(o).ok());
  int64_t rows = 0;
  for (int f = 0; f < 3; ++f) {
    std::ifstream in(o.out_dir + "/clicks-0000" + std::to_string(f) + "-of-00003.csv");
    ASSERT_TRUE(in.good());
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line.rfind("label,I1,", 0), 0u);
    while (std::getline(in, line)) {
      std::vector<std::string> fields = absl::StrSplit(line, ',');
      ASSERT_EQ(fields.size(), 40u) << line;
      ++rows;
    }
  }
  EXPECT_EQ(rows, 1001);
  o.format = "tfrecord";
  o.out_dir += "_tfrecord";
  ASSERT_TRUE(WriteClickLog(o).ok());
  absl::StatusOr<std::vector<std::string>> records =
      io::ReadTFRecordFile(o.out_dir + "/clicks-00001-of-00003.tfrecord");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(records->size(), 334u);  // rows 333..666
  ClickRow row;
  ClickLogGenerator(o.seed).Row(333, &row);
  EXPECT_EQ(records->front(), ClickExample(row));
  o.format = "parquet";
  EXPECT_EQ(WriteClickLog(o).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace estuary
