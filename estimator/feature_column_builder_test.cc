#include "estimator/feature_column_builder.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

absl::Status BuildError(const std::string& text) {
  absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(json::parse(text));
  EXPECT_FALSE(set.ok()) << text;
  return set.status();
}

void ExpectError(const std::string& text, const std::string& want) {
  absl::Status st = BuildError(text);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr(want)) << text;
}

TEST(FeatureColumnBuilderTest, BuildsReferencesInAnyOrder) {
  absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(json::parse(R"([
    {"type": "indicator", "categorical_column": "country"},
    {"type": "categorical_with_vocabulary_list", "key": "country", "vocabulary_list": ["us", "fr"]},
    {"type": "numeric", "key": "age"},
    {"type": "bucketized", "source_column": "age", "boundaries": [18, 65]},
    {"type": "crossed", "keys": ["age_bucketized", "country"], "hash_bucket_size": 100},
    {"type": "embedding", "categorical_column": "age_bucketized_X_country", "dimension": 4}
  ])"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->names(), std::vector<std::string>({"country_indicator", "country", "age",
                                                     "age_bucketized", "age_bucketized_X_country",
                                                     "age_bucketized_X_country_embedding"}));
  EXPECT_EQ(set->DenseColumns().size(), 4u);
  EXPECT_TRUE(set->Find("age").ok());
  absl::StatusOr<ColumnPtr> missing = set->Find("agee");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("did you mean 'age'"));
}

TEST(FeatureColumnBuilderTest, ErrorsCarryJsonPaths) {
  ExpectError(R"([{"type": "numeric", "key": "a"},
                  {"type": "categorical_with_hash_bucket", "key": "h"}])",
              "$.feature_columns[1].hash_bucket_size: is required");
  ExpectError(R"([{"type": "numeric", "key": "age"},
                  {"type": "bucketized", "source_column": "agee", "boundaries": [1]}])",
              "$.feature_columns[1].source_column: unknown feature column 'agee'; did you mean "
              "'age'?");
  ExpectError(R"([{"type": "numeric", "key": "age"},
                  {"type": "bucketized", "source_column": "age", "boundaries": [2, 1]}])",
              "$.feature_columns[1].boundaries[1]: boundaries must be sorted");
  ExpectError(R"([{"type": "categorical_with_hash_bucket", "key": "h", "hash_bucket_size": 5},
                  {"type": "bucketized", "source_column": "h", "boundaries": [1]}])",
              "$.feature_columns[1].source_column: 'h' is not a numeric column");
  ExpectError(R"([{"type": "numeric", "key": "x"},
                  {"type": "indicator", "categorical_column": "x"}])",
              "$.feature_columns[1].categorical_column: 'x' is not a categorical column");
  ExpectError(R"([{"type": "numeric", "key": "x"}, {"type": "numeric", "key": "x"}])",
              "$.feature_columns[1].key: duplicate column name 'x'");
  ExpectError(R"([{"type": "categorical_with_vocabulary_list", "key": "v",
                   "vocabulary_list": ["a"], "num_oov_buckets": 1, "default_value": 0}])",
              "$.feature_columns[0].default_value: can't set both");
  ExpectError(R"([{"type": "categorical_with_vocabulary_list", "key": "v",
                   "vocabulary_list": ["a", "a"]}])",
              "$.feature_columns[0]: feature column 'v': duplicate vocabulary entry 'a'");
  ExpectError(R"([{"type": "categorical_with_identity", "key": "i", "num_buckets": 3,
                   "default_value": 3}])",
              "$.feature_columns[0].default_value: must be < num_buckets (3)");
  ExpectError(R"([{"type": "categorical_with_identity", "key": "i", "num_buckets": 3},
                  {"type": "embedding", "categorical_column": "i", "dimension": 2,
                   "combiner": "max"}])",
              "$.feature_columns[1].combiner: 'max' is not allowed; did you mean 'mean'?");
  ExpectError(R"([{"type": "numeric", "key": "x", "normalizer": {"mean": 1, "stdev": 2}}])",
              "$.feature_columns[0].normalizer.stdev: unknown key; did you mean 'stddev'?");
}

