// Test helper of onnx_export_test.py: for a job with a checkpoint, prints as
// JSON the ONNX graph's inputs for the first eval_input batch (OnnxFeeds:
// the transformation spec's reference) and Estimator::Predict's logits,
// probabilities and class_ids / predictions for the same rows.
// Usage: onnx_tool JOB.json
#include <cstdio>
#include <iostream>

#include "common/job_spec.h"
#include "estimator/estimator.h"
#include "estimator/export/onnx_export.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

nlohmann::json TensorJson(const Tensor& t) {
  nlohmann::json j = {{"dtype", DTypeName(t.dtype)}, {"shape", t.shape}};
  if (t.dtype == DType::kFloat) j["values"] = t.floats;
  if (t.dtype == DType::kInt64) j["values"] = t.ints;
  if (t.dtype == DType::kString) j["values"] = t.strings;
  return j;
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: onnx_tool JOB.json\n");
    return 2;
  }
  absl::StatusOr<JobSpec> job = LoadJobSpec(argv[1]);
  absl::StatusOr<InputFn> input = job.ok() ? InputFnFromJob(*job, "eval_input")
                                           : absl::StatusOr<InputFn>(job.status());
  if (!input.ok()) {
    std::fprintf(stderr, "onnx_tool: %s\n", input.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<Pipeline> pipeline = *(*input)();
  absl::StatusOr<std::optional<Batch>> batch = pipeline->Next();
  if (!batch.ok() || !batch->has_value()) {
    std::fprintf(stderr, "onnx_tool: no eval batch\n");
    return 1;
  }
  const int64_t rows = (**batch).batch_size;
  absl::StatusOr<std::map<std::string, Tensor>> feeds =
      export_format::OnnxFeeds(*job, (**batch).features);
  if (!feeds.ok()) {
    std::fprintf(stderr, "onnx_tool: %s\n", feeds.status().ToString().c_str());
    return 1;
  }
  nlohmann::json out = {{"feeds", nlohmann::json::object()}, {"estuary", nlohmann::json::object()}};
  for (const auto& [name, t] : *feeds) out["feeds"][name] = TensorJson(t);
  absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(*job);
  int64_t n = 0;
  absl::Status st = est.ok() ? (*est)->Predict(*input, [&](const std::map<std::string, Tensor>& p) {
    if (n++ >= rows) return absl::OkStatus();
    for (const auto& [key, t] : p) {
      if (t.dtype != DType::kString) out["estuary"][key].push_back(TensorJson(t)["values"]);
    }
    return absl::OkStatus();
  }) : est.status();
  if (!st.ok()) {
    std::fprintf(stderr, "onnx_tool: %s\n", st.ToString().c_str());
    return 1;
  }
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Main(argc, argv); }
