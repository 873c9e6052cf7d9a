#include "common/job_config.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/io/env.h"
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

JsonField Required(JsonField f) {
  f.required = true;
  return f;
}

JsonField Enum(std::string name, std::vector<std::string> values) {
  JsonField f = F(std::move(name), K::kString);
  f.one_of = std::move(values);
  return f;
}

JsonField Array(std::string name, K element, double min = -kInf) {
  JsonField f = F(std::move(name), K::kArray, min);
  f.element = element;
  return f;
}

JsonField Object(std::string name, const JsonSchema* schema, K kind = K::kObject) {
  JsonField f = F(std::move(name), kind);
  f.schema = schema;
  return f;
}

// ---------------------------------------------------------------- estimator

const JsonSchema& EstimatorSchema() {
  static const auto* s = [] {
    std::vector<std::string> types;
    for (const EstimatorType& t : EstimatorTypes()) types.push_back(t.name);
    // Optimizer values are checked by ParseOptimizer (OptimizerTypes()).
    return new JsonSchema{{
        Required(Enum("type", types)),
        F("n_classes", K::kInt, 2),
        F("label_dimension", K::kInt, 1),
        Array("hidden_units", K::kInt, 1),
        Enum("activation_fn", {"relu", "tanh", "sigmoid", "elu", "selu", "softplus", "linear"}),
        F("dropout", K::kNumber, 0, 1),
        F("batch_norm", K::kBool),
        F("optimizer", K::kStringOrObject),
        F("linear_optimizer", K::kStringOrObject),
        F("dnn_optimizer", K::kStringOrObject),
        Array("linear_feature_columns", K::kString),
        Array("dnn_feature_columns", K::kString),
        Array("label_vocabulary", K::kString),
        F("weight_column", K::kString),
        Enum("loss_reduction", {"sum_over_batch_size", "sum"}),
        F("model_fn", K::kString),
        F("warm_start_from", K::kString),
        Object("params", nullptr),
    }};
  }();
  return *s;
}

// ---------------------------------------------------------- feature columns

const JsonSchema& NormalizerSchema() {
  static const auto* s = new JsonSchema{{F("mean", K::kNumber), F("stddev", K::kNumber)}};
  return *s;
}

// The keys each column type takes, besides "type" and "name".
std::vector<JsonField> ColumnFields(FeatureColumnKind kind) {
  const JsonField key = Required(F("key", K::kString));
  const JsonField value_dtype = Enum("dtype", {"string", "int64", "int32"});
  const JsonField oov = F("num_oov_buckets", K::kInt, 0);
  const JsonField vocab_default = F("default_value", K::kInt, -1);
  const JsonField categorical = Required(F("categorical_column", K::kString));
  switch (kind) {
    case FeatureColumnKind::kNumeric:
      return {key, Array("shape", K::kInt, 1), F("default_value", K::kNumber),
              Enum("dtype", {"float32", "float64", "int32", "int64"}),
              Object("normalizer", &NormalizerSchema())};
    case FeatureColumnKind::kBucketized:
      return {Required(F("source_column", K::kString)),
              Required(Array("boundaries", K::kNumber))};
    case FeatureColumnKind::kVocabularyList:
      // Integers for an int64 vocabulary (decimal strings work too).
      return {key, Required(Array("vocabulary_list", K::kStringOrInt)), oov, vocab_default,
              value_dtype};
    case FeatureColumnKind::kVocabularyFile:
      return {key, Required(F("vocabulary_file", K::kString)), F("vocabulary_size", K::kInt, 1),
              oov, vocab_default, value_dtype};
    case FeatureColumnKind::kHashBucket:
      return {key, Required(F("hash_bucket_size", K::kInt, 1)), value_dtype};
    case FeatureColumnKind::kIdentity:
      return {key, Required(F("num_buckets", K::kInt, 1)), F("default_value", K::kInt, 0)};
    case FeatureColumnKind::kCrossed:
      return {Required(Array("keys", K::kString)), Required(F("hash_bucket_size", K::kInt, 1))};
    case FeatureColumnKind::kIndicator:
      return {categorical};
    case FeatureColumnKind::kEmbedding:
      return {categorical, Required(F("dimension", K::kInt, 1)),
              Enum("combiner", {"sum", "mean", "sqrtn"}), F("max_norm", K::kNumber, 0),
              F("trainable", K::kBool)};
    case FeatureColumnKind::kWeightedCategorical:
      return {categorical, Required(F("weight_feature_key", K::kString))};
  }
  return {};
}

