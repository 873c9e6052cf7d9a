// The typed sections of a job file (see job_spec.h), as the validated parse
// produces them: plain data with TensorFlow's defaults, read by their
// consumers without further checks. Each section's knowledge (its keys,
// their types and ranges, the cross-field rules) lives in one parse function
// here; the lists of estimator types and feature-column types exist once,
// as the tables below (the optimizer list is OptimizerTypes() in
// optimizer.h). Every error is InvalidArgument from a JsonPath:
// "<file>: $.feature_columns[3].hash_bucket_size: ...".
//
// Layering: common/ knows no estimator classes; the estimator library turns
// these into models, columns and pipelines (estimator_factory.cc,
// feature_column_builder, data/pipeline). What a consumer may still reject
// is only what needs its own knowledge: a feature-column reference that
// names no column, a column selection the model cannot use.
#ifndef ESTUARY_COMMON_JOB_CONFIG_H_
#define ESTUARY_COMMON_JOB_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/io/tfrecord.h"
#include "common/json_schema.h"
#include "common/optimizer.h"
#include "common/tensor.h"
#include "nlohmann/json.hpp"

namespace estuary {

// ---------------------------------------------------------------- estimator

enum class ModelFamily { kBaseline, kLinear, kDnn, kDnnLinearCombined, kCustom };

// The premade estimators a job can name: the one list.
struct EstimatorType {
  const char* name;  // "dnn_linear_combined_classifier"
  ModelFamily family;
  bool classifier;  // else a regressor (custom: neither)
};
const std::vector<EstimatorType>& EstimatorTypes();

// The `estimator` section. Head options follow tf.estimator's heads;
// optimizers carry their defaults: "optimizer" is FTRL for linear and
// baseline models, Adagrad for DNNs; combined models take
// "linear_optimizer" (FTRL) and "dnn_optimizer" (Adagrad). Learning rates
// not given are the estimator's defaults, which depend on the columns
// (estimator_factory.cc).
struct EstimatorConfig {
  EstimatorType type{};
  JsonPath where;  // "$.estimator" in the job file, for consumers' errors

  // Head.
  int64_t n_classes = 2;  // classifiers only
  int64_t label_dimension = 1;
  std::vector<std::string> label_vocabulary;
  std::string weight_column;
  std::optional<std::string> loss_reduction;  // "sum_over_batch_size" | "sum"

  // DNN tower (dnn_* and dnn_linear_combined_*; hidden_units required).
  std::vector<int64_t> hidden_units;
  std::optional<std::string> activation_fn;  // relu | tanh | ... (nn::ParseActivation)
  float dropout = 0;
  bool batch_norm = false;

  // "optimizer" for every family but dnn_linear_combined_*, which uses the
  // other two.
  OptimizerChoice optimizer;
  OptimizerChoice linear_optimizer;
  OptimizerChoice dnn_optimizer;

  // Columns by reference name; unset: the model's default selection.
  std::optional<std::vector<std::string>> linear_feature_columns;
  std::optional<std::vector<std::string>> dnn_feature_columns;

  std::string warm_start_from;
  // type "custom": the C++ model's name and its free-form parameters.
  std::string model_fn;
  nlohmann::json params;
};

absl::StatusOr<EstimatorConfig> ParseEstimatorConfig(const nlohmann::json& section,
                                                     const JsonPath& where);

// ---------------------------------------------------------- feature columns

enum class FeatureColumnKind {
  kNumeric,
  kBucketized,
  kVocabularyList,
  kVocabularyFile,
  kHashBucket,
  kIdentity,
  kCrossed,
  kIndicator,
  kEmbedding,
  kWeightedCategorical,
};

// The feature-column types a job can name (tf.feature_column's functions
// without their prefix): the one list.
struct FeatureColumnType {
  const char* name;  // "categorical_with_hash_bucket"
  FeatureColumnKind kind;
};
const std::vector<FeatureColumnType>& FeatureColumnTypes();
const char* FeatureColumnTypeName(FeatureColumnKind kind);

// One entry of `feature_columns`. Only the members of its kind are set
// (each is listed with the kinds that read it); the parse has checked each
// kind's required keys, ranges and rules (sorted boundaries, oov buckets xor
// a default id, identity default < num_buckets, at least two crossed keys,
// unique explicit names and keys).
struct FeatureColumnConfig {
  FeatureColumnKind kind = FeatureColumnKind::kNumeric;
  JsonPath where;    // "$.feature_columns[3]" in the job file
  std::string name;  // explicit reference name; "" when not given

