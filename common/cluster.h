// TF_CONFIG: the cluster spec and this process's task, as TensorFlow 2.15,
// tf.estimator and Kubeflow's TFJob write it.
//
//   {"cluster": {"chief": ["host:port"], "worker": [...], "ps": [...],
//                "evaluator": [...]},
//    "task": {"type": "worker", "index": 1},
//    "environment": "cloud", "rpc_layer": "grpc"}
//
// Accepted conventions: `chief`, the legacy `master`, or (with neither)
// worker 0 acting as chief; an evaluator inside or outside `cluster`; job
// lists (dense) or {"<index>": "host:port"} maps (TFJob's sparse form for
// dynamic workers). Every error names the JSON field and says what was
// expected. Thread-compatible value types.
#ifndef ESTUARY_COMMON_CLUSTER_H_
#define ESTUARY_COMMON_CLUSTER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace estuary {

// Job names.
inline constexpr absl::string_view kChief = "chief";
inline constexpr absl::string_view kMaster = "master";
inline constexpr absl::string_view kWorker = "worker";
inline constexpr absl::string_view kPs = "ps";
inline constexpr absl::string_view kEvaluator = "evaluator";

struct TaskId {
  std::string type;
  int index = 0;

  std::string ToString() const;  // "worker:1"
  bool operator==(const TaskId& o) const {
    return type == o.type && index == o.index;
  }
  bool operator!=(const TaskId& o) const { return !(*this == o); }
  // Orders chief, master, worker, ps, evaluator, then other names; then index.
  bool operator<(const TaskId& o) const;
  template <typename H>
  friend H AbslHashValue(H h, const TaskId& t) {
    return H::combine(std::move(h), t.type, t.index);
  }
};

// Parses "worker:1". InvalidArgument on anything else.
absl::StatusOr<TaskId> ParseTaskId(absl::string_view s);

// Splits "host:port" / "[v6]:port". InvalidArgument naming `field` if the
// port is missing or not in 1..65535, or the host is empty.
absl::Status ValidateAddress(absl::string_view address, absl::string_view field);

class ClusterSpec {
 public:
  // job name -> (task index -> address).
  using Jobs = std::map<std::string, std::map<int, std::string>>;

  ClusterSpec() = default;
  explicit ClusterSpec(Jobs jobs, bool sparse = false)
      : jobs_(std::move(jobs)), sparse_(sparse) {}

  const Jobs& jobs() const { return jobs_; }
  bool empty() const { return jobs_.empty(); }
  // True if any job was given in the {"<index>": address} form.
  bool sparse() const { return sparse_; }
  bool HasJob(absl::string_view type) const;
  int NumTasks(absl::string_view type) const;
  // NotFound naming the task if it is not in the spec.
  absl::StatusOr<std::string> Address(const TaskId& task) const;
  // Every task, sorted (chief first).
  std::vector<TaskId> AllTasks() const;
  // Serialises back to TF_CONFIG's "cluster" object.
  std::string ToJson() const;

 private:
  Jobs jobs_;
  bool sparse_ = false;
};

struct TfConfig {
  ClusterSpec cluster;
  TaskId task;
  std::string environment;
  std::string rpc_layer;

  // The task that coordinates the cluster: chief:0, else master:0, else
  // worker:0. NotFound (with the reason) when none is in the spec.
  absl::StatusOr<TaskId> Coordinator() const;
  // True if this process's task is the coordinator.
  bool IsCoordinator() const;
  // This task's own address from the spec; NotFound for an evaluator (or
  // any task) outside `cluster`.
  absl::StatusOr<std::string> OwnAddress() const { return cluster.Address(task); }
  // Serialises back to TF_CONFIG JSON (for launchers).
  std::string ToJson() const;
};

// Parses and validates a TF_CONFIG JSON string. Errors (InvalidArgument)
// name the field: e.g. "TF_CONFIG: task.index 3 out of range: cluster has 2
// 'worker' tasks".
absl::StatusOr<TfConfig> ParseTfConfig(absl::string_view json);

// Reads $TF_CONFIG (or `override_json` if not empty). NotFound if neither
// is set.
absl::StatusOr<TfConfig> TfConfigFromEnvironment(absl::string_view override_json);

}  // namespace estuary

#endif  // ESTUARY_COMMON_CLUSTER_H_
