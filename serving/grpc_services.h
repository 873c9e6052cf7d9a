// Thin gRPC handlers of tensorflow.serving.PredictionService (Predict,
// Classify, Regress, GetModelMetadata) and ModelService (GetModelStatus)
// over a ServingApi; the absl::Status code becomes the gRPC code, as TF
// Serving returns them. MultiInference and HandleReloadConfigRequest answer
// UNIMPLEMENTED. Thread-safe.
#ifndef ESTUARY_SERVING_GRPC_SERVICES_H_
#define ESTUARY_SERVING_GRPC_SERVICES_H_

#include "proto/serving/model_service.grpc.pb.h"
#include "proto/serving/prediction_service.grpc.pb.h"
#include "serving/serving_api.h"

namespace estuary {
namespace serving {

class PredictionServiceHandler final : public tensorflow::serving::PredictionService::Service {
 public:
  explicit PredictionServiceHandler(const ServingApi* api) : api_(api) {}

  grpc::Status Predict(grpc::ServerContext* ctx, const tensorflow::serving::PredictRequest* req,
                       tensorflow::serving::PredictResponse* resp) override;
  grpc::Status Classify(grpc::ServerContext* ctx,
                        const tensorflow::serving::ClassificationRequest* req,
                        tensorflow::serving::ClassificationResponse* resp) override;
  grpc::Status Regress(grpc::ServerContext* ctx, const tensorflow::serving::RegressionRequest* req,
                       tensorflow::serving::RegressionResponse* resp) override;
  grpc::Status GetModelMetadata(grpc::ServerContext* ctx,
                                const tensorflow::serving::GetModelMetadataRequest* req,
                                tensorflow::serving::GetModelMetadataResponse* resp) override;

 private:
  const ServingApi* const api_;
};

class ModelServiceHandler final : public tensorflow::serving::ModelService::Service {
 public:
  explicit ModelServiceHandler(const ServingApi* api) : api_(api) {}

  grpc::Status GetModelStatus(grpc::ServerContext* ctx,
                              const tensorflow::serving::GetModelStatusRequest* req,
                              tensorflow::serving::GetModelStatusResponse* resp) override;

 private:
  const ServingApi* const api_;
};

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_GRPC_SERVICES_H_
