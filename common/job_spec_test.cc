#include "common/job_spec.h"

#include "common/cluster.h"
#include "common/cluster_plan.h"

#include "absl/strings/str_cat.h"
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
  ASSERT_TRUE(job->estimator.has_value());
  EXPECT_EQ(std::string(job->estimator->type.name), "dnn_classifier");
  EXPECT_EQ(job->estimator->type.family, ModelFamily::kDnn);
  EXPECT_EQ(job->estimator->n_classes, 10);
  EXPECT_EQ(job->estimator->hidden_units, (std::vector<int64_t>{256, 128}));
  EXPECT_EQ(job->estimator->optimizer.config.type, "adagrad");
  EXPECT_DOUBLE_EQ(job->estimator->optimizer.config.learning_rate, 0.05);
  EXPECT_TRUE(job->estimator->optimizer.learning_rate_set);
  ASSERT_EQ(job->feature_columns.size(), 1u);
  EXPECT_EQ(job->feature_columns[0].kind, FeatureColumnKind::kNumeric);
  EXPECT_EQ(job->feature_columns[0].shape, (std::vector<int64_t>{784}));
  EXPECT_EQ(job->feature_columns[0].where.ToString(), "job.json: $.feature_columns[0]");
  ASSERT_TRUE(job->train_input.has_value());
  EXPECT_EQ(job->train_input->format, InputFormat::kIdx);
  EXPECT_EQ(job->train_input->batch_size, 64);
  EXPECT_FALSE(job->eval_input.has_value());
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

// Found by fuzz/job_spec_fuzzer (fuzz/corpus/job_spec_fuzzer/
// crash-number-overflow): nlohmann throws out_of_range, not parse_error, for
// a number beyond double's range; it escaped ParseJsonText and aborted.
TEST(JobSpecTest, NumberBeyondDoubleRangeIsInvalidJson) {
  absl::StatusOr<JobSpec> job =
      ParseJobSpec(R"({"model_dir": "m", "estimator": {"type":1e309_classifier"}})", "j.json");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(), "j.json: invalid JSON: number overflow parsing '1e309'")
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
  ASSERT_EQ(job->train_input->column_defaults.size(), 4u);
  EXPECT_EQ(job->train_input->column_defaults[0].dtype, DType::kInt64);
  EXPECT_EQ(job->train_input->column_defaults[1].dtype, DType::kFloat);
  EXPECT_EQ(job->train_input->column_defaults[2].string_default, "x");
  EXPECT_TRUE(job->train_input->column_defaults[3].required);
  EXPECT_EQ(job->train_input->num_epochs, -1);
  EXPECT_FALSE(job->train_input->scale_pixels);
  EXPECT_EQ(job->train_input->shard, InputShardPolicy::kAuto);
  ExpectError(R"({"model_dir": "m", "train_input": {"format": "csv", "num_epochs": -2}})",
              "$.train_input.num_epochs: expected an integer >= -1, got -2");
}

