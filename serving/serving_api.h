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

#include <string>

#include "absl/status/statusor.h"
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

class ServingApi {
 public:
  // `batcher` may be null (no batching). Both outlive this object.
  ServingApi(const ModelManager* manager, Batcher* batcher)
      : manager_(manager), batcher_(batcher) {}

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
  absl::StatusOr<ServableHandle> Resolve(const tensorflow::serving::ModelSpec& spec) const;
  absl::StatusOr<std::map<std::string, Tensor>> RunSignature(
      const ServableHandle& handle, const std::string& key,
      std::map<std::string, Tensor> inputs) const;
  // Classify and Regress: the serialized Examples through a signature of
  // `method`.
  absl::StatusOr<std::map<std::string, Tensor>> RunExamples(
      const tensorflow::serving::ModelSpec& spec, const tensorflow::serving::Input& input,
      const std::string& method, tensorflow::serving::ModelSpec* response_spec) const;

  const ModelManager* const manager_;
  Batcher* const batcher_;
};

// A SignatureSpec by key, or null.
const SignatureSpec* FindSignature(const LoadedExport& model, const std::string& key);

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_SERVING_API_H_