// The schema of one column type ("type", "name" and its own keys).
const JsonSchema& ColumnSchema(FeatureColumnKind kind) {
  static const auto* schemas = [] {
    auto* m = new std::map<FeatureColumnKind, JsonSchema>;
    std::vector<std::string> types;
    for (const FeatureColumnType& t : FeatureColumnTypes()) types.push_back(t.name);
    for (const FeatureColumnType& t : FeatureColumnTypes()) {
      JsonSchema s{{Required(Enum("type", types)), F("name", K::kString)}};
      for (JsonField& f : ColumnFields(t.kind)) s.fields.push_back(std::move(f));
      m->emplace(t.kind, std::move(s));
    }
    return m;
  }();
  return schemas->at(kind);
}

absl::StatusOr<FeatureColumnConfig> ParseFeatureColumn(const json& s, const JsonPath& where,
                                                       const std::string& base_dir) {
  if (!s.is_object()) return where.Error(absl::StrCat("expected an object, got ", DescribeJson(s)));
  // The type picks the schema; check it first (required, one of the list).
  static const auto* type_only = [] {
    std::vector<std::string> types;
    for (const FeatureColumnType& t : FeatureColumnTypes()) types.push_back(t.name);
    return new JsonSchema{{Required(Enum("type", types))}};
  }();
  json type = json::object();
  if (s.contains("type")) type["type"] = s["type"];
  RETURN_IF_ERROR(ValidateJson(type, *type_only, where));
  FeatureColumnConfig c;
  c.where = where;
  for (const FeatureColumnType& t : FeatureColumnTypes()) {
    if (s["type"] == t.name) c.kind = t.kind;
  }
  RETURN_IF_ERROR(ValidateJson(s, ColumnSchema(c.kind), where));

  ReadJson(s, "name", &c.name);
  if (IsSet(s, "name") && c.name.empty()) return where.Key("name").Error("must not be empty");
  ReadJson(s, "key", &c.key);
  if (IsSet(s, "dtype") && c.kind != FeatureColumnKind::kNumeric) {
    c.value_dtype = s["dtype"] == "string" ? DType::kString : DType::kInt64;
  }
  switch (c.kind) {
    case FeatureColumnKind::kNumeric: {
      ReadJson(s, "shape", &c.shape);
      if (c.shape.empty()) return where.Key("shape").Error("must not be empty");
      ReadJson(s, "default_value", &c.default_value);
      if (IsSet(s, "normalizer")) {
        FeatureColumnConfig::Normalizer n;
        ReadJson(s["normalizer"], "mean", &n.mean);
        ReadJson(s["normalizer"], "stddev", &n.stddev);
        if (n.stddev == 0.0) return where.Key("normalizer").Key("stddev").Error("must not be 0");
        c.normalizer = n;
      }
      break;
    }
    case FeatureColumnKind::kBucketized:
      ReadJson(s, "source_column", &c.source_column);
      ReadJson(s, "boundaries", &c.boundaries);
      for (size_t k = 1; k < c.boundaries.size(); ++k) {
        if (!(c.boundaries[k - 1] < c.boundaries[k])) {
          return where.Key("boundaries").Index(k).Error("boundaries must be sorted ascending");
        }
      }
      break;
    case FeatureColumnKind::kVocabularyList:
    case FeatureColumnKind::kVocabularyFile: {
      ReadJson(s, "num_oov_buckets", &c.num_oov_buckets);
      ReadJson(s, "default_value", &c.default_id);
      if (c.num_oov_buckets > 0 && c.default_id != -1) {
        return where.Key("default_value").Error("can't set both num_oov_buckets and default_value");
      }
      if (c.kind == FeatureColumnKind::kVocabularyFile) {
        ReadJson(s, "vocabulary_file", &c.vocabulary_file);
        if (c.vocabulary_file.empty()) return where.Key("vocabulary_file").Error("must not be empty");
        if (!base_dir.empty() && c.vocabulary_file[0] != '/') {
          c.vocabulary_file = io::JoinPath(base_dir, c.vocabulary_file);
        }
        ReadJson(s, "vocabulary_size", &c.vocabulary_size);
        break;
      }
      const json& vl = s["vocabulary_list"];
      if (vl.empty()) return where.Key("vocabulary_list").Error("must not be empty");
      for (size_t k = 0; k < vl.size(); ++k) {
        if (c.value_dtype == DType::kString) {
          if (!vl[k].is_string()) {
            return where.Key("vocabulary_list").Index(k).Error(
                absl::StrCat("expected a string (dtype is string), got ", DescribeJson(vl[k])));
          }
          c.string_vocabulary.push_back(vl[k].get<std::string>());
          continue;
        }
        int64_t v = 0;
        if (vl[k].is_number_integer()) {
          v = vl[k].get<int64_t>();
        } else if (!absl::SimpleAtoi(vl[k].get<std::string>(), &v)) {
          return where.Key("vocabulary_list").Index(k).Error(
              absl::StrCat("expected an int64 (dtype is int64), got ", DescribeJson(vl[k])));
        }
        c.int_vocabulary.push_back(v);
      }
      break;
    }
    case FeatureColumnKind::kHashBucket:
      ReadJson(s, "hash_bucket_size", &c.hash_bucket_size);
      break;
    case FeatureColumnKind::kIdentity:
      ReadJson(s, "num_buckets", &c.num_buckets);
      ReadJson(s, "default_value", &c.identity_default);
      if (c.identity_default.has_value() && *c.identity_default >= c.num_buckets) {
        return where.Key("default_value")
            .Error(absl::StrCat("must be < num_buckets (", c.num_buckets, ")"));
      }
      break;
    case FeatureColumnKind::kCrossed:
      ReadJson(s, "keys", &c.keys);
      ReadJson(s, "hash_bucket_size", &c.hash_bucket_size);
      if (c.keys.size() < 2) return where.Key("keys").Error("expected at least 2 keys");
      break;
    case FeatureColumnKind::kIndicator:
    case FeatureColumnKind::kEmbedding:
    case FeatureColumnKind::kWeightedCategorical:
      ReadJson(s, "categorical_column", &c.categorical_column);
      ReadJson(s, "dimension", &c.dimension);
      ReadJson(s, "combiner", &c.combiner);
      ReadJson(s, "max_norm", &c.max_norm);
      if (c.max_norm.has_value() && !(*c.max_norm > 0)) {
        return where.Key("max_norm").Error("expected a number > 0");
      }
      ReadJson(s, "trainable", &c.trainable);
      ReadJson(s, "weight_feature_key", &c.weight_feature_key);
      if (c.kind == FeatureColumnKind::kWeightedCategorical && c.weight_feature_key.empty()) {
        return where.Key("weight_feature_key").Error("must not be empty");
      }
      break;
  }
  return c;
}

