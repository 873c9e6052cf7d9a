// EstimatorFromJob / InputFnFromJob: the premade estimators of a job file,
// with tf.estimator's defaults, built from the job's typed sections
// (common/job_config.h; the parse has checked every key and rule that does
// not need the columns or the model).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "estimator/dnn_model.h"
#include "estimator/estimator.h"
#include "estimator/feature_column_builder.h"
#include "estimator/premade.h"

namespace estuary {
namespace {

// TF's linear learning rate: min(cap, 1/sqrt(number of columns)).
double LinearLearningRate(double cap, size_t columns) {
  return std::min(cap, 1.0 / std::sqrt(static_cast<double>(std::max<size_t>(1, columns))));
}

// The learning rate tf.keras.optimizers.legacy.<type>() takes by default.
double KerasDefaultLearningRate(const std::string& type) {
  return type == "sgd" || type == "momentum" ? 0.01 : 0.001;
}

// TF 2.15's premade V2 estimators, when the job gives no learning rate
// (their optimizer arguments default to the strings 'Ftrl' / 'Adagrad', and
// get_optimizer_instance_v2(name, rate) gives a string that rate):
//   linear      0.2 (linear.py's min(0.2, 1/sqrt(columns)) default
//               optimizer is dead code in V2: `optimizer or default` never
//               reaches it)
//   DNN         the Keras optimizer's own default (Adagrad: 0.001):
//               _dnn_model_fn_v2 calls get_optimizer_instance_v2(name)
//               without a rate, so dnn.py's _LEARNING_RATE = 0.05 is unused
//   combined    DNN part 0.001; linear part min(0.005, 1/sqrt(columns))
//   baseline    0.3
constexpr double kLinearLearningRate = 0.2;

absl::StatusOr<std::unique_ptr<Head>> MakeHead(const EstimatorConfig& est) {
  HeadOptions options;
  options.weight_column = est.weight_column;
  options.label_vocabulary = est.label_vocabulary;
  if (est.loss_reduction.has_value()) {
    absl::StatusOr<LossReduction> r = ParseLossReduction(*est.loss_reduction);
    if (!r.ok()) return est.where.Key("loss_reduction").Error(r.status().message());
    options.loss_reduction = *r;
  }
  options.n_classes = static_cast<int>(est.n_classes);
  options.label_dimension = static_cast<int>(est.label_dimension);
  if (est.type.classifier) {
    absl::StatusOr<std::unique_ptr<Head>> head = CreateClassifierHead(options);
    if (!head.ok()) return est.where.Wrap(head.status());
    return head;
  }
  absl::StatusOr<std::unique_ptr<RegressionHead>> head = RegressionHead::Create(options);
  if (!head.ok()) return est.where.Wrap(head.status());
  return std::unique_ptr<Head>(*std::move(head));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> EstimatorFromJob(const JobSpec& job,
                                                            EstimatorJobOptions extra) {
  if (!job.estimator.has_value()) {
    return JsonPath(job.source).Key("estimator").Error("is required to train, evaluate or predict");
  }
  const EstimatorConfig& est = *job.estimator;
  if (est.type.family == ModelFamily::kCustom) {
    return est.where.Key("type").Error(
        "'custom' models are built in C++ (see estimator/model.h), not from a job file");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Head> head, MakeHead(est));
  const int64_t logits_dim = head->logits_dimension();

  EstimatorOptions options;
  options.model_dir = job.model_dir;
  options.run_config = job.run_config;
  options.warm_start_from = est.warm_start_from;
  options.strategy_factory = std::move(extra.strategy_factory);
  options.is_chief = extra.is_chief;
  options.now = std::move(extra.now);
  options.eval_replicas = job.distribution.eval_distribute.num_replicas;
  options.job = std::make_shared<const JobSpec>(job);
  ASSIGN_OR_RETURN(FeatureColumnSet set, BuildFeatureColumns(job));
  const JsonPath linear_where = est.where.Key("linear_feature_columns");
  const JsonPath dnn_where = est.where.Key("dnn_feature_columns");
  switch (est.type.family) {
    case ModelFamily::kBaseline: {
      options.model = MakeBaselineModel(logits_dim);
      ASSIGN_OR_RETURN(options.optimizers[""], MakeOptimizer(est.optimizer, 0.3));
      break;
    }
    case ModelFamily::kLinear: {
      ASSIGN_OR_RETURN(std::vector<ColumnPtr> cols,
                       set.Select(est.linear_feature_columns, linear_where, set.LinearColumns()));
      if (cols.empty()) {
        return JsonPath(job.source).Key("feature_columns").Error("a linear model needs columns");
      }
      ASSIGN_OR_RETURN(options.model, MakeLinearModel(cols, logits_dim));
      ASSIGN_OR_RETURN(options.optimizers[""],
                       MakeOptimizer(est.optimizer, kLinearLearningRate));
      break;
    }
    case ModelFamily::kDnn:
    case ModelFamily::kDnnLinearCombined: {
      const bool combined = est.type.family == ModelFamily::kDnnLinearCombined;
      DnnModelOptions dnn;
      ASSIGN_OR_RETURN(dnn.dnn_columns,
                       set.Select(est.dnn_feature_columns, dnn_where, set.DenseColumns()));
      if (combined) {
        ASSIGN_OR_RETURN(dnn.linear_columns, set.Select(est.linear_feature_columns,
                                                    linear_where, set.LinearColumns()));
      }
      dnn.mlp.hidden_units = est.hidden_units;
      if (est.activation_fn.has_value()) {
        absl::StatusOr<nn::Activation> a = nn::ParseActivation(*est.activation_fn);
        if (!a.ok()) return est.where.Key("activation_fn").Error(a.status().message());
        dnn.mlp.activation = *a;
      }
      dnn.mlp.dropout = est.dropout;
      dnn.mlp.batch_norm = est.batch_norm;
      dnn.mlp.logits_dimension = logits_dim;
      dnn.num_threads = job.run_config.intra_op_parallelism_threads;
      const size_t n_linear = dnn.linear_columns.size();
      ASSIGN_OR_RETURN(options.model, MakeDnnModel(std::move(dnn)));
      if (combined) {
        ASSIGN_OR_RETURN(options.optimizers["dnn"], MakeOptimizer(est.dnn_optimizer, 0.001));
        ASSIGN_OR_RETURN(options.optimizers["linear"],
                         MakeOptimizer(est.linear_optimizer, LinearLearningRate(0.005, n_linear)));
      } else {
        ASSIGN_OR_RETURN(options.optimizers[""],
                         MakeOptimizer(est.optimizer,
                                       KerasDefaultLearningRate(est.optimizer.config.type)));
      }
      break;
    }
    case ModelFamily::kCustom:
      break;
  }
  options.head = std::move(head);
  return Estimator::Create(std::move(options));
}

absl::StatusOr<InputFn> InputFnFromJob(const JobSpec& job, const std::string& section,
                                       InputShard shard) {
  const JsonPath where = JsonPath(job.source).Key(section);
  if (section != "train_input" && section != "eval_input") {
    return where.Error("not an input section (train_input or eval_input)");
  }
  const std::optional<InputConfig>& config =
      section == "eval_input" ? job.eval_input : job.train_input;
  if (!config.has_value()) return where.Error("is required");
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count) {
    return where.Error(absl::StrCat("input shard ", shard.index, " out of range for ",
                                    shard.count, " shards"));
  }
  ASSIGN_OR_RETURN(InputOptions options, InputOptionsFromConfig(*config));
  if (job.run_config.has_tf_random_seed && !options.seed.has_value()) {
    options.seed = static_cast<uint64_t>(job.run_config.tf_random_seed);
  }
  options.num_shards = shard.count;
  options.shard_index = shard.index;
  return InputFn([options, section]() -> absl::StatusOr<std::unique_ptr<Pipeline>> {
    ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> pipeline, Pipeline::Create(options));
    if (!pipeline->shard_description().empty()) {
      spdlog::info("{}: {}", section, pipeline->shard_description());
    }
    return pipeline;
  });
}

}  // namespace estuary
