// EstimatorFromJob / InputFnFromJob: the premade estimators of a job file,
// with tf.estimator's defaults.
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "estimator/dnn_model.h"
#include "estimator/estimator.h"
#include "estimator/feature_column_builder.h"
#include "estimator/premade.h"

namespace estuary {
namespace {

using json = nlohmann::json;

absl::Status JobError(const JobSpec& job, const std::string& path, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat(job.source, ": ", path, ": ", msg));
}

// Columns named in `names` (a JSON array at `path`), else `fallback`.
absl::StatusOr<std::vector<ColumnPtr>> Select(const JobSpec& job, const FeatureColumnSet& set,
                                              const json& est, const char* key,
                                              std::vector<ColumnPtr> fallback) {
  if (!est.contains(key)) return fallback;
  std::vector<ColumnPtr> out;
  for (size_t i = 0; i < est[key].size(); ++i) {
    absl::StatusOr<ColumnPtr> c = set.Find(est[key][i].get<std::string>());
    if (!c.ok()) {
      return JobError(job, absl::StrCat("$.estimator.", key, "[", i, "]"), c.status().message());
    }
    out.push_back(*c);
  }
  return out;
}

// Wide-part default: categorical columns (incl. bucketized and crossed) and
// plain numeric ones; indicator/embedding wrappers feed the DNN.
std::vector<ColumnPtr> LinearDefault(const FeatureColumnSet& set) {
  std::vector<ColumnPtr> out;
  for (const ColumnPtr& c : set.columns()) {
    if (GetEmbeddingSpec(*c) != nullptr || c->type() == ColumnType::kIndicator) continue;
    out.push_back(c);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> EstimatorFromJob(const JobSpec& job) {
  const json& est = job.estimator;
  if (est.is_null()) return JobError(job, "$.estimator", "is required to train, evaluate or predict");
  const std::string type = est["type"].get<std::string>();
  if (type == "custom") {
    return JobError(job, "$.estimator.type",
                    "'custom' models are built in C++ (see estimator/model.h), not from a job file");
  }
  const bool classifier = absl::EndsWith(type, "_classifier");
  HeadOptions head_options;
  head_options.weight_column = est.value("weight_column", "");
  if (est.contains("label_vocabulary")) {
    head_options.label_vocabulary = est["label_vocabulary"].get<std::vector<std::string>>();
  }
  if (est.contains("loss_reduction")) {
    ASSIGN_OR_RETURN(head_options.loss_reduction,
                     ParseLossReduction(est["loss_reduction"].get<std::string>()));
  }
  head_options.n_classes = est.value("n_classes", 2);
  head_options.label_dimension = est.value("label_dimension", 1);
  if (!classifier && est.contains("n_classes")) {
    return JobError(job, "$.estimator.n_classes", "only classifiers take n_classes");
  }
  std::unique_ptr<Head> head;
  if (classifier) {
    ASSIGN_OR_RETURN(head, CreateClassifierHead(head_options));
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<RegressionHead> r, RegressionHead::Create(head_options));
    head = std::move(r);
  }
  const int64_t logits_dim = head->logits_dimension();
  const bool combined_type = absl::StartsWith(type, "dnn_linear_combined_");
  for (const char* key : {"linear_optimizer", "dnn_optimizer"}) {
    if (!combined_type && est.contains(key)) {
      return JobError(job, absl::StrCat("$.estimator.", key),
                      "only dnn_linear_combined_* estimators take it (use \"optimizer\")");
    }
  }
  if (combined_type && est.contains("optimizer")) {
    return JobError(job, "$.estimator.optimizer",
                    "dnn_linear_combined_* estimators take linear_optimizer and dnn_optimizer");
  }

  EstimatorOptions options;
  options.model_dir = job.model_dir;
  options.run_config = job.run_config;
  options.warm_start_from = est.value("warm_start_from", "");
  FeatureColumnSet set;
  if (!job.feature_columns.is_null()) {
    ASSIGN_OR_RETURN(set, BuildFeatureColumns(job));
  }
  auto optimizer = [&](const char* key, const std::string& default_type,
                       double default_lr) -> absl::StatusOr<std::unique_ptr<Optimizer>> {
    return MakeOptimizer(est.contains(key) ? est[key] : json(), default_type, default_lr,
                         absl::StrCat(job.source, ": $.estimator.", key));
  };
  if (absl::StartsWith(type, "baseline_")) {
    options.model = MakeBaselineModel(logits_dim);
    ASSIGN_OR_RETURN(options.optimizers[""], optimizer("optimizer", "ftrl", 0.3));
  } else if (absl::StartsWith(type, "linear_")) {
    ASSIGN_OR_RETURN(std::vector<ColumnPtr> cols,
                     Select(job, set, est, "linear_feature_columns", LinearDefault(set)));
    if (cols.empty()) return JobError(job, "$.feature_columns", "a linear model needs columns");
    ASSIGN_OR_RETURN(options.model, MakeLinearModel(cols, logits_dim));
    ASSIGN_OR_RETURN(options.optimizers[""],
                     optimizer("optimizer", "ftrl",
                               std::min(0.2, 1.0 / std::sqrt(static_cast<double>(cols.size())))));
  } else {
    const bool combined = absl::StartsWith(type, "dnn_linear_combined_");
    DnnModelOptions dnn;
    ASSIGN_OR_RETURN(dnn.dnn_columns,
                     Select(job, set, est, "dnn_feature_columns", set.DenseColumns()));
    if (combined) {
      ASSIGN_OR_RETURN(dnn.linear_columns,
                       Select(job, set, est, "linear_feature_columns", LinearDefault(set)));
    }
    if (!est.contains("hidden_units")) {
      return JobError(job, "$.estimator.hidden_units", "is required for DNN estimators");
    }
    dnn.mlp.hidden_units = est["hidden_units"].get<std::vector<int64_t>>();
    if (est.contains("activation_fn")) {
      absl::StatusOr<nn::Activation> a = nn::ParseActivation(est["activation_fn"].get<std::string>());
      if (!a.ok()) return JobError(job, "$.estimator.activation_fn", a.status().message());
      dnn.mlp.activation = *a;
    }
    dnn.mlp.dropout = est.value("dropout", 0.0f);
    dnn.mlp.batch_norm = est.value("batch_norm", false);
    dnn.mlp.logits_dimension = logits_dim;
    dnn.num_threads = job.run_config.intra_op_parallelism_threads;
    const size_t n_linear = dnn.linear_columns.size();
    ASSIGN_OR_RETURN(options.model, MakeDnnModel(std::move(dnn)));
    if (combined) {
      ASSIGN_OR_RETURN(options.optimizers["dnn"], optimizer("dnn_optimizer", "adagrad", 0.001));
      ASSIGN_OR_RETURN(
          options.optimizers["linear"],
          optimizer("linear_optimizer", "ftrl",
                    std::min(0.005, 1.0 / std::sqrt(static_cast<double>(std::max<size_t>(1, n_linear))))));
    } else {
      ASSIGN_OR_RETURN(options.optimizers[""], optimizer("optimizer", "adagrad", 0.05));
    }
  }
  options.head = std::move(head);
  return Estimator::Create(std::move(options));
}

absl::StatusOr<InputFn> InputFnFromJob(const JobSpec& job, const std::string& section) {
  const json& in = section == "eval_input" ? job.eval_input : job.train_input;
  if (in.is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(job.source, ": $.", section, ": is required"));
  }
  absl::StatusOr<InputOptions> options = InputOptionsFromJson(in, "$." + section);
  if (!options.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(job.source, ": ", options.status().message()));
  }
  if (job.run_config.has_tf_random_seed && !options->seed.has_value()) {
    options->seed = static_cast<uint64_t>(job.run_config.tf_random_seed);
  }
  InputOptions o = *std::move(options);
  return InputFn([o]() { return Pipeline::Create(o); });
}

}  // namespace estuary
