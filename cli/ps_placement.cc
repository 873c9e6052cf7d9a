#include "cli/ps_placement.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"
#include "estimator/estimator.h"

namespace estuary {

absl::StatusOr<std::vector<VariableSpec>> ModelVariableSpecs(const JobSpec& job) {
  // The model as the job builds it (the default strategy touches nothing).
  ASSIGN_OR_RETURN(std::unique_ptr<Estimator> est, EstimatorFromJob(job));
  const Model& model = est->model();
  Variables vars;
  RETURN_IF_ERROR(model.InitVariables(0, &vars));
  const std::vector<std::string> sparse = model.RowSparseVariables();
  std::vector<VariableSpec> specs;
  for (const auto& [name, m] : vars.floats) {
    const bool row_sparse = std::find(sparse.begin(), sparse.end(), name) != sparse.end();
    specs.push_back({name, m.rows(), m.cols(), row_sparse});
  }
  return specs;
}

absl::StatusOr<std::string> ExplainPsPlacement(const JobSpec& job, int num_ps) {
  ASSIGN_OR_RETURN(std::vector<VariableSpec> specs, ModelVariableSpecs(job));
  return ExplainPlacement(PlaceVariables(specs, num_ps), specs);
}

}  // namespace estuary
