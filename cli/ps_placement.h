// `estuary explain-config` for parameter_server jobs: which PS holds which
// variable of the job's model, and the bytes per PS (common/ps/placement.h).
#ifndef ESTUARY_CLI_PS_PLACEMENT_H_
#define ESTUARY_CLI_PS_PLACEMENT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "common/ps/placement.h"

namespace estuary {

// The job's model variables (built as EstimatorFromJob builds the model),
// with whether each is row-sparse. Errors: those of EstimatorFromJob.
absl::StatusOr<std::vector<VariableSpec>> ModelVariableSpecs(const JobSpec& job);

// "placement over N parameter server(s) ..." for the job's model.
absl::StatusOr<std::string> ExplainPsPlacement(const JobSpec& job, int num_ps);

}  // namespace estuary

#endif  // ESTUARY_CLI_PS_PLACEMENT_H_