// ------------------------------------------------------------------- inputs

const JsonSchema& InputSchema() {
  static const auto* s = new JsonSchema{{
      Required(Enum("format", {"csv", "tfrecord", "idx"})),
      Array("files", K::kString),
      F("images", K::kString),
      F("labels", K::kString),
      F("label_key", K::kString),
      F("batch_size", K::kInt, 1),  // required, checked after the whole section
      F("shuffle_buffer_size", K::kInt, 0),
      F("num_epochs", K::kInt, -1),  // -1: repeat forever (tf.data repeat(-1))
      F("seed", K::kInt, 0),
      Enum("shard", {"auto", "off"}),
      F("num_parallel_readers", K::kInt, 1, 256),
      F("prefetch_batches", K::kInt, 0),
      F("drop_remainder", K::kBool),
      F("header", K::kBool),
      Array("column_names", K::kString),
      Array("column_defaults", K::kAny),  // the CSV parser's format
      F("field_delim", K::kString),
      Enum("compression", {"", "none", "gzip"}),
      Enum("bad_record_policy", {"fail", "skip"}),
      F("scale_pixels", K::kBool),  // idx: pixels / 255 (default true)
      Object("features", nullptr),  // tfrecord: tf.train.Example feature spec
  }};
  return *s;
}

// --------------------------------------------------- run config, specs, cluster

const JsonSchema& RunConfigSchema() {
  static const auto* s = new JsonSchema{{
      F("tf_random_seed", K::kInt),
      F("save_summary_steps", K::kInt, 0),
      F("save_checkpoints_steps", K::kInt, 1),
      F("save_checkpoints_secs", K::kNumber, 0),
      F("keep_checkpoint_max", K::kInt, 0),
      F("log_step_count_steps", K::kInt, 1),
      F("intra_op_parallelism_threads", K::kInt, 1, 256),
      Enum("checkpoint_format", {"native", "tf"}),
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
      Enum("compare", {"less", "greater", "lower", "higher"}),
  }};
  return *s;
}

const JsonSchema& EvalSpecSchema() {
  static const auto* s = [] {
    JsonField exporters = Array("exporters", K::kObject);
    exporters.schema = &ExporterSchema();
    return new JsonSchema{{
        F("steps", K::kInt, 1),
        F("name", K::kString),
        F("start_delay_secs", K::kNumber, 0),
        F("throttle_secs", K::kNumber, 0),
        exporters,
    }};
  }();
  return *s;
}

const JsonSchema& EvalDistributeSchema() {
  static const auto* s = new JsonSchema{{
      Enum("strategy", {"one_device", "mirrored"}),
      F("num_replicas", K::kInt, 1, 4096),
  }};
  return *s;
}

