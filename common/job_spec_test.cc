#include "common/job_spec.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

void ExpectError(const std::string& json, const std::string& want) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(json, "job.json");
  ASSERT_FALSE(job.ok()) << json;
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(job.status().message().find(want), absl::string_view::npos)
      << "got: " << job.status().message() << "\nwant: " << want;
}

TEST(JobSpecTest, FullJobParsesWithDefaults) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(R"({
    "model_dir": "/tmp/m",
    "estimator": {"type": "dnn_classifier", "hidden_units": [256, 128], "n_classes": 10,
                  "optimizer": {"type": "adagrad", "learning_rate": 0.05}},
    "feature_columns": [{"type": "numeric", "key": "pixels", "shape": [784]}],
    "train_input": {"format": "idx", "images": "a.gz", "labels": "b.gz", "batch_size": 64},
    "run_config": {"save_checkpoints_steps": 500, "keep_checkpoint_max": 3},
    "train_spec": {"max_steps": 1000},
    "eval_spec": {"steps": 10, "throttle_secs": 30},
    "distribution": {"strategy": "parameter_server", "heartbeat_interval_secs": 0.5,
                     "heartbeat_timeout_secs": 5}
  })", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model_dir, "/tmp/m");
  EXPECT_EQ(job->estimator["type"], "dnn_classifier");
  EXPECT_EQ(*job->run_config.save_checkpoints_steps, 500);
  EXPECT_FALSE(job->run_config.save_checkpoints_secs.has_value());
  EXPECT_EQ(job->run_config.keep_checkpoint_max, 3);
  EXPECT_EQ(job->run_config.log_step_count_steps, 100);
  EXPECT_EQ(*job->train_spec.max_steps, 1000);
  EXPECT_EQ(*job->eval_spec.steps, 10);
  EXPECT_EQ(job->eval_spec.throttle_secs, 30);
  EXPECT_EQ(job->eval_spec.start_delay_secs, 120);
  EXPECT_EQ(job->distribution.heartbeat_interval, absl::Milliseconds(500));
  EXPECT_EQ(job->distribution.heartbeat_timeout, absl::Seconds(5));
  EXPECT_EQ(job->distribution.startup_timeout, absl::Seconds(60));
}

TEST(JobSpecTest, MinimalJobGetsTensorFlowDefaults) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(R"({"model_dir": "m"})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(*job->run_config.save_checkpoints_secs, 600);
  EXPECT_EQ(job->run_config.keep_checkpoint_max, 5);
  EXPECT_EQ(job->run_config.save_summary_steps, 100);
  EXPECT_EQ(job->distribution.strategy, "auto");
  EXPECT_EQ(job->distribution.heartbeat_timeout, absl::Seconds(10));
}

TEST(JobSpecTest, NullMeansUnsetAndEvalStepsNullMeansWholeInput) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(
      R"({"model_dir": "m", "run_config": {"keep_checkpoint_max": null}, "eval_spec": {"steps": null},
          "train_spec": null})",
      "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->run_config.keep_checkpoint_max, 5);
  EXPECT_FALSE(job->eval_spec.steps.has_value());
  job = ParseJobSpec(R"({"model_dir": "m"})", "job.json");
  EXPECT_EQ(job->eval_spec.steps, 100);
}

TEST(JobSpecTest, ErrorsCarryFileAndJsonPath) {
  ExpectError(R"({"model_dir": "m",
  "run_config": {"keep_checkpoint_max": "5"}})",
              "job.json: $.run_config.keep_checkpoint_max: expected an integer >= 0, got string \"5\"");
  ExpectError(R"({"model_dir": "m", "run_config": {"save_checkpoint_steps": 5}})",
              "$.run_config.save_checkpoint_steps: unknown key; did you mean 'save_checkpoints_steps'?");
  ExpectError(R"({"modeldir": "m"})", "$.modeldir: unknown key; did you mean 'model_dir'?");
  ExpectError(R"({"estimator": {"type": "dnn_classifier"}})", "$.model_dir: is required");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "dnn_clasifier"}})",
              "$.estimator.type: 'dnn_clasifier' is not allowed; did you mean 'dnn_classifier'?");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "dnn_classifier", "hidden_units": [10, "x"]}})",
              "$.estimator.hidden_units[1]: expected an integer >= 1, got string \"x\"");
  ExpectError(R"({"model_dir": "m", "feature_columns": [{"type": "numeric", "kye": "x"}]})",
              "$.feature_columns[0].kye: unknown key; did you mean 'key'?");
  ExpectError(R"({"model_dir": "m", "feature_columns": [{"key": "x"}]})",
              "$.feature_columns[0].type: is required");
  ExpectError(R"({"model_dir": "m", "feature_columns": [{"type": "categorical_with_vocabulary_list",
                  "key": "x", "vocabulary_list": ["a", 1.5]}]})",
              "$.feature_columns[0].vocabulary_list[1]: expected a string or an integer, got number 1.5");
  ExpectError(R"({"model_dir": "m", "distribution": {"heartbeat_timeout_secs": -1}})",
              "$.distribution.heartbeat_timeout_secs: expected a number");
  ExpectError(R"({"model_dir": "m", "distribution": {"heartbeat_interval_secs": 2, "heartbeat_timeout_secs": 1}})",
              "$.distribution.heartbeat_timeout_secs: must be greater than heartbeat_interval_secs");
  ExpectError(R"({"model_dir": "m", "run_config": {"save_checkpoints_steps": 1, "save_checkpoints_secs": 1}})",
              "set save_checkpoints_steps or save_checkpoints_secs, not both");
  ExpectError(R"({"model_dir": ""})", "$.model_dir: must not be empty");
  ExpectError(R"([1])", "$: expected an object, got an array");
}

TEST(JobSpecTest, SyntaxErrorsNameLineAndColumn) {
  absl::StatusOr<JobSpec> job = ParseJobSpec("{\n  \"model_dir\": \"m\",\n  oops\n}", "j.json");
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("j.json:3:3: invalid JSON"), absl::string_view::npos)
      << job.status();
}

TEST(JobSpecTest, MissingFileIsNotFound) {
  absl::StatusOr<JobSpec> job = LoadJobSpec("/nonexistent/job.json");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(job.status().message().find("/nonexistent/job.json"), absl::string_view::npos);
}

TEST(JobSpecTest, CsvInputColumnDefaultsAreTypedValues) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(R"({
    "model_dir": "/tmp/m",
    "train_input": {"format": "csv", "files": ["a.csv"], "batch_size": 8, "num_epochs": -1,
                    "column_names": ["a", "b", "c", "d"],
                    "column_defaults": [0, 0.5, "x", []], "scale_pixels": false}
  })", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->train_input["column_defaults"][0].is_number_integer());
  EXPECT_TRUE(job->train_input["column_defaults"][3].is_array());
  ExpectError(R"({"model_dir": "m", "train_input": {"format": "csv", "num_epochs": -2}})",
              "$.train_input.num_epochs: expected an integer >= -1, got -2");
}

}  // namespace
}  // namespace estuary
