#include "serving/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace serving {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, TfServingTextFormat) {
  absl::StatusOr<std::vector<ModelConfig>> m = ParseModelConfigText(R"(
    model_config_list {
      config {
        name: "titanic"
        base_path: "/models/titanic"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }
      }
      config {
        name: "clicks"
        base_path: "/models/clicks"
        model_version_policy { specific { versions: 3 versions: 5 } }
        version_labels { key: "stable" value: 3 }
      }
      config { name: "all" base_path: "/m/all" model_version_policy { all {} } }
    })", "models.config");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].name, "titanic");
  EXPECT_EQ((*m)[0].policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ((*m)[0].policy.num_versions, 2);
  EXPECT_EQ((*m)[1].policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ((*m)[1].policy.versions, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ((*m)[1].version_labels.at("stable"), 3);
  EXPECT_EQ((*m)[2].policy.kind, VersionPolicy::Kind::kAll);
}

TEST(ConfigTest, Json) {
  absl::StatusOr<std::vector<ModelConfig>> m = ParseModelConfigText(
      R"({"model_config_list": {"config": [{"name": "a", "base_path": "/a",
          "model_platform": "tensorflow"}]}})",
      "models.json");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)[0].base_path, "/a");
  EXPECT_EQ((*m)[0].policy.num_versions, 1);
}

TEST(ConfigTest, ErrorsNameTheFileAndField) {
  absl::Status st = ParseModelConfigText("model_config_list { config { nmae: \"a\" } }", "f.config")
                        .status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("f.config:1:"));
  EXPECT_THAT(st.message(), HasSubstr("nmae"));
  st = ParseModelConfigText(
           "model_config_list { config { name: \"a\" base_path: \"/a\" model_platform: \"caffe\" } }",
           "f.config")
           .status();
  EXPECT_THAT(st.message(), HasSubstr("model_config_list.config[0].model_platform"));
  EXPECT_THAT(ParseModelConfigText("", "f").status().message(), HasSubstr("has no config"));
  EXPECT_THAT(ParseModelConfigText("model_config_list { config { name: \"a\" } }", "f")
                  .status()
                  .message(),
              HasSubstr("base_path is empty"));
}

TEST(ConfigTest, BatchingParameters) {
  BatchingOptions defaults;
  absl::StatusOr<BatchingOptions> b = ParseBatchingText(
      "max_batch_size { value: 64 } batch_timeout_micros { value: 2000 } "
      "num_batch_threads { value: 3 }",
      "batching.config", defaults);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->max_batch_size, 64);
  EXPECT_EQ(b->batch_timeout, absl::Microseconds(2000));
  EXPECT_EQ(b->num_batch_threads, 3);
  EXPECT_EQ(b->max_enqueued_batches, defaults.max_enqueued_batches);
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseBatchingText("max_batch_size { value: 0 }", "b", defaults).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseBatchingText("max_batch_sizes { value: 1 }", "b", defaults).status()));
}

}  // namespace
}  // namespace serving
}  // namespace estuary