const JsonSchema& DistributionSchema() {
  static const auto* s = new JsonSchema{{
      Enum("strategy", {"auto", "one_device", "mirrored", "multi_worker_mirrored",
                        "central_storage", "parameter_server"}),
      Enum("communication", {"auto", "ring", "nccl"}),
      F("num_replicas_per_worker", K::kInt, 1, 4096),
      Object("eval_distribute", &EvalDistributeSchema()),
      F("collective_timeout_secs", K::kNumber, 0.01, 86400),
      F("overlap_backward", K::kBool),
      F("ring_shared_memory", K::kBool),
      F("bucket_bytes", K::kInt, 1024, 1e12),
      F("pull_with_push", K::kBool),
      F("ps_data_plane", K::kBool),
      F("heartbeat_interval_secs", K::kNumber, 0.01, 3600),
      F("heartbeat_timeout_secs", K::kNumber, 0.05, 86400),
      F("startup_timeout_secs", K::kNumber, 0.1, 86400),
      F("shutdown_timeout_secs", K::kNumber, 0.1, 86400),
  }};
  return *s;
}

const JsonSchema& SecuritySchema() {
  static const auto* s = [] {
    auto path = [](const char* name, const char* help) {
      JsonField f = F(name, K::kString);
      f.help = help;
      return f;
    };
    return new JsonSchema{{
        path("ca", "the job's CA certificate (PEM)"),
        path("cert", "this task's certificate (PEM); {task} = <type>-<index>"),
        path("key", "this task's private key (PEM); {task} = <type>-<index>"),
        path("token_file", "a file holding the job's shared token"),
    }};
  }();
  return *s;
}

void ReadSecs(const json& obj, const char* key, absl::Duration* out) {
  if (IsSet(obj, key)) *out = absl::Seconds(obj[key].get<double>());
}

}  // namespace

const std::vector<EstimatorType>& EstimatorTypes() {
  static const auto* types = new std::vector<EstimatorType>{
      {"linear_classifier", ModelFamily::kLinear, true},
      {"linear_regressor", ModelFamily::kLinear, false},
      {"dnn_classifier", ModelFamily::kDnn, true},
      {"dnn_regressor", ModelFamily::kDnn, false},
      {"dnn_linear_combined_classifier", ModelFamily::kDnnLinearCombined, true},
      {"dnn_linear_combined_regressor", ModelFamily::kDnnLinearCombined, false},
      {"baseline_classifier", ModelFamily::kBaseline, true},
      {"baseline_regressor", ModelFamily::kBaseline, false},
      {"custom", ModelFamily::kCustom, false},
  };
  return *types;
}

const std::vector<FeatureColumnType>& FeatureColumnTypes() {
  static const auto* types = new std::vector<FeatureColumnType>{
      {"numeric", FeatureColumnKind::kNumeric},
      {"bucketized", FeatureColumnKind::kBucketized},
      {"categorical_with_vocabulary_list", FeatureColumnKind::kVocabularyList},
      {"categorical_with_vocabulary_file", FeatureColumnKind::kVocabularyFile},
      {"categorical_with_hash_bucket", FeatureColumnKind::kHashBucket},
      {"categorical_with_identity", FeatureColumnKind::kIdentity},
      {"crossed", FeatureColumnKind::kCrossed},
      {"indicator", FeatureColumnKind::kIndicator},
      {"embedding", FeatureColumnKind::kEmbedding},
      {"weighted_categorical", FeatureColumnKind::kWeightedCategorical},
  };
  return *types;
}

const char* FeatureColumnTypeName(FeatureColumnKind kind) {
  for (const FeatureColumnType& t : FeatureColumnTypes()) {
    if (t.kind == kind) return t.name;
  }
  return "?";
}

absl::StatusOr<EstimatorConfig> ParseEstimatorConfig(const json& est, const JsonPath& where) {
  RETURN_IF_ERROR(ValidateJson(est, EstimatorSchema(), where));
  EstimatorConfig c;
  c.where = where;
  const std::string type = est["type"].get<std::string>();
  for (const EstimatorType& t : EstimatorTypes()) {
    if (type == t.name) c.type = t;
  }
  const ModelFamily family = c.type.family;
  const bool combined = family == ModelFamily::kDnnLinearCombined;
  const bool has_dnn = family == ModelFamily::kDnn || combined;

  if (IsSet(est, "n_classes") && !c.type.classifier && family != ModelFamily::kCustom) {
    return where.Key("n_classes").Error("only classifiers take n_classes");
  }
  ReadJson(est, "n_classes", &c.n_classes);
  ReadJson(est, "label_dimension", &c.label_dimension);
  ReadJson(est, "label_vocabulary", &c.label_vocabulary);
  ReadJson(est, "weight_column", &c.weight_column);
  ReadJson(est, "loss_reduction", &c.loss_reduction);

  if (has_dnn && !IsSet(est, "hidden_units")) {
    return where.Key("hidden_units").Error("is required for DNN estimators");
  }
  ReadJson(est, "hidden_units", &c.hidden_units);
  ReadJson(est, "activation_fn", &c.activation_fn);
  ReadJson(est, "dropout", &c.dropout);
  ReadJson(est, "batch_norm", &c.batch_norm);

  for (const char* key : {"linear_optimizer", "dnn_optimizer"}) {
    if (!combined && IsSet(est, key)) {
      return where.Key(key).Error("only dnn_linear_combined_* estimators take it (use \"optimizer\")");
    }
  }
  if (combined && IsSet(est, "optimizer")) {
    return where.Key("optimizer")
        .Error("dnn_linear_combined_* estimators take linear_optimizer and dnn_optimizer");
  }
  auto optimizer = [&](const char* key, const char* default_type) {
    return ParseOptimizer(IsSet(est, key) ? est[key] : json(), default_type, where.Key(key));
  };
  if (combined) {
    ASSIGN_OR_RETURN(c.linear_optimizer, optimizer("linear_optimizer", "ftrl"));
    ASSIGN_OR_RETURN(c.dnn_optimizer, optimizer("dnn_optimizer", "adagrad"));
  } else {
    ASSIGN_OR_RETURN(c.optimizer, optimizer("optimizer", family == ModelFamily::kDnn ? "adagrad"
                                                                                      : "ftrl"));
  }
  ReadJson(est, "linear_feature_columns", &c.linear_feature_columns);
  ReadJson(est, "dnn_feature_columns", &c.dnn_feature_columns);
  ReadJson(est, "warm_start_from", &c.warm_start_from);
  ReadJson(est, "model_fn", &c.model_fn);
  if (IsSet(est, "params")) c.params = est["params"];
  return c;
}