  // numeric, categorical_*: the raw feature.
  std::string key;
  // numeric.
  std::vector<int64_t> shape = {1};
  std::optional<float> default_value;
  struct Normalizer {
    double mean = 0;
    double stddev = 1;
  };
  std::optional<Normalizer> normalizer;
  // bucketized.
  std::string source_column;
  std::vector<float> boundaries;
  // vocabulary_list, vocabulary_file, hash_bucket: the values' type
  // (kString or kInt64).
  DType value_dtype = DType::kString;
  // vocabulary_list: one of the two, by value_dtype.
  std::vector<std::string> string_vocabulary;
  std::vector<int64_t> int_vocabulary;
  // vocabulary_file: resolved against the job file's directory.
  std::string vocabulary_file;
  std::optional<int64_t> vocabulary_size;
  // vocabulary_*: num_oov_buckets and the id of unknown values (-1: none).
  int64_t num_oov_buckets = 0;
  int64_t default_id = -1;
  // identity.
  int64_t num_buckets = 0;
  std::optional<int64_t> identity_default;
  // hash_bucket, crossed.
  int64_t hash_bucket_size = 0;
  // crossed: column reference names or raw feature keys.
  std::vector<std::string> keys;
  // indicator, embedding, weighted_categorical.
  std::string categorical_column;
  // embedding.
  int64_t dimension = 0;
  std::string combiner = "mean";  // sum | mean | sqrtn
  std::optional<float> max_norm;
  bool trainable = true;
  // weighted_categorical.
  std::string weight_feature_key;
};

// `section` is the JSON array; relative vocabulary files are resolved
// against `base_dir` when it is not empty.
absl::StatusOr<std::vector<FeatureColumnConfig>> ParseFeatureColumns(
    const nlohmann::json& section, const JsonPath& where, const std::string& base_dir = "");

// ------------------------------------------------------------------- inputs

enum class InputFormat { kCsv, kTfRecord, kIdx };

// How a cluster's training tasks share an input ("shard"). kAuto: by file
// when there are at least as many files as shards (tf.data's FILE
// auto-shard), else by record (its DATA fallback); kOff: every task reads
// all the data (only the shuffle order differs, by the per-shard seed).
enum class InputShardPolicy { kAuto, kOff };

// A CSV column's type and default, given by its JSON default as
// tf.io.decode_csv's record_defaults give them:
//   0, -3      int64 with that default      1.5, 0.0   float32
//   "x", ""    string                       []         required float32 (TF's [])
//   {"dtype": "float32"|"int64"|"string", "default": <value>}  ("default"
//   absent: required).
struct CsvColumnDefault {
  DType dtype = DType::kString;
  bool required = false;  // no default: an empty field is an error
  float float_default = 0;
  int64_t int_default = 0;
  std::string string_default;
};
absl::StatusOr<CsvColumnDefault> ParseCsvColumnDefault(const nlohmann::json& value,
                                                       const JsonPath& where);

// One tf.train.Example feature to parse, as tf.io.parse_example's spec:
//   "age": {"dtype": "float32", "shape": [1], "default": 0}   FixedLenFeature
//   "tags": {"dtype": "string", "var_len": true}              VarLenFeature
// dtype float32 | int64 | string; shape defaults to [] (a [batch] tensor);
// without "default" the feature is required. The example parser checks the
// default's size against the shape when the input is built.
struct ExampleFeatureConfig {
  std::string key;
  DType dtype = DType::kFloat;
  bool var_len = false;
  std::vector<int64_t> shape;
  std::optional<Tensor> default_value;  // [n] values: a scalar or prod(shape)
};
// `features` is the object mapping feature keys to their specs.
absl::StatusOr<std::vector<ExampleFeatureConfig>> ParseExampleFeatures(
    const nlohmann::json& features, const JsonPath& where);

// `train_input` / `eval_input`: what estimator/data/pipeline reads.
struct InputConfig {
  JsonPath where;  // "$.train_input" in the job file
  InputFormat format = InputFormat::kCsv;
  std::vector<std::string> files;  // csv/tfrecord: file names or glob patterns
  std::string images, labels;      // idx: the pair
  int64_t batch_size = 1;
  int64_t shuffle_buffer_size = 0;
  int64_t num_epochs = 1;  // -1: repeat forever
  std::optional<uint64_t> seed;
  InputShardPolicy shard = InputShardPolicy::kAuto;
  int num_parallel_readers = 1;
  int prefetch_batches = 2;
  bool drop_remainder = false;
  std::string label_key;
  bool skip_bad_records = false;  // bad_record_policy "skip"
  // csv
  bool header = false;
  std::vector<std::string> column_names;  // empty: from the header line
  std::vector<CsvColumnDefault> column_defaults;  // one per column (required)
  char field_delim = ',';
  // idx
  bool scale_pixels = true;
  // tfrecord of tf.train.Example
  io::Compression compression = io::Compression::kNone;
  std::vector<ExampleFeatureConfig> features;  // required, in the file's key order
};

absl::StatusOr<InputConfig> ParseInputConfig(const nlohmann::json& section,
                                             const JsonPath& where);

// ------------------------------------------------- run config, specs, cluster

// tf.estimator.RunConfig's knobs, with its defaults.
struct RunConfig {
  int64_t tf_random_seed = 0;
  bool has_tf_random_seed = false;
  int64_t save_summary_steps = 100;
  // At most one of the two is set; with neither given, TF checkpoints every
  // 600 s (save_checkpoints_secs = 600).
  std::optional<int64_t> save_checkpoints_steps;
  std::optional<double> save_checkpoints_secs;
  int64_t keep_checkpoint_max = 5;
  int64_t log_step_count_steps = 100;
  // Threads for the model's matrix products (TF's session_config
  // intra_op_parallelism_threads). 1 is fastest for small networks on 2
  // cores (bench/RESULTS.md); more pays for wide layers and big batches.
  int intra_op_parallelism_threads = 1;
  // Checkpoint files: "native" (Estuary's, common/checkpoint.h) or "tf"
  // (TF V2 tensor bundles that TF 2.15's Estimator reads). Either is read.
  std::string checkpoint_format = "native";
};

// tf.estimator.TrainSpec.
struct TrainSpec {
  std::optional<int64_t> max_steps;
};

// One eval_spec.exporters entry (tf.estimator's LatestExporter,
// BestExporter, FinalExporter; distribute/exporter.h runs them).
struct ExporterConfig {
  JsonPath where;               // "$.eval_spec.exporters[0]"
  std::string type = "latest";  // latest | best | final (required)
  std::string name;             // default: the type; unique
  int64_t exports_to_keep = 5;  // TF's default; final: keeps all
  // best only: TF's default compares "loss", lower is better.
  std::string metric = "loss";
  bool higher_is_better = false;  // compare "greater" (or "higher")
};

// tf.estimator.EvalSpec.
struct EvalSpec {
  std::optional<int64_t> steps = 100;  // nullopt: until the input runs out
  std::string name;
  double start_delay_secs = 120;
  double throttle_secs = 600;
  std::vector<ExporterConfig> exporters;
};

// How the cluster runs: strategy, collectives and the runtime's deadlines.
struct DistributionConfig {
  // "auto" picks parameter_server when the cluster has ps tasks, else
  // multi_worker_mirrored (one_device without a cluster). Also one_device,
  // mirrored and central_storage (one process), multi_worker_mirrored,
  // parameter_server.
  std::string strategy = "auto";
  std::string communication = "auto";  // ring | nccl | auto
  // tf.estimator's RunConfig(eval_distribute=...): how Estimator::Evaluate
  // spreads evaluation over local replicas ("eval_distribute": {"strategy":
  // "mirrored", "num_replicas": N}). Each replica reads its own batch of
  // eval_input's batch_size and computes on its own thread; an eval step is
  // num_replicas batches (eval_spec.steps counts such steps, as in TF).
  // Default (key absent): one_device, 1 replica.
  struct EvalDistribute {
    std::string strategy = "one_device";  // one_device | mirrored
    // mirrored: default num_replicas_per_worker; one_device: 1. >= 1.
    int num_replicas = 1;
  };
  EvalDistribute eval_distribute;
  // Replicas in sync per training process (mirrored / central_storage: the
  // process's replicas; multi_worker_mirrored: each worker's). Each reads
  // its own batch of train_input's batch_size (the per-replica batch), so
  // a step consumes num_replicas_per_worker batches per process. >= 1.
  int num_replicas_per_worker = 1;
  // Deadline of each collective call of a synchronous step.
  absl::Duration collective_timeout = absl::Seconds(60);
  // Synchronous strategies: all-reduce each gradient bucket as soon as
  // Backward finished it (distribute/collective_strategy.h), and the
  // buckets' size (0: 25 MiB, DDP's).
  bool overlap_backward = false;
  // multi_worker_mirrored on the ring: ranks on one host exchange the
  // all-reduce's data through shared memory (common/collective/ring/
  // ring_communicator.h); false: TCP only. The environment variable
  // ESTUARY_RING_SHM=0 (or 1) overrides it for one process.
  bool ring_shared_memory = true;
  int64_t bucket_bytes = 0;
  // parameter_server: each step's push also pulls the next step's
  // variables, one round trip per PS and step instead of two (distribute/
  // parameter_server_strategy.h, ParameterServerStrategyOptions). Unset
  // (the default): on when the cluster has one trainer, where it reads
  // exactly what a separate pull would (nobody else pushes), off with
  // several (their steps then miss more of each other's updates).
  std::optional<bool> pull_with_push;
  // parameter_server: Push and Pull over each PS's TCP data plane (common/
  // ps/ps_data_plane.h) instead of gRPC, in a job without `security` (a
  // secured job always keeps them on gRPC). False: always gRPC.
  bool ps_data_plane = true;
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  // How long a task waits for the chief to answer its registration, and for
  // every task to reach the start barrier.
  absl::Duration startup_timeout = absl::Seconds(60);
  // How long the chief waits for every task to leave at the end.
  absl::Duration shutdown_timeout = absl::Seconds(30);
};

// Security between the tasks (issue 14; common/security.h loads it per
// task, common/transport_security.h applies it):
//   "security": {"ca": "certs/ca.crt", "cert": "certs/{task}.crt",
//                "key": "certs/{task}.key", "token_file": "certs/token"}
// Paths are relative to the job file's directory. `cert` and `key` are
// templates for the task reading them: {task} is "<type>-<index>"
// ("worker-0"), {type} and {index} the parts; a path ending in "/" is a
// directory holding "<task>.crt" / "<task>.key" (what `estuary certs`
// writes and a Kubernetes Secret mounts). ca, cert and key come together
// (mutual TLS on every gRPC channel and server); token_file alone or with
// them (a shared token checked on every call, and by the ring's handshake).
struct SecurityConfig {
  std::string ca;
  std::string cert;
  std::string key;
  std::string token_file;

  bool tls() const { return !ca.empty(); }
  bool enabled() const { return tls() || !token_file.empty(); }
};
absl::StatusOr<SecurityConfig> ParseSecurityConfig(const nlohmann::json& section,
                                                   const JsonPath& where,
                                                   const std::string& base_dir = "");

absl::StatusOr<RunConfig> ParseRunConfig(const nlohmann::json& section, const JsonPath& where);
absl::StatusOr<TrainSpec> ParseTrainSpec(const nlohmann::json& section, const JsonPath& where);
// eval_spec.steps: null means "until the input runs out".
absl::StatusOr<EvalSpec> ParseEvalSpec(const nlohmann::json& section, const JsonPath& where);
absl::StatusOr<DistributionConfig> ParseDistributionConfig(const nlohmann::json& section,
                                                           const JsonPath& where);

}  // namespace estuary

#endif  // ESTUARY_COMMON_JOB_CONFIG_H_
