#include "common/job_spec.h"

#include "absl/strings/str_cat.h"
#include "common/io/env.h"
#include "common/json_schema.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

using json = nlohmann::json;
using K = JsonKind;

constexpr double kInf = std::numeric_limits<double>::infinity();

JsonField F(std::string name, K kind, double min = -kInf, double max = kInf) {
  JsonField f;
  f.name = std::move(name);
  f.kind = kind;
  f.min = min;
  f.max = max;
  return f;
}

JsonField Enum(std::string name, std::vector<std::string> values) {
  JsonField f = F(std::move(name), K::kString);
  f.one_of = std::move(values);
  return f;
}

JsonField Array(std::string name, K element, const JsonSchema* schema = nullptr,
                double min = -kInf) {
  JsonField f = F(std::move(name), K::kArray, min);
  f.element = element;
  f.schema = schema;
  return f;
}

JsonField Object(std::string name, const JsonSchema* schema, K kind = K::kObject) {
  JsonField f = F(std::move(name), kind);
  f.schema = schema;
  return f;
}

const JsonSchema& OptimizerSchema() {
  static const auto* s = new JsonSchema{{
      Enum("type", {"sgd", "momentum", "adagrad", "adam", "ftrl", "rmsprop"}),
      F("learning_rate", K::kNumber, 0),
      F("momentum", K::kNumber, 0),
      F("use_nesterov", K::kBool),
      F("initial_accumulator_value", K::kNumber, 0),
      F("beta1", K::kNumber, 0, 1),
      F("beta2", K::kNumber, 0, 1),
      F("epsilon", K::kNumber, 0),
      F("learning_rate_power", K::kNumber, -kInf, 0),
      F("l1_regularization_strength", K::kNumber, 0),
      F("l2_regularization_strength", K::kNumber, 0),
      F("l2_shrinkage_regularization_strength", K::kNumber, 0),
      F("rho", K::kNumber, 0, 1),
      F("decay", K::kNumber, 0, 1),
      F("centered", K::kBool),
  }};
  return *s;
}

const JsonSchema& EstimatorSchema() {
  static const auto* s = new JsonSchema{{
      [] {
        JsonField f = Enum("type", {"linear_classifier", "linear_regressor", "dnn_classifier",
                                    "dnn_regressor", "dnn_linear_combined_classifier",
                                    "dnn_linear_combined_regressor", "baseline_classifier",
                                    "baseline_regressor", "custom"});
        f.required = true;
        return f;
      }(),
      F("n_classes", K::kInt, 2),
      F("label_dimension", K::kInt, 1),
      Array("hidden_units", K::kInt, nullptr, 1),
      Enum("activation_fn", {"relu", "tanh", "sigmoid", "elu", "selu", "softplus", "linear"}),
      F("dropout", K::kNumber, 0, 1),
      F("batch_norm", K::kBool),
      Object("optimizer", &OptimizerSchema(), K::kStringOrObject),
      Object("linear_optimizer", &OptimizerSchema(), K::kStringOrObject),
      Object("dnn_optimizer", &OptimizerSchema(), K::kStringOrObject),
      Array("linear_feature_columns", K::kString),
      Array("dnn_feature_columns", K::kString),
      Array("label_vocabulary", K::kString),
      F("weight_column", K::kString),
      Enum("loss_reduction", {"sum_over_batch_size", "sum"}),
      F("model_fn", K::kString),
      F("warm_start_from", K::kString),
      Object("params", nullptr),
  }};
  return *s;
}

const JsonSchema& FeatureColumnSchema() {
  static const auto* s = new JsonSchema{{
      [] {
        JsonField f = Enum("type", {"numeric", "bucketized", "categorical_with_vocabulary_list",
                                    "categorical_with_vocabulary_file",
                                    "categorical_with_hash_bucket", "categorical_with_identity",
                                    "crossed", "indicator", "embedding", "weighted_categorical"});
        f.required = true;
        return f;
      }(),
      F("name", K::kString),
      F("key", K::kString),
      Array("shape", K::kInt, nullptr, 1),
      F("default_value", K::kNumber),
      Enum("dtype", {"float32", "float64", "int32", "int64", "string"}),
      Object("normalizer", nullptr),
      Array("boundaries", K::kNumber),
      F("source_column", K::kString),
      F("categorical_column", K::kString),
      Array("vocabulary_list", K::kStringOrInt),  // ints for an int64 vocabulary
      F("vocabulary_file", K::kString),
      F("vocabulary_size", K::kInt, 1),
      F("num_oov_buckets", K::kInt, 0),
      F("hash_bucket_size", K::kInt, 1),
      F("num_buckets", K::kInt, 1),
      Array("keys", K::kString),
      F("dimension", K::kInt, 1),
      Enum("combiner", {"sum", "mean", "sqrtn"}),
      F("weight_feature_key", K::kString),
      F("max_norm", K::kNumber, 0),
      F("trainable", K::kBool),
  }};
  return *s;
}