TEST(JobSpecTest, InputShardIsAutoOrOff) {
  const std::string input =
      R"("format": "idx", "images": "i", "labels": "l", "batch_size": 1, "shard": )";
  absl::StatusOr<JobSpec> job =
      ParseJobSpec(R"({"model_dir": "m", "train_input": {)" + input + R"("off"}})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->train_input->shard, InputShardPolicy::kOff);
  job = ParseJobSpec(R"({"model_dir": "m", "train_input": {)" + input + R"("auto"}})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->train_input->shard, InputShardPolicy::kAuto);
  ExpectError(R"({"model_dir": "m", "train_input": {)" + input + R"("file"}})",
              "job.json: $.train_input.shard: 'file' is not allowed; expected one of: auto, off");
}

// What the consumers used to check by hand is checked by the parse, with
// the file and the path.
TEST(JobSpecTest, SectionRulesAreCheckedByTheParse) {
  const std::string csv =
      R"("format": "csv", "files": ["a.csv"], "column_names": ["a"], "column_defaults": [0])";
  ExpectError(R"({"model_dir": "m", "train_input": {)" + csv + "}}",
              "job.json: $.train_input.batch_size: is required");
  ExpectError(R"({"model_dir": "m", "train_input": {)" + csv +
                  R"(, "batch_size": 2, "field_delim": ";;"}})",
              "$.train_input.field_delim: expected one character (not a quote or line break), "
              "got \";;\"");
  ExpectError(R"({"model_dir": "m", "train_input": {)" + csv +
                  R"(, "batch_size": 2, "num_epochs": 0}})",
              "$.train_input.num_epochs: must be >= 1, or -1 to repeat forever");
  ExpectError(R"({"model_dir": "m", "train_input": {"format": "idx", "images": "i",
                  "batch_size": 1}})",
              "$.train_input.labels: is required for format \"idx\"");
  ExpectError(R"({"model_dir": "m", "eval_input": {"format": "tfrecord", "files": ["x"],
                  "batch_size": 1}})",
              "$.eval_input.features: is required for format \"tfrecord\"");
  ExpectError(R"({"model_dir": "m", "train_input": {"format": "csv", "files": ["a"],
                  "batch_size": 1, "header": true, "column_defaults": [0, {"dtype": "int32"}]}})",
              "job.json: $.train_input.column_defaults[1]: expected \"dtype\": \"float32\"");
  ExpectError(R"({"model_dir": "m", "train_input": {"format": "tfrecord", "files": ["a"],
                  "batch_size": 1, "features": {"x": {"dtype": "float64"}}}})",
              "job.json: $.train_input.features.x.dtype: 'float64' is not one of");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "dnn_classifier"}})",
              "job.json: $.estimator.hidden_units: is required for DNN estimators");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "linear_regressor", "n_classes": 3}})",
              "$.estimator.n_classes: only classifiers take n_classes");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "linear_classifier",
                  "dnn_optimizer": "Adagrad"}})",
              "$.estimator.dnn_optimizer: only dnn_linear_combined_");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "linear_classifier",
                  "optimizer": {"type": "ftrl", "beta1": 0.9}}})",
              "$.estimator.optimizer.beta1: not a parameter of optimizer 'ftrl'");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "linear_classifier",
                  "optimizer": {"type": "adam", "lerning_rate": 0.1}}})",
              "$.estimator.optimizer.lerning_rate: unknown key; did you mean 'learning_rate'?");
  ExpectError(R"({"model_dir": "m", "estimator": {"type": "linear_classifier",
                  "optimizer": "adadelta"}})",
              "$.estimator.optimizer: unknown optimizer 'adadelta'");
  ExpectError(R"({"model_dir": "m", "feature_columns": [{"type": "numeric", "key": "x",
                  "hash_bucket_size": 3}]})",
              "$.feature_columns[0].hash_bucket_size: unknown key");
  ExpectError(R"({"model_dir": "m", "feature_columns": [{"type": "categorical_with_hash_bucket",
                  "key": "h"}]})",
              "$.feature_columns[0].hash_bucket_size: is required");
  ExpectError(R"({"model_dir": "m", "feature_columns": [{"type": "numeric", "key": "x"},
                  {"type": "numeric", "key": "x"}]})",
              "$.feature_columns[1].key: duplicate column name 'x' (also $.feature_columns[0])");
  ExpectError(R"({"model_dir": "m", "feature_columns": [{"type": "nmeric", "key": "x"}]})",
              "$.feature_columns[0].type: 'nmeric' is not allowed; did you mean 'numeric'?");
}

TEST(JobSpecTest, OptimizerDefaultsFollowTheEstimatorType) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(
      R"({"model_dir": "m", "estimator": {"type": "dnn_linear_combined_regressor",
          "hidden_units": [4], "dnn_optimizer": "Adam"}})",
      "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->estimator->linear_optimizer.config.type, "ftrl");
  EXPECT_FALSE(job->estimator->linear_optimizer.learning_rate_set);
  EXPECT_EQ(job->estimator->dnn_optimizer.config.type, "adam");
  job = ParseJobSpec(R"({"model_dir": "m", "estimator": {"type": "linear_classifier"}})",
                     "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->estimator->optimizer.config.type, "ftrl");
}

TEST(JobSpecTest, TablesAreTheOnlyLists) {
  // Every estimator and column type in the tables parses.
  for (const EstimatorType& t : EstimatorTypes()) {
    const std::string text = absl::StrCat(R"({"model_dir": "m", "estimator": {"type": ")",
                                          t.name, R"(", "hidden_units": [2]}})");
    absl::StatusOr<JobSpec> job = ParseJobSpec(text, "job.json");
    if (t.family == ModelFamily::kDnn || t.family == ModelFamily::kDnnLinearCombined) {
      EXPECT_TRUE(job.ok()) << t.name << ": " << job.status();
    }
  }
  EXPECT_EQ(FeatureColumnTypes().size(), 10u);
  EXPECT_STREQ(FeatureColumnTypeName(FeatureColumnKind::kHashBucket),
               "categorical_with_hash_bucket");
}

}  // namespace
}  // namespace estuary

