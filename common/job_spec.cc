#include "common/job_spec.h"

#include "absl/strings/match.h"

#include "absl/strings/str_cat.h"
#include "common/io/env.h"
#include "common/json_schema.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

using json = nlohmann::json;

// The top level: each section's own keys are checked by its parse function
// (job_config.cc).
const JsonSchema& JobSchema() {
  static const auto* s = [] {
    auto field = [](const char* name, JsonKind kind, JsonKind element = JsonKind::kString) {
      JsonField f;
      f.name = name;
      f.kind = kind;
      f.element = element;
      return f;
    };
    JsonField model_dir = field("model_dir", JsonKind::kString);
    model_dir.required = true;
    model_dir.help = "where checkpoints, summaries and exports go";
    return new JsonSchema{{
        model_dir,
        field("estimator", JsonKind::kObject),
        field("feature_columns", JsonKind::kArray, JsonKind::kObject),
        field("train_input", JsonKind::kObject),
        field("eval_input", JsonKind::kObject),
        field("run_config", JsonKind::kObject),
        field("train_spec", JsonKind::kObject),
        field("eval_spec", JsonKind::kObject),
        field("distribution", JsonKind::kObject),
        field("security", JsonKind::kObject),
    }};
  }();
  return *s;
}

// The section `key` of `root`, null when absent or null.
const json& Section(const json& root, const char* key) {
  static const json* null = new json();
  return IsSet(root, key) ? root[key] : *null;
}

}  // namespace

absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view text, absl::string_view source) {
  ASSIGN_OR_RETURN(json root, ParseJsonText(text, source));
  const JsonPath where{std::string(source)};
  RETURN_IF_ERROR(ValidateJson(root, JobSchema(), where));
  JobSpec job;
  job.source = std::string(source);
  job.model_dir = root["model_dir"].get<std::string>();
  if (job.model_dir.empty()) return where.Key("model_dir").Error("must not be empty");
  if (IsSet(root, "estimator")) {
    ASSIGN_OR_RETURN(job.estimator,
                     ParseEstimatorConfig(root["estimator"], where.Key("estimator")));
  }
  // Relative vocabulary files are next to the job file (as given when the
  // source names no directory).
  const std::string base_dir =
      absl::StrContains(job.source, '/') ? io::DirName(job.source) : std::string();
  ASSIGN_OR_RETURN(job.feature_columns,
                   ParseFeatureColumns(Section(root, "feature_columns"),
                                       where.Key("feature_columns"), base_dir));
  if (IsSet(root, "train_input")) {
    ASSIGN_OR_RETURN(job.train_input,
                     ParseInputConfig(root["train_input"], where.Key("train_input")));
  }
  if (IsSet(root, "eval_input")) {
    ASSIGN_OR_RETURN(job.eval_input,
                     ParseInputConfig(root["eval_input"], where.Key("eval_input")));
  }
  ASSIGN_OR_RETURN(job.run_config,
                   ParseRunConfig(Section(root, "run_config"), where.Key("run_config")));
  ASSIGN_OR_RETURN(job.train_spec,
                   ParseTrainSpec(Section(root, "train_spec"), where.Key("train_spec")));
  ASSIGN_OR_RETURN(job.eval_spec,
                   ParseEvalSpec(Section(root, "eval_spec"), where.Key("eval_spec")));
  ASSIGN_OR_RETURN(job.distribution, ParseDistributionConfig(Section(root, "distribution"),
                                                             where.Key("distribution")));
  ASSIGN_OR_RETURN(job.security,
                   ParseSecurityConfig(Section(root, "security"), where.Key("security"), base_dir));
  job.document = std::move(root);
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
