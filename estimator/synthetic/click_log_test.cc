#include "estimator/synthetic/click_log.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/io/tfrecord.h"
#include "estimator/data/example_parser.h"
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

// Rows 0..2 of seed 42 (model_seed 0), as `estuary gen-data clicks --rows 3
// --seed 42` wrote them when this test was written: rows are a pure
// function of (seed, model_seed, index), so a shard can be regenerated, and
// a change of the generator shows here.
constexpr const char* kSeed42Rows[] = {
    "0,1,70,36,0,462,142,0,0,21,0,2,,,15f77a8a,5fdbb8ea,c4c9e609,69973c66,c2b24c5e,79433527,"
    "2c3e7817,53c06f4c,0e4ceb63,a4f7e398,dbafcda0,3a72ffdd,ed3032c6,1b65033d,943123ec,f62487ee,"
    "ebd0ca18,6ab3f111,bc2fd962,646fc549,4318c9b2,8dbf7010,,ea581782,da0bec8f,3b7dfbe0",
    "1,,10,44,0,2347,56,1,5,6,0,0,,,9bf87be4,8fc61f13,,18c7400b,3dc22ecc,c29d5f4e,ab77e195,"
    "2d99876f,0e4ceb63,e27122bd,dfb8d816,1ed407b0,ed3032c6,c58df248,df20bd0b,31d52814,ebd0ca18,"
    "7661116a,,6f53fb1a,fbefdbc3,8dbf7010,,6e6a2436,8da715e9,8ab592bd",
    "0,,3,8,5,1988,7,0,0,19,,1,,0,d302532e,41001585,7433c4b6,f63a74a6,98d93577,c13ed795,"
    "98901e6c,423b7b5e,c357b133,80dc2201,ecdf3324,88949e3f,646f0138,1b65033d,a4839062,e0bba59f,"
    "20c51348,7661116a,20b55e7e,14d6e6fc,6d52587d,56587627,,,,bed373c8",
};

// A CSV line parsed by the test itself (not by the writer's code) and
// compared with a generated row, field by field.
void ExpectRowIs(const std::string& line, const ClickRow& row) {
  const std::vector<std::string> f = absl::StrSplit(line, ',');
  ASSERT_EQ(f.size(), 1u + kClickIntFeatures + kClickCatFeatures) << line;
  EXPECT_EQ(f[0], row.label == 1 ? "1" : "0");
  for (int i = 0; i < kClickIntFeatures; ++i) {
    SCOPED_TRACE(absl::StrCat("I", i + 1));
    if (f[1 + i].empty()) {
      EXPECT_FALSE(row.ints[i].has_value());
      continue;
    }
    int64_t v = -1;
    ASSERT_TRUE(absl::SimpleAtoi(f[1 + i], &v)) << f[1 + i];
    ASSERT_TRUE(row.ints[i].has_value());
    EXPECT_EQ(*row.ints[i], v);
  }
  for (int c = 0; c < kClickCatFeatures; ++c) {
    EXPECT_EQ(row.cats[c], f[1 + kClickIntFeatures + c]) << "C" << c + 1;
  }
}

TEST(ClickLogTest, RowsArePinnedBySeed) {
  const ClickLogGenerator gen(42);
  ClickRow row;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(absl::StrCat("row ", i));
    gen.Row(i, &row);
    ExpectRowIs(kSeed42Rows[i], row);
    EXPECT_GT(row.probability, 0.0);
    EXPECT_LT(row.probability, 1.0);
  }
  // Another seed draws other rows; another model_seed other tokens.
  ClickRow other;
  ClickLogGenerator(43).Row(0, &other);
  gen.Row(0, &row);
  EXPECT_NE(other.cats, row.cats);
  ClickLogGenerator(42, 1).Row(0, &other);
  EXPECT_NE(other.cats, row.cats);
}