namespace estuary {
namespace {

TEST(JobSpecTest, SynchronousStrategiesAndTheirKeys) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(
      R"({"model_dir": "m", "distribution": {"strategy": "mirrored",
          "num_replicas_per_worker": 4, "collective_timeout_secs": 2.5}})",
      "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.strategy, "mirrored");
  EXPECT_EQ(job->distribution.num_replicas_per_worker, 4);
  EXPECT_EQ(job->distribution.collective_timeout, absl::Milliseconds(2500));
  job = ParseJobSpec(R"({"model_dir": "m"})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.num_replicas_per_worker, 1);
  EXPECT_EQ(job->distribution.collective_timeout, absl::Seconds(60));
  EXPECT_TRUE(job->distribution.ring_shared_memory);
  job = ParseJobSpec(R"({"model_dir": "m", "distribution": {"ring_shared_memory": false}})",
                     "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_FALSE(job->distribution.ring_shared_memory);
  ExpectError(R"({"model_dir": "m", "distribution": {"ring_shared_memory": "no"}})",
              "$.distribution.ring_shared_memory");
  for (const char* s : {"central_storage", "multi_worker_mirrored"}) {
    job = ParseJobSpec(absl::StrCat(R"({"model_dir": "m", "distribution": {"strategy": ")", s,
                                    R"("}})"),
                       "job.json");
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->distribution.strategy, s);
  }
  ExpectError(R"({"model_dir": "m", "distribution": {"num_replicas_per_worker": 0}})",
              "$.distribution.num_replicas_per_worker");
  ExpectError(R"({"model_dir": "m", "distribution": {"num_replicas_per_worker": 1.5}})",
              "$.distribution.num_replicas_per_worker");
  ExpectError(R"({"model_dir": "m", "distribution": {"collective_timeout_secs": 0}})",
              "$.distribution.collective_timeout_secs");
}

// distribution.eval_distribute (TF's RunConfig(eval_distribute=...)):
// defaults, and one-line errors naming the field.
TEST(JobSpecTest, EvalDistribute) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(R"({"model_dir": "m"})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.eval_distribute.strategy, "one_device");
  EXPECT_EQ(job->distribution.eval_distribute.num_replicas, 1);
  job = ParseJobSpec(R"({"model_dir": "m", "distribution": {"eval_distribute":
                        {"strategy": "mirrored", "num_replicas": 3}}})",
                     "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.eval_distribute.strategy, "mirrored");
  EXPECT_EQ(job->distribution.eval_distribute.num_replicas, 3);
  // Without num_replicas: as many as the training replicas (an empty
  // object means mirrored).
  job = ParseJobSpec(R"({"model_dir": "m", "distribution": {"num_replicas_per_worker": 2,
                        "eval_distribute": {}}})",
                     "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.eval_distribute.strategy, "mirrored");
  EXPECT_EQ(job->distribution.eval_distribute.num_replicas, 2);
  job = ParseJobSpec(R"({"model_dir": "m", "distribution": {"num_replicas_per_worker": 2,
                        "eval_distribute": {"strategy": "one_device"}}})",
                     "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.eval_distribute.num_replicas, 1);
  ExpectError(R"({"model_dir": "m", "distribution": {"eval_distribute": {"num_replica": 2}}})",
              "$.distribution.eval_distribute.num_replica: unknown key; did you mean "
              "'num_replicas'?");
  ExpectError(R"({"model_dir": "m", "distribution": {"eval_distribute": {"num_replicas": 0}}})",
              "$.distribution.eval_distribute.num_replicas");
  ExpectError(R"({"model_dir": "m", "distribution": {"eval_distribute": {"strategy": "tpu"}}})",
              "$.distribution.eval_distribute.strategy");
  ExpectError(R"({"model_dir": "m", "distribution": {"eval_distribute": "mirrored"}})",
              "$.distribution.eval_distribute");
  ExpectError(R"({"model_dir": "m", "distribution": {"eval_distribute":
                  {"strategy": "one_device", "num_replicas": 2}}})",
              "$.distribution.eval_distribute.num_replicas: must be 1 under strategy "
              "'one_device', not 2");
}