const JsonSchema& InputSchema() {
  static const auto* s = new JsonSchema{{
      [] {
        JsonField f = Enum("format", {"csv", "tfrecord", "idx"});
        f.required = true;
        return f;
      }(),
      Array("files", K::kString),
      F("images", K::kString),
      F("labels", K::kString),
      F("label_key", K::kString),
      F("batch_size", K::kInt, 1),
      F("shuffle_buffer_size", K::kInt, 0),
      F("num_epochs", K::kInt, -1),  // -1: repeat forever (tf.data repeat(-1))
      F("seed", K::kInt, 0),
      F("num_parallel_readers", K::kInt, 1, 256),
      F("prefetch_batches", K::kInt, 0),
      F("drop_remainder", K::kBool),
      F("header", K::kBool),
      Array("column_names", K::kString),
      Array("column_defaults", K::kAny),  // checked by estimator/data/pipeline
      F("field_delim", K::kString),
      Enum("compression", {"", "none", "gzip"}),
      Enum("bad_record_policy", {"fail", "skip"}),
      F("scale_pixels", K::kBool),  // idx: pixels / 255 (default true)
      Object("features", nullptr),  // tfrecord: tf.train.Example feature spec
  }};
  return *s;
}

const JsonSchema& RunConfigSchema() {
  static const auto* s = new JsonSchema{{
      F("tf_random_seed", K::kInt),
      F("save_summary_steps", K::kInt, 0),
      F("save_checkpoints_steps", K::kInt, 1),
      F("save_checkpoints_secs", K::kNumber, 0),
      F("keep_checkpoint_max", K::kInt, 0),
      F("log_step_count_steps", K::kInt, 1),
      F("intra_op_parallelism_threads", K::kInt, 1, 256),
  }};
  return *s;
}

const JsonSchema& TrainSpecSchema() {
  static const auto* s = new JsonSchema{{F("max_steps", K::kInt, 1)}};
  return *s;
}

const JsonSchema& ExporterSchema() {
  static const auto* s = new JsonSchema{{
      Enum("type", {"latest", "best", "final"}),
      F("name", K::kString),
      F("exports_to_keep", K::kInt, 1),
      F("metric", K::kString),
      Enum("compare", {"lower", "higher"}),
  }};
  return *s;
}

const JsonSchema& EvalSpecSchema() {
  static const auto* s = new JsonSchema{{
      F("steps", K::kInt, 1),
      F("name", K::kString),
      F("start_delay_secs", K::kNumber, 0),
      F("throttle_secs", K::kNumber, 0),
      Array("exporters", K::kObject, &ExporterSchema()),
  }};
  return *s;
}

const JsonSchema& DistributionSchema() {
  static const auto* s = new JsonSchema{{
      Enum("strategy", {"auto", "one_device", "mirrored", "multi_worker_mirrored",
                        "central_storage", "parameter_server"}),
      Enum("communication", {"auto", "ring", "nccl"}),
      F("heartbeat_interval_secs", K::kNumber, 0.01, 3600),
      F("heartbeat_timeout_secs", K::kNumber, 0.05, 86400),
      F("startup_timeout_secs", K::kNumber, 0.1, 86400),
      F("shutdown_timeout_secs", K::kNumber, 0.1, 86400),
  }};
  return *s;
}

const JsonSchema& JobSchema() {
  static const auto* s = new JsonSchema{{
      [] {
        JsonField f = F("model_dir", K::kString);
        f.required = true;
        f.help = "where checkpoints, summaries and exports go";
        return f;
      }(),
      Object("estimator", &EstimatorSchema()),
      Array("feature_columns", K::kObject, &FeatureColumnSchema()),
      Object("train_input", &InputSchema()),
      Object("eval_input", &InputSchema()),
      Object("run_config", &RunConfigSchema()),
      Object("train_spec", &TrainSpecSchema()),
      Object("eval_spec", &EvalSpecSchema()),
      Object("distribution", &DistributionSchema()),
  }};
  return *s;
}

absl::Duration Secs(const json& obj, const char* key, absl::Duration def) {
  return obj.contains(key) ? absl::Seconds(obj[key].get<double>()) : def;
}

}  // namespace

absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view text, absl::string_view source) {
  ASSIGN_OR_RETURN(json root, ParseJsonText(text, source));
  absl::Status st = ValidateJson(root, JobSchema(), "$");
  if (!st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", st.message()));
  }
  auto error = [&](absl::string_view path, absl::string_view msg) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", path, ": ", msg));
  };
  JobSpec job;
  job.source = std::string(source);
  job.model_dir = root["model_dir"].get<std::string>();
  if (job.model_dir.empty()) return error("$.model_dir", "must not be empty");
  // A null value means "not set" (as None does in TF); eval_spec.steps: null
  // additionally means "until the input runs out".
  const bool eval_steps_null = root.contains("eval_spec") && root["eval_spec"].is_object() &&
                               root["eval_spec"].contains("steps") &&
                               root["eval_spec"]["steps"].is_null();
  for (const char* key : {"run_config", "train_spec", "eval_spec", "distribution"}) {
    if (!root.contains(key)) continue;
    if (root[key].is_null()) {
      root.erase(key);
      continue;
    }
    for (auto it = root[key].begin(); it != root[key].end();) {
      it = it.value().is_null() ? root[key].erase(it) : std::next(it);
    }
  }
  auto section = [&](const char* key) {
    return root.contains(key) ? root[key] : json();
  };
  job.estimator = section("estimator");
  job.feature_columns = section("feature_columns");
  job.train_input = section("train_input");
  job.eval_input = section("eval_input");

  const json rc = root.value("run_config", json::object());
  if (rc.contains("save_checkpoints_steps") && rc.contains("save_checkpoints_secs")) {
    return error("$.run_config",
                 "set save_checkpoints_steps or save_checkpoints_secs, not both");
  }
  if (rc.contains("tf_random_seed")) {
    job.run_config.has_tf_random_seed = true;
    job.run_config.tf_random_seed = rc["tf_random_seed"].get<int64_t>();
  }
  job.run_config.save_summary_steps = rc.value("save_summary_steps", int64_t{100});
  if (rc.contains("save_checkpoints_steps")) {
    job.run_config.save_checkpoints_steps = rc["save_checkpoints_steps"].get<int64_t>();
  } else {
    job.run_config.save_checkpoints_secs = rc.value("save_checkpoints_secs", 600.0);
  }
  job.run_config.keep_checkpoint_max = rc.value("keep_checkpoint_max", int64_t{5});
  job.run_config.log_step_count_steps = rc.value("log_step_count_steps", int64_t{100});
  job.run_config.intra_op_parallelism_threads = rc.value("intra_op_parallelism_threads", 1);

  const json ts = root.value("train_spec", json::object());
  if (ts.contains("max_steps")) job.train_spec.max_steps = ts["max_steps"].get<int64_t>();

  const json es = root.value("eval_spec", json::object());
  if (es.contains("steps")) job.eval_spec.steps = es["steps"].get<int64_t>();
  if (eval_steps_null) job.eval_spec.steps.reset();
  job.eval_spec.name = es.value("name", "");
  job.eval_spec.start_delay_secs = es.value("start_delay_secs", 120.0);
  job.eval_spec.throttle_secs = es.value("throttle_secs", 600.0);

  const json d = root.value("distribution", json::object());
  DistributionSpec& dist = job.distribution;
  dist.strategy = d.value("strategy", "auto");
  dist.communication = d.value("communication", "auto");
  dist.heartbeat_interval = Secs(d, "heartbeat_interval_secs", dist.heartbeat_interval);
  dist.heartbeat_timeout = Secs(d, "heartbeat_timeout_secs", dist.heartbeat_timeout);
  dist.startup_timeout = Secs(d, "startup_timeout_secs", dist.startup_timeout);
  dist.shutdown_timeout = Secs(d, "shutdown_timeout_secs", dist.shutdown_timeout);
  if (dist.heartbeat_timeout <= dist.heartbeat_interval) {
    return error("$.distribution.heartbeat_timeout_secs",
                 absl::StrCat("must be greater than heartbeat_interval_secs (",
                              absl::ToDoubleSeconds(dist.heartbeat_interval), ")"));
  }
  return job;
}

absl::StatusOr<JobSpec> LoadJobSpec(const std::string& path, const io::Env& env) {
  absl::StatusOr<std::string> text = io::ReadWholeFile(env, path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("cannot read job file: ", text.status().message()));
  }
  return ParseJobSpec(*text, path);
}

}  // namespace estuary
