// TF Serving's API over the loaded models, independent of the transport:
// the gRPC services (grpc_services.h) and the REST handler (rest_handler.h)
// both call it, as TF Serving's own handlers share one implementation.
//
// Errors follow TF Serving (codes and wording):
//   - no model name: InvalidArgument ("Missing ModelSpec");
//   - unknown model or version: NotFound ("Servable not found for request:
//     Latest(NAME)" / "Specific(NAME, V)"); GetModelStatus: NotFound ("Could
//     not find any versions of model NAME");
//   - Predict on an unknown signature: FailedPrecondition ("Serving
//     signature key \"K\" not found."); Classify/Regress: InvalidArgument
//     ("No signature was found with the name: K", "Expected classification
//     signature method_name to be tensorflow/serving/classify. Was: ...");
//   - missing/extra inputs, wrong dtypes, unparsable Examples, an unknown
//     output_filter key, an empty Input: InvalidArgument;
//   - a full batching queue, shutting down: Unavailable.
//
// Thread-safe; holds no state of its own beyond the pointers it is given.
#ifndef ESTUARY_SERVING_SERVING_API_H_
#define ESTUARY_SERVING_SERVING_API_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "estimator/export/export.h"
#include "proto/serving/classification.pb.h"
#include "proto/serving/get_model_metadata.pb.h"
#include "proto/serving/get_model_status.pb.h"
#include "proto/serving/predict.pb.h"
#include "proto/serving/regression.pb.h"
#include "serving/batcher.h"
#include "serving/model_manager.h"

namespace estuary {
namespace serving {

inline constexpr char kDefaultSignature[] = "serving_default";
inline constexpr char kPredictMethod[] = "tensorflow/serving/predict";
inline constexpr char kClassifyMethod[] = "tensorflow/serving/classify";
inline constexpr char kRegressMethod[] = "tensorflow/serving/regress";

// The Prometheus metrics of the serving API (labels job, task and):
//   estuary_serving_requests_total{method,code}  Predict / Classify /
//                                                Regress / GetModelMetadata /
//                                                GetModelStatus calls (gRPC
//                                                and REST), by status code
//   estuary_serving_request_seconds{method}      their latency
//   estuary_serving_batch_size                   rows a model ran at once:
//                                                each batch (--enable_batching)
//                                                or each request
class ServingMetrics {
 public:
  explicit ServingMetrics(TaskMetrics* metrics);
  void Count(const std::string& method, const absl::Status& status, absl::Duration took);
  prometheus::Histogram& batch_size() { return batch_size_; }

 private:
  TaskMetrics* const metrics_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  prometheus::Histogram& batch_size_;
};

class ServingApi {
 public:
  // `batcher` may be null (no batching), `metrics` too. All outlive this
  // object.
  ServingApi(const ModelManager* manager, Batcher* batcher, ServingMetrics* metrics = nullptr)
      : manager_(manager), batcher_(batcher), metrics_(metrics) {}

  absl::Status Predict(const tensorflow::serving::PredictRequest& request,
                       tensorflow::serving::PredictResponse* response) const;
  absl::Status Classify(const tensorflow::serving::ClassificationRequest& request,
                        tensorflow::serving::ClassificationResponse* response) const;
  absl::Status Regress(const tensorflow::serving::RegressionRequest& request,
                       tensorflow::serving::RegressionResponse* response) const;
  absl::Status GetModelMetadata(const tensorflow::serving::GetModelMetadataRequest& request,
                                tensorflow::serving::GetModelMetadataResponse* response) const;
  absl::Status GetModelStatus(const tensorflow::serving::GetModelStatusRequest& request,
                              tensorflow::serving::GetModelStatusResponse* response) const;

  // The signature a request would run (for REST's JSON -> tensor
  // conversion). Errors: as Get; InvalidArgument ("Serving signature name:
  // \"K\" not found in signature def").
  absl::StatusOr<SignatureSpec> GetSignature(const tensorflow::serving::ModelSpec& spec) const;

 private:
  // The calls above without the metrics.
  absl::Status PredictUnmeasured(const tensorflow::serving::PredictRequest& request,
                                 tensorflow::serving::PredictResponse* response) const;
  absl::Status ClassifyUnmeasured(const tensorflow::serving::ClassificationRequest& request,
                                  tensorflow::serving::ClassificationResponse* response) const;
  absl::Status RegressUnmeasured(const tensorflow::serving::RegressionRequest& request,
                                 tensorflow::serving::RegressionResponse* response) const;
  absl::Status GetModelMetadataUnmeasured(
      const tensorflow::serving::GetModelMetadataRequest& request,
      tensorflow::serving::GetModelMetadataResponse* response) const;
  absl::Status GetModelStatusUnmeasured(
      const tensorflow::serving::GetModelStatusRequest& request,
      tensorflow::serving::GetModelStatusResponse* response) const;
  absl::StatusOr<ServableHandle> Resolve(const tensorflow::serving::ModelSpec& spec) const;
  absl::StatusOr<std::map<std::string, Tensor>> RunSignature(
      const ServableHandle& handle, const std::string& key,
      std::map<std::string, Tensor> inputs) const;
  // Classify and Regress: the serialized Examples through a signature of
  // `method`.
  absl::StatusOr<std::map<std::string, Tensor>> RunExamples(
      const tensorflow::serving::ModelSpec& spec, const tensorflow::serving::Input& input,
      const std::string& method, tensorflow::serving::ModelSpec* response_spec) const;

  // Times `call` into the metrics (if any).
  absl::Status Measured(const char* method, const std::function<absl::Status()>& call) const;

  const ModelManager* const manager_;
  Batcher* const batcher_;
  ServingMetrics* const metrics_;
};

// A SignatureSpec by key, or null.
const SignatureSpec* FindSignature(const LoadedExport& model, const std::string& key);

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_SERVING_API_H_