TEST(JobSpecTest, PullWithPush) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(
      R"({"model_dir": "m", "distribution": {"strategy": "parameter_server",
          "pull_with_push": true}})",
      "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.pull_with_push, true);
  job = ParseJobSpec(R"({"model_dir": "m", "distribution": {"pull_with_push": false}})",
                     "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.pull_with_push, false);
  job = ParseJobSpec(R"({"model_dir": "m"})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->distribution.pull_with_push, std::nullopt);  // by the number of trainers
  ExpectError(R"({"model_dir": "m", "distribution": {"pull_with_push": "yes"}})",
              "$.distribution.pull_with_push");
}

TEST(JobSpecTest, PsDataPlane) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(R"({"model_dir": "m"})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->distribution.ps_data_plane);  // on unless the job is secured
  job = ParseJobSpec(R"({"model_dir": "m", "distribution": {"ps_data_plane": false}})",
                     "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_FALSE(job->distribution.ps_data_plane);
  ExpectError(R"({"model_dir": "m", "distribution": {"ps_data_plane": 1}})",
              "$.distribution.ps_data_plane");
}

TEST(JobSpecTest, OverlapBackwardAndBucketBytes) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(
      R"({"model_dir": "m", "distribution": {"strategy": "multi_worker_mirrored",
          "overlap_backward": true, "bucket_bytes": 262144}})",
      "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->distribution.overlap_backward);
  EXPECT_EQ(job->distribution.bucket_bytes, 262144);
  job = ParseJobSpec(R"({"model_dir": "m"})", "job.json");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_FALSE(job->distribution.overlap_backward);
  EXPECT_EQ(job->distribution.bucket_bytes, 0);  // the strategy's 25 MiB
  ExpectError(R"({"model_dir": "m", "distribution": {"overlap_backward": 1}})",
              "$.distribution.overlap_backward");
  ExpectError(R"({"model_dir": "m", "distribution": {"bucket_bytes": 100}})",
              "$.distribution.bucket_bytes");
}

// ResolveStrategy's one-line errors name the job's strategy and what the
// cluster has.
absl::Status Resolve(const std::string& strategy, const std::string& tf_config) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(
      absl::StrCat(R"({"model_dir": "m", "distribution": {"strategy": ")", strategy, R"("}})"),
      "job.json");
  EXPECT_TRUE(job.ok()) << job.status();
  absl::StatusOr<TfConfig> tf = ParseTfConfig(tf_config);
  EXPECT_TRUE(tf.ok()) << tf.status();
  return ResolveStrategy(*job, *tf).status();
}

TEST(ClusterPlanTest, StrategiesAndClusterShapesThatCannotWork) {
  const std::string with_ps =
      R"({"cluster": {"chief": ["a:1"], "ps": ["b:1"]}, "task": {"type": "chief", "index": 0}})";
  const std::string two_workers =
      R"({"cluster": {"chief": ["a:1"], "worker": ["c:1"]}, "task": {"type": "chief", "index": 0}})";
  for (const char* s : {"mirrored", "central_storage", "multi_worker_mirrored", "one_device"}) {
    absl::Status st = Resolve(s, with_ps);
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << s;
    EXPECT_NE(st.message().find(absl::StrCat("$.distribution.strategy: '", s,
                                             "' does not use ps tasks, but TF_CONFIG's cluster "
                                             "has 1")),
              absl::string_view::npos)
        << st;
    EXPECT_EQ(st.message().find('\n'), absl::string_view::npos);
  }
  absl::Status st = Resolve("parameter_server", two_workers);
  EXPECT_NE(st.message().find("'parameter_server' needs ps tasks, but TF_CONFIG's cluster has none"),
            absl::string_view::npos)
      << st;
  for (const char* s : {"mirrored", "central_storage"}) {
    st = Resolve(s, two_workers);
    EXPECT_NE(st.message().find(absl::StrCat("'", s, "' runs in one process, but the cluster has "
                                             "several training tasks")),
              absl::string_view::npos)
        << st;
    EXPECT_TRUE(Resolve(s, "{}").ok());
  }
  EXPECT_TRUE(Resolve("multi_worker_mirrored", two_workers).ok());
  EXPECT_TRUE(Resolve("parameter_server", with_ps).ok());
}

}  // namespace
}  // namespace estuary
