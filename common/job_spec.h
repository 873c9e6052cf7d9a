// The job file: the one JSON document every role of a cluster reads.
//
//   {
//     "model_dir": "/tmp/model",
//     "estimator": {"type": "dnn_classifier", "hidden_units": [256, 128], ...},
//     "feature_columns": [{"type": "numeric", "key": "x", "shape": [784]}],
//     "train_input": {"format": "csv", "files": ["train.csv"], ...},
//     "eval_input": {...},
//     "run_config": {"save_checkpoints_steps": 1000, ...},
//     "train_spec": {"max_steps": 10000},
//     "eval_spec": {"steps": 100, "throttle_secs": 600},
//     "distribution": {"strategy": "parameter_server", ...}
//   }
//
// The file is parsed once, by ParseJobSpec: every key of every section is
// validated and each section becomes the typed struct of job_config.h, which
// its consumers read as is. An error carries the file and the JSON path, and
// unknown keys get a "did you mean" hint.
#ifndef ESTUARY_COMMON_JOB_SPEC_H_
#define ESTUARY_COMMON_JOB_SPEC_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/io/env.h"
#include "common/job_config.h"

namespace estuary {

struct JobSpec {
  std::string source;  // file name, for messages
  std::string model_dir;
  std::optional<EstimatorConfig> estimator;
  std::vector<FeatureColumnConfig> feature_columns;  // in the file's order
  std::optional<InputConfig> train_input;
  std::optional<InputConfig> eval_input;
  RunConfig run_config;
  TrainSpec train_spec;
  EvalSpec eval_spec;
  DistributionConfig distribution;
  SecurityConfig security;  // "security": TLS and the job token between tasks
  // The parsed file as it was given (exports store its estimator and
  // feature_columns sections: estimator/export/export_format.h); null for
  // a JobSpec not made by ParseJobSpec.
  nlohmann::json document;
};

// Parses and validates a job. InvalidArgument "<source>: $.path: problem";
// a syntax error is "<source>:<line>:<column>: invalid JSON: ...". Relative
// vocabulary files are resolved against the directory of `source`.
absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view text, absl::string_view source);

// Reads (through `env`) and parses a job file. NotFound / PermissionDenied
// / ... "cannot read job file: <the Env's error naming the path>" if it
// cannot be read; InvalidArgument as ParseJobSpec.
absl::StatusOr<JobSpec> LoadJobSpec(const std::string& path,
                                    const io::Env& env = io::Env::Default());

}  // namespace estuary

#endif  // ESTUARY_COMMON_JOB_SPEC_H_
