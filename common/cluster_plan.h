// What a cluster will do for a job: the strategy that "auto" resolves to,
// the cross-checks between TF_CONFIG and the job, and a description of each
// task's duties (used by `estuary explain-config` and at every task's
// start-up, so both agree).
#ifndef ESTUARY_COMMON_CLUSTER_PLAN_H_
#define ESTUARY_COMMON_CLUSTER_PLAN_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/cluster.h"
#include "common/job_spec.h"

namespace estuary {

// The concrete strategy for `job` on `tf`'s cluster. InvalidArgument (one
// line naming the job's distribution.strategy and what the cluster has)
// when they disagree: parameter_server without ps tasks; ps tasks under
// one_device, mirrored, central_storage or multi_worker_mirrored; a
// one-process strategy (one_device, mirrored, central_storage) on a
// cluster of several training tasks.
absl::StatusOr<std::string> ResolveStrategy(const JobSpec& job, const TfConfig& tf);

// The binary that runs `task` ("chief", "worker", "ps", "evaluator").
std::string BinaryFor(const TaskId& task);

// One line: what `task` does in this cluster under `strategy`.
std::string DescribeDuties(const TaskId& task, const TfConfig& tf, const std::string& strategy);

// The full report of `estuary explain-config`. `job` may be null.
absl::StatusOr<std::string> ExplainConfig(const TfConfig& tf, const JobSpec* job);

}  // namespace estuary

#endif  // ESTUARY_COMMON_CLUSTER_PLAN_H_