absl::StatusOr<std::vector<FeatureColumnConfig>> ParseFeatureColumns(const json& section,
                                                                     const JsonPath& where,
                                                                     const std::string& base_dir) {
  std::vector<FeatureColumnConfig> columns;
  if (section.is_null()) return columns;
  if (!section.is_array()) {
    return where.Error(absl::StrCat("expected an array of objects, got ", DescribeJson(section)));
  }
  // Reference names given up front (explicit names, else keys) must be unique.
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < section.size(); ++i) {
    ASSIGN_OR_RETURN(FeatureColumnConfig c, ParseFeatureColumn(section[i], where.Index(i), base_dir));
    const bool named = !c.name.empty();
    const std::string& ref = named ? c.name : c.key;
    if (!ref.empty()) {
      if (auto [it, inserted] = names.emplace(ref, i); !inserted) {
        return where.Index(i).Key(named ? "name" : "key").Error(
            absl::StrCat("duplicate column name '", ref, "' (also ", where.path(), "[",
                         it->second, "])"));
      }
    }
    columns.push_back(std::move(c));
  }
  return columns;
}

absl::StatusOr<InputConfig> ParseInputConfig(const json& in, const JsonPath& where) {
  RETURN_IF_ERROR(ValidateJson(in, InputSchema(), where));
  InputConfig c;
  c.where = where;
  const std::string format = in["format"].get<std::string>();
  c.format = format == "idx"        ? InputFormat::kIdx
             : format == "tfrecord" ? InputFormat::kTfRecord
                                    : InputFormat::kCsv;
  ReadJson(in, "files", &c.files);
  ReadJson(in, "images", &c.images);
  ReadJson(in, "labels", &c.labels);
  if (c.format == InputFormat::kIdx) {
    if (c.images.empty()) return where.Key("images").Error("is required for format \"idx\"");
    if (c.labels.empty()) return where.Key("labels").Error("is required for format \"idx\"");
  } else if (c.files.empty()) {
    return where.Key("files").Error(absl::StrCat("is required for format \"", format, "\""));
  }
  if (!IsSet(in, "batch_size")) return where.Key("batch_size").Error("is required");
  ReadJson(in, "batch_size", &c.batch_size);
  ReadJson(in, "shuffle_buffer_size", &c.shuffle_buffer_size);
  ReadJson(in, "num_epochs", &c.num_epochs);
  if (c.num_epochs == 0) {
    return where.Key("num_epochs").Error("must be >= 1, or -1 to repeat forever");
  }
  if (IsSet(in, "seed")) c.seed = static_cast<uint64_t>(in["seed"].get<int64_t>());
  if (IsSet(in, "shard") && in["shard"] == "off") c.shard = InputShardPolicy::kOff;
  ReadJson(in, "num_parallel_readers", &c.num_parallel_readers);
  ReadJson(in, "prefetch_batches", &c.prefetch_batches);
  ReadJson(in, "drop_remainder", &c.drop_remainder);
  ReadJson(in, "label_key", &c.label_key);
  c.skip_bad_records = IsSet(in, "bad_record_policy") && in["bad_record_policy"] == "skip";
  ReadJson(in, "header", &c.header);
  ReadJson(in, "column_names", &c.column_names);
  if (IsSet(in, "column_defaults")) {
    const json& defaults = in["column_defaults"];
    for (size_t i = 0; i < defaults.size(); ++i) {
      ASSIGN_OR_RETURN(CsvColumnDefault d,
                       ParseCsvColumnDefault(defaults[i], where.Key("column_defaults").Index(i)));
      c.column_defaults.push_back(std::move(d));
    }
  }
  if (IsSet(in, "field_delim")) {
    const std::string d = in["field_delim"].get<std::string>();
    if (d.size() != 1 || d == "\"" || d == "\n" || d == "\r") {
      return where.Key("field_delim").Error(absl::StrCat(
          "expected one character (not a quote or line break), got \"", d, "\""));
    }
    c.field_delim = d[0];
  }
  ReadJson(in, "scale_pixels", &c.scale_pixels);
  if (IsSet(in, "compression")) {
    absl::StatusOr<io::Compression> compression =
        io::ParseCompression(in["compression"].get<std::string>());
    if (!compression.ok()) return where.Key("compression").Error(compression.status().message());
    c.compression = *compression;
  }
  if (IsSet(in, "features")) {
    ASSIGN_OR_RETURN(c.features, ParseExampleFeatures(in["features"], where.Key("features")));
  }
  if (c.format == InputFormat::kTfRecord && c.features.empty()) {
    return where.Key("features").Error(
        "is required for format \"tfrecord\" (the tf.train.Example features to parse: "
        "{\"key\": {\"dtype\", \"shape\", \"default\", \"var_len\"}})");
  }
  if (c.format == InputFormat::kCsv) {
    if (c.column_defaults.empty()) {
      return where.Key("column_defaults").Error(
          "is required for format \"csv\" (one default per column; its type is the column's "
          "type)");
    }
    if (c.column_names.empty() && !c.header) {
      return where.Key("column_names").Error(
          "is required for format \"csv\" unless \"header\": true");
    }
    if (!c.column_names.empty() && c.column_names.size() != c.column_defaults.size()) {
      return where.Key("column_defaults").Error(absl::StrCat(
          "has ", c.column_defaults.size(), " entries but column_names has ",
          c.column_names.size()));
    }
  }
  return c;
}

