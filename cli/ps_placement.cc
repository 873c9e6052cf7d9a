#include "cli/ps_placement.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"
#include "estimator/estimator.h"

namespace estuary {

absl::StatusOr<std::vector<VariableSpec>> ModelVariableSpecs(const JobSpec& job) {
  // The model is built by EstimatorFromJob; its strategy factory sees it
  // (and stops the build: nothing else is needed).
  std::vector<VariableSpec> specs;
  absl::Status seen = absl::UnknownError("the model was not built");
  auto factory = [&](const Model* model, const std::map<std::string, std::unique_ptr<Optimizer>>*)
      -> absl::StatusOr<std::unique_ptr<Strategy>> {
    Variables vars;
    seen = model->InitVariables(0, &vars);
    const std::vector<std::string> sparse = model->RowSparseVariables();
    for (const auto& [name, m] : vars.floats) {
      const bool row_sparse = std::find(sparse.begin(), sparse.end(), name) != sparse.end();
      specs.push_back({name, m.rows(), m.cols(), row_sparse});
    }
    return absl::CancelledError("placement only");
  };
  absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(job, factory);
  if (!seen.ok()) return est.ok() ? seen : est.status();
  return specs;
}

absl::StatusOr<std::string> ExplainPsPlacement(const JobSpec& job, int num_ps) {
  ASSIGN_OR_RETURN(std::vector<VariableSpec> specs, ModelVariableSpecs(job));
  return ExplainPlacement(PlaceVariables(specs, num_ps), specs);
}

}  // namespace estuary