TEST(FeatureColumnBuilderTest, CrossedKeys) {
  // A hash bucket column named explicitly can't be crossed (as in TF).
  ExpectError(R"([{"type": "categorical_with_hash_bucket", "key": "h", "name": "hh",
                   "hash_bucket_size": 5},
                  {"type": "crossed", "keys": ["hh", "x"], "hash_bucket_size": 10}])",
              "$.feature_columns[1].keys[0]: 'hh' is a hash bucket column");
  // A column's own key means the raw feature, like a string key in TF.
  absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(json::parse(R"([
    {"type": "categorical_with_hash_bucket", "key": "h", "hash_bucket_size": 5},
    {"type": "crossed", "keys": ["h", "x"], "hash_bucket_size": 10}])"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->columns()[1]->name(), "h_X_x");
}

TEST(FeatureColumnBuilderTest, Cycles) {
  ExpectError(R"([{"type": "indicator", "categorical_column": "w", "name": "w"}])",
              "refers back to itself");
}

TEST(FeatureColumnBuilderTest, Int64VocabularyAndEmptySection) {
  absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(json::parse(R"([
    {"type": "categorical_with_vocabulary_list", "key": "n", "dtype": "int64",
     "vocabulary_list": ["5", "7"], "num_oov_buckets": 1}])"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->columns()[0]->num_buckets(), 3);
  ASSERT_TRUE(BuildFeatureColumns(json()).ok());
}

TEST(FeatureColumnBuilderTest, FromAJobFile) {
  nlohmann::json text = json::parse(R"({"model_dir": "m", "feature_columns": [
    {"type": "numeric", "key": "age", "normalizer": {"mean": 40, "stddev": 10}},
    {"type": "bucketized", "source_column": "age", "boundaries": [18, 30.5, 65]},
    {"type": "categorical_with_vocabulary_list", "key": "n", "dtype": "int64",
     "vocabulary_list": [3, 5, 9], "num_oov_buckets": 2},
    {"type": "categorical_with_hash_bucket", "key": "city", "hash_bucket_size": 100},
    {"type": "crossed", "keys": ["age_bucketized", "city"], "hash_bucket_size": 1000},
    {"type": "indicator", "categorical_column": "n"},
    {"type": "embedding", "categorical_column": "city", "dimension": 8, "combiner": "sqrtn",
     "max_norm": 2.5, "trainable": false},
    {"type": "weighted_categorical", "categorical_column": "n", "weight_feature_key": "nw"}
  ]})");
  absl::StatusOr<JobSpec> job = ParseJobSpec(text.dump(), "dir/job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(*job);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->columns().size(), 8u);
  EXPECT_EQ(set->columns()[2]->num_buckets(), 5);
  const EmbeddingSpec* e = GetEmbeddingSpec(*set->columns()[6]);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->combiner, Combiner::kSqrtn);
  EXPECT_FALSE(e->trainable);

  // A reference error carries the file, as the parse's errors do.
  text["feature_columns"][1]["source_column"] = "agee";
  job = ParseJobSpec(text.dump(), "dir/job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<FeatureColumnSet> bad = BuildFeatureColumns(*job);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "dir/job.json: $.feature_columns[1].source_column: unknown feature column 'agee'; "
            "did you mean 'age'?");
  text["feature_columns"][3].erase("hash_bucket_size");
  job = ParseJobSpec(text.dump(), "dir/job.json");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().message(),
            "dir/job.json: $.feature_columns[3].hash_bucket_size: is required (an integer)");
}

TEST(FeatureColumnBuilderTest, VocabularyFilesAreReadNextToTheJob) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(R"({"model_dir": "m", "feature_columns": [
    {"type": "categorical_with_vocabulary_file", "key": "f", "vocabulary_file": "v.txt"}]})",
                                             "dir/job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->feature_columns[0].vocabulary_file, "dir/v.txt");
}

}  // namespace
}  // namespace estuary