absl::StatusOr<CsvColumnDefault> ParseCsvColumnDefault(const json& value, const JsonPath& where) {
  CsvColumnDefault c;
  if (value.is_number_integer()) {
    c.dtype = DType::kInt64;
    c.int_default = value.get<int64_t>();
  } else if (value.is_number()) {
    c.dtype = DType::kFloat;
    c.float_default = value.get<float>();
  } else if (value.is_string()) {
    c.dtype = DType::kString;
    c.string_default = value.get<std::string>();
  } else if (value.is_array()) {
    if (!value.empty()) {
      return where.Error(
          "expected [] (a required float column); give a default as a scalar, e.g. 0.0");
    }
    c.dtype = DType::kFloat;
    c.required = true;
  } else if (value.is_object()) {
    for (const auto& [key, unused] : value.items()) {
      if (key != "dtype" && key != "default") {
        return where.Error(absl::StrCat("unknown key '", key, "' (expected dtype, default)"));
      }
    }
    const std::string dtype = IsSet(value, "dtype") && value["dtype"].is_string()
                                  ? value["dtype"].get<std::string>()
                                  : "";
    if (dtype == "float32") {
      c.dtype = DType::kFloat;
    } else if (dtype == "int64") {
      c.dtype = DType::kInt64;
    } else if (dtype == "string") {
      c.dtype = DType::kString;
    } else {
      return where.Error("expected \"dtype\": \"float32\", \"int64\" or \"string\"");
    }
    if (!IsSet(value, "default")) {
      c.required = true;
      return c;
    }
    const json& v = value["default"];
    const JsonPath p = where.Key("default");
    if (c.dtype == DType::kString) {
      if (!v.is_string()) return p.Error("expected a string default");
      c.string_default = v.get<std::string>();
    } else if (c.dtype == DType::kInt64) {
      if (!v.is_number_integer()) return p.Error("expected an integer default");
      c.int_default = v.get<int64_t>();
    } else {
      if (!v.is_number()) return p.Error("expected a number default");
      c.float_default = v.get<float>();
    }
  } else {
    return where.Error(absl::StrCat(
        "expected a default value (number, string, [] or {\"dtype\": ...}), got ", value.dump()));
  }
  return c;
}