// Properties of the documented distribution, measured on 20000 rows:
// missing rates, 8-hex-digit tokens, Zipf-distributed categories, and
// labels drawn with the row's probability.
TEST(ClickLogTest, RowsFollowTheDocumentedDistribution) {
  const ClickLogGenerator gen(42);
  ClickRow row;
  constexpr int kRows = 20000;
  int missing_c23 = 0, missing_i12 = 0, missing_c1 = 0;
  std::map<std::string, int> c9;  // vocabulary of 3
  // Calibration: clicks and summed probabilities per probability decile.
  std::array<double, 10> clicks{}, expected{};
  std::array<int, 10> count{};
  for (int i = 0; i < kRows; ++i) {
    gen.Row(i, &row);
    missing_c23 += row.cats[22].empty();
    missing_c1 += row.cats[0].empty();
    missing_i12 += !row.ints[11].has_value();
    for (const std::string& cat : row.cats) {
      if (cat.empty()) continue;
      ASSERT_EQ(cat.size(), 8u) << cat;
      ASSERT_EQ(cat.find_first_not_of("0123456789abcdef"), std::string::npos) << cat;
    }
    for (const auto& v : row.ints) {
      if (v.has_value()) ASSERT_GE(*v, 0);
    }
    if (!row.cats[8].empty()) ++c9[row.cats[8]];
    const int decile = std::min(9, static_cast<int>(row.probability * 10));
    clicks[decile] += row.label;
    expected[decile] += row.probability;
    ++count[decile];
  }
  // The missing rates of click_log.cc's table (binomial sd < 0.004).
  EXPECT_NEAR(missing_c23 / static_cast<double>(kRows), 0.76, 0.02);
  EXPECT_NEAR(missing_i12 / static_cast<double>(kRows), 0.77, 0.02);
  EXPECT_EQ(missing_c1, 0);
  // C9 takes 3 values with Zipf(1.1) frequencies 1 : 2^-1.1 : 3^-1.1.
  ASSERT_EQ(c9.size(), 3u);
  std::vector<double> freq;
  for (const auto& [token, n] : c9) freq.push_back(n / static_cast<double>(kRows));
  std::sort(freq.rbegin(), freq.rend());
  const double h = 1 + std::pow(2.0, -1.1) + std::pow(3.0, -1.1);
  EXPECT_NEAR(freq[0], 1 / h, 0.015);
  EXPECT_NEAR(freq[1], std::pow(2.0, -1.1) / h, 0.015);
  EXPECT_NEAR(freq[2], std::pow(3.0, -1.1) / h, 0.015);
  // Labels are Bernoulli(probability): in every well-filled decile the click
  // rate matches the mean probability (5 binomial sd).
  int checked = 0;
  for (int d = 0; d < 10; ++d) {
    if (count[d] < 500) continue;
    ++checked;
    const double p = expected[d] / count[d];
    EXPECT_NEAR(clicks[d] / count[d], p, 5 * std::sqrt(p * (1 - p) / count[d]) + 1e-9)
        << "decile " << d << " (" << count[d] << " rows)";
  }
  EXPECT_GE(checked, 4);
  const double ctr = (clicks[0] + clicks[1] + clicks[2] + clicks[3] + clicks[4] + clicks[5] +
                      clicks[6] + clicks[7] + clicks[8] + clicks[9]) /
                     kRows;
  EXPECT_GT(ctr, 0.15);
  EXPECT_LT(ctr, 0.45);
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
  o.seed = 42;
  // Missing parents are created (as `estuary gen-data clicks --out` on a
  // fresh machine needs).
  o.out_dir = std::string(std::getenv("TEST_TMPDIR")) + "/fresh/parent/clicks";
  ASSERT_TRUE(WriteClickLog(o).ok());
  const ClickLogGenerator gen(42);
  ClickRow row;
  int64_t rows = 0;
  for (int f = 0; f < 3; ++f) {
    std::ifstream in(o.out_dir + "/clicks-0000" + std::to_string(f) + "-of-00003.csv");
    ASSERT_TRUE(in.good());
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, absl::StrJoin(ClickLogColumns(), ","));
    EXPECT_EQ(ClickLogColumns().size(), 40u);
    EXPECT_EQ(ClickLogColumns()[14], "C1");
    // File f holds rows [1001 f / 3, 1001 (f + 1) / 3), in order.
    int64_t index = 1001 * f / 3;
    while (std::getline(in, line)) {
      if (index < 3) EXPECT_EQ(line, kSeed42Rows[index]);
      gen.Row(index, &row);
      ExpectRowIs(line, row);
      ++index;
      ++rows;
    }
    EXPECT_EQ(index, 1001 * (f + 1) / 3);
  }
  EXPECT_EQ(rows, 1001);
}

// The TFRecord files hold one tf.train.Example per row, read back here with
// the input pipeline's Example parser: int64 label and I*, bytes C*, and a
// missing value left out (the parser's default fills it).
TEST(ClickLogTest, WritesExamplesTheParserReads) {
  ClickLogOptions o;
  o.rows = 1001;
  o.num_files = 3;
  o.seed = 42;
  o.format = "tfrecord";
  o.out_dir = std::string(std::getenv("TEST_TMPDIR")) + "/clicks_tfrecord";
  ASSERT_TRUE(WriteClickLog(o).ok());
  absl::StatusOr<std::vector<std::string>> records =
      io::ReadTFRecordFile(o.out_dir + "/clicks-00001-of-00003.tfrecord");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 334u);  // rows 333..666
  std::vector<data::FeatureSpec> features;
  const std::vector<std::string> cols = ClickLogColumns();
  features.push_back(data::FixedLenFeature{"label", DType::kInt64, {}, std::nullopt});
  for (int i = 0; i < kClickIntFeatures; ++i) {
    features.push_back(data::FixedLenFeature{cols[1 + i], DType::kInt64, {}, data::Int64Default(-1)});
  }
  for (int c = 0; c < kClickCatFeatures; ++c) {
    features.push_back(data::FixedLenFeature{cols[1 + kClickIntFeatures + c], DType::kString, {},
                                             data::StringDefault("")});
  }
  absl::StatusOr<data::ExampleParserSpec> spec = data::ExampleParserSpec::Create(features);
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<FeatureMap> parsed = data::ParseExamples(*spec, *records);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const ClickLogGenerator gen(42);
  ClickRow row;
  for (int r = 0; r < 334; ++r) {
    gen.Row(333 + r, &row);
    ASSERT_EQ(std::get<Tensor>(parsed->at("label")).ints[r], row.label) << r;
    for (int i = 0; i < kClickIntFeatures; ++i) {
      ASSERT_EQ(std::get<Tensor>(parsed->at(cols[1 + i])).ints[r], row.ints[i].value_or(-1))
          << "row " << 333 + r << " " << cols[1 + i];
    }
    for (int c = 0; c < kClickCatFeatures; ++c) {
      ASSERT_EQ(std::get<Tensor>(parsed->at(cols[1 + kClickIntFeatures + c])).strings[r],
                row.cats[c])
          << "row " << 333 + r << " " << cols[1 + kClickIntFeatures + c];
    }
  }
  o.format = "parquet";
  EXPECT_EQ(WriteClickLog(o).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace estuary
