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
// Every key is validated; an error carries the file and the JSON path, and
// unknown keys get a "did you mean" hint. Sections later issues give meaning
// to (estimator, feature_columns, *_input) are validated here by schema and
// kept as JSON for their consumers.
#ifndef ESTUARY_COMMON_JOB_SPEC_H_
#define ESTUARY_COMMON_JOB_SPEC_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/io/env.h"
#include "nlohmann/json.hpp"

namespace estuary {

// tf.estimator.RunConfig's knobs, with its defaults.
struct RunConfigSpec {
  int64_t tf_random_seed = 0;
  bool has_tf_random_seed = false;
  int64_t save_summary_steps = 100;
  // At most one of the two is set; with neither, TF checkpoints every 600 s.
  std::optional<int64_t> save_checkpoints_steps;
  std::optional<double> save_checkpoints_secs;
  int64_t keep_checkpoint_max = 5;
  int64_t log_step_count_steps = 100;
  // Threads for the model's matrix products (TF's session_config
  // intra_op_parallelism_threads). 1 is fastest for small networks on 2
  // cores (bench/RESULTS.md); more pays for wide layers and big batches.
  int intra_op_parallelism_threads = 1;
};

struct TrainSpecSpec {
  std::optional<int64_t> max_steps;
};

struct EvalSpecSpec {
  std::optional<int64_t> steps = 100;  // nullopt: until the input runs out
  std::string name;
  double start_delay_secs = 120;
  double throttle_secs = 600;
};

// How the cluster runs: strategy, collectives and the runtime's deadlines.
struct DistributionSpec {
  // "auto" picks parameter_server when the cluster has ps tasks, else
  // multi_worker_mirrored (one_device without a cluster).
  std::string strategy = "auto";
  std::string communication = "auto";  // ring | nccl | auto
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(10);
  // How long a task waits for the chief to answer its registration, and for
  // every task to reach the start barrier.
  absl::Duration startup_timeout = absl::Seconds(60);
  // How long the chief waits for every task to leave at the end.
  absl::Duration shutdown_timeout = absl::Seconds(30);
};

struct JobSpec {
  std::string source;  // file name, for messages
  std::string model_dir;
  nlohmann::json estimator;        // object or null
  nlohmann::json feature_columns;  // array or null
  nlohmann::json train_input;      // object or null
  nlohmann::json eval_input;       // object or null
  RunConfigSpec run_config;
  TrainSpecSpec train_spec;
  EvalSpecSpec eval_spec;
  DistributionSpec distribution;
};

// Parses and validates a job. InvalidArgument "<source>: $.path: problem".
absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view text, absl::string_view source);

// Reads (through `env`) and parses a job file. NotFound / PermissionDenied
// / ... "cannot read job file: <the Env's error naming the path>" if it
// cannot be read; InvalidArgument as ParseJobSpec.
absl::StatusOr<JobSpec> LoadJobSpec(const std::string& path,
                                    const io::Env& env = io::Env::Default());

}  // namespace estuary

#endif  // ESTUARY_COMMON_JOB_SPEC_H_