absl::StatusOr<std::vector<ExampleFeatureConfig>> ParseExampleFeatures(const json& features,
                                                                       const JsonPath& where) {
  if (!features.is_object() || features.empty()) {
    return where.Error(
        "expected an object mapping feature keys to {\"dtype\", \"shape\", \"default\", "
        "\"var_len\"}");
  }
  std::vector<ExampleFeatureConfig> out;
  for (auto it = features.begin(); it != features.end(); ++it) {
    const JsonPath p = where.Key(it.key());
    const json& f = it.value();
    if (!f.is_object()) return p.Error("expected an object");
    for (auto k = f.begin(); k != f.end(); ++k) {
      if (k.key() != "dtype" && k.key() != "shape" && k.key() != "default" &&
          k.key() != "var_len") {
        return p.Key(k.key()).Error("unknown key (expected dtype, shape, default, var_len)");
      }
    }
    ExampleFeatureConfig c;
    c.key = it.key();
    if (!IsSet(f, "dtype")) return p.Key("dtype").Error("is required");
    const json& d = f["dtype"];
    const std::string dtype = d.is_string() ? d.get<std::string>() : "";
    if (!d.is_string()) {
      return p.Key("dtype").Error("expected \"float32\", \"int64\" or \"string\"");
    }
    if (dtype == "float32") {
      c.dtype = DType::kFloat;
    } else if (dtype == "int64") {
      c.dtype = DType::kInt64;
    } else if (dtype == "string") {
      c.dtype = DType::kString;
    } else {
      return p.Key("dtype").Error(
          absl::StrCat("'", dtype, "' is not one of float32, int64, string"));
    }
    if (IsSet(f, "var_len")) {
      if (!f["var_len"].is_boolean()) return p.Key("var_len").Error("expected true or false");
      c.var_len = f["var_len"].get<bool>();
    }
    if (c.var_len) {
      out.push_back(std::move(c));
      continue;
    }
    if (IsSet(f, "shape")) {
      if (!f["shape"].is_array()) return p.Key("shape").Error("expected an array of integers");
      for (const json& dim : f["shape"]) {
        if (!dim.is_number_integer() || dim.get<int64_t>() < 0) {
          return p.Key("shape").Error("expected non-negative integers");
        }
        c.shape.push_back(dim.get<int64_t>());
      }
    }
    if (IsSet(f, "default")) {
      const json& v = f["default"];
      const JsonPath dp = p.Key("default");
      const std::vector<json> values =
          v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v};
      Tensor t;
      t.dtype = c.dtype;
      t.shape = {static_cast<int64_t>(values.size())};
      for (const json& e : values) {
        if (c.dtype == DType::kString) {
          if (!e.is_string()) return dp.Error("expected a string default");
          t.strings.push_back(e.get<std::string>());
        } else if (c.dtype == DType::kInt64) {
          if (!e.is_number_integer()) return dp.Error("expected an integer default");
          t.ints.push_back(e.get<int64_t>());
        } else {
          if (!e.is_number()) return dp.Error("expected a number default");
          t.floats.push_back(e.get<float>());
        }
      }
      c.default_value = std::move(t);
    }
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<RunConfig> ParseRunConfig(const json& rc, const JsonPath& where) {
  RunConfig c;  // an absent section reads as {}: TF's defaults
  if (!rc.is_null()) RETURN_IF_ERROR(ValidateJson(rc, RunConfigSchema(), where));
  if (IsSet(rc, "save_checkpoints_steps") && IsSet(rc, "save_checkpoints_secs")) {
    return where.Error("set save_checkpoints_steps or save_checkpoints_secs, not both");
  }
  if (IsSet(rc, "tf_random_seed")) {
    c.has_tf_random_seed = true;
    c.tf_random_seed = rc["tf_random_seed"].get<int64_t>();
  }
  ReadJson(rc, "save_summary_steps", &c.save_summary_steps);
  ReadJson(rc, "save_checkpoints_steps", &c.save_checkpoints_steps);
  if (!c.save_checkpoints_steps.has_value()) {
    c.save_checkpoints_secs = 600;
    ReadJson(rc, "save_checkpoints_secs", &c.save_checkpoints_secs);
  }
  ReadJson(rc, "keep_checkpoint_max", &c.keep_checkpoint_max);
  ReadJson(rc, "log_step_count_steps", &c.log_step_count_steps);
  ReadJson(rc, "intra_op_parallelism_threads", &c.intra_op_parallelism_threads);
  ReadJson(rc, "checkpoint_format", &c.checkpoint_format);
  return c;
}

absl::StatusOr<TrainSpec> ParseTrainSpec(const json& ts, const JsonPath& where) {
  TrainSpec c;
  if (!ts.is_null()) RETURN_IF_ERROR(ValidateJson(ts, TrainSpecSchema(), where));
  ReadJson(ts, "max_steps", &c.max_steps);
  return c;
}

absl::StatusOr<EvalSpec> ParseEvalSpec(const json& es, const JsonPath& where) {
  EvalSpec c;
  if (!es.is_null()) RETURN_IF_ERROR(ValidateJson(es, EvalSpecSchema(), where));
  if (es.contains("steps") && es["steps"].is_null()) c.steps.reset();
  ReadJson(es, "steps", &c.steps);
  ReadJson(es, "name", &c.name);
  ReadJson(es, "start_delay_secs", &c.start_delay_secs);
  ReadJson(es, "throttle_secs", &c.throttle_secs);
  if (!es.is_null() && IsSet(es, "exporters")) {
    std::set<std::string> names;
    for (size_t i = 0; i < es["exporters"].size(); ++i) {
      const json& e = es["exporters"][i];
      ExporterConfig x;
      x.where = where.Key("exporters").Index(i);
      if (!IsSet(e, "type")) return x.where.Key("type").Error("is required (latest, best or final)");
      ReadJson(e, "type", &x.type);
      x.name = x.type;
      ReadJson(e, "name", &x.name);
      ReadJson(e, "exports_to_keep", &x.exports_to_keep);
      if (x.type != "best" && (IsSet(e, "metric") || IsSet(e, "compare"))) {
        return x.where.Error(
            absl::StrCat("metric and compare are for a 'best' exporter, not '", x.type, "'"));
      }
      ReadJson(e, "metric", &x.metric);
      std::string compare = "less";
      ReadJson(e, "compare", &compare);
      x.higher_is_better = compare == "greater" || compare == "higher";
      if (!names.insert(x.name).second) {
        return x.where.Key("name").Error(absl::StrCat("duplicate exporter name '", x.name, "'"));
      }
      c.exporters.push_back(std::move(x));
    }
  }
  return c;
}

absl::StatusOr<DistributionConfig> ParseDistributionConfig(const json& d, const JsonPath& where) {
  DistributionConfig c;
  if (!d.is_null()) RETURN_IF_ERROR(ValidateJson(d, DistributionSchema(), where));
  ReadJson(d, "strategy", &c.strategy);
  ReadJson(d, "communication", &c.communication);
  ReadJson(d, "num_replicas_per_worker", &c.num_replicas_per_worker);
  if (IsSet(d, "eval_distribute")) {
    const json& e = d["eval_distribute"];
    DistributionConfig::EvalDistribute& ed = c.eval_distribute;
    ed.strategy = "mirrored";  // the object's default: TF's MirroredStrategy()
    ReadJson(e, "strategy", &ed.strategy);
    ed.num_replicas = ed.strategy == "mirrored" ? c.num_replicas_per_worker : 1;
    ReadJson(e, "num_replicas", &ed.num_replicas);
    if (ed.strategy == "one_device" && ed.num_replicas != 1) {
      return where.Key("eval_distribute").Key("num_replicas")
          .Error(absl::StrCat("must be 1 under strategy 'one_device', not ", ed.num_replicas,
                              " (use 'mirrored' for several replicas)"));
    }
  }
  ReadSecs(d, "collective_timeout_secs", &c.collective_timeout);
  ReadJson(d, "overlap_backward", &c.overlap_backward);
  ReadJson(d, "ring_shared_memory", &c.ring_shared_memory);
  ReadJson(d, "bucket_bytes", &c.bucket_bytes);
  if (IsSet(d, "pull_with_push")) c.pull_with_push = d["pull_with_push"].get<bool>();
  ReadJson(d, "ps_data_plane", &c.ps_data_plane);
  ReadSecs(d, "heartbeat_interval_secs", &c.heartbeat_interval);
  ReadSecs(d, "heartbeat_timeout_secs", &c.heartbeat_timeout);
  ReadSecs(d, "startup_timeout_secs", &c.startup_timeout);
  ReadSecs(d, "shutdown_timeout_secs", &c.shutdown_timeout);
  if (c.heartbeat_timeout <= c.heartbeat_interval) {
    return where.Key("heartbeat_timeout_secs")
        .Error(absl::StrCat("must be greater than heartbeat_interval_secs (",
                            absl::ToDoubleSeconds(c.heartbeat_interval), ")"));
  }
  return c;
}

absl::StatusOr<SecurityConfig> ParseSecurityConfig(const json& section, const JsonPath& where,
                                                   const std::string& base_dir) {
  SecurityConfig c;
  if (section.is_null()) return c;
  RETURN_IF_ERROR(ValidateJson(section, SecuritySchema(), where));
  const std::pair<const char*, std::string*> paths[] = {
      {"ca", &c.ca}, {"cert", &c.cert}, {"key", &c.key}, {"token_file", &c.token_file}};
  for (const auto& [key, out] : paths) {
    ReadJson(section, key, out);
    if (IsSet(section, key) && out->empty()) return where.Key(key).Error("must not be empty");
    if (!out->empty() && !base_dir.empty() && (*out)[0] != '/') {
      const bool dir = out->back() == '/';
      *out = io::JoinPath(base_dir, *out);
      if (dir && out->back() != '/') *out += '/';
    }
  }
  const int tls_parts = !c.ca.empty() + !c.cert.empty() + !c.key.empty();
  if (tls_parts != 0 && tls_parts != 3) {
    const char* missing = c.ca.empty() ? "ca" : c.cert.empty() ? "cert" : "key";
    return where.Key(missing).Error(
        "is required with the other TLS fields: ca, cert and key come together (mutual TLS)");
  }
  return c;
}

}  // namespace estuary
