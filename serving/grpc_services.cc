#include "serving/grpc_services.h"

#include "common/rpc.h"

namespace estuary {
namespace serving {

grpc::Status PredictionServiceHandler::Predict(grpc::ServerContext*,
                                               const tensorflow::serving::PredictRequest* req,
                                               tensorflow::serving::PredictResponse* resp) {
  return ToGrpcStatus(api_->Predict(*req, resp));
}

grpc::Status PredictionServiceHandler::Classify(
    grpc::ServerContext*, const tensorflow::serving::ClassificationRequest* req,
    tensorflow::serving::ClassificationResponse* resp) {
  return ToGrpcStatus(api_->Classify(*req, resp));
}

grpc::Status PredictionServiceHandler::Regress(grpc::ServerContext*,
                                               const tensorflow::serving::RegressionRequest* req,
                                               tensorflow::serving::RegressionResponse* resp) {
  return ToGrpcStatus(api_->Regress(*req, resp));
}

grpc::Status PredictionServiceHandler::GetModelMetadata(
    grpc::ServerContext*, const tensorflow::serving::GetModelMetadataRequest* req,
    tensorflow::serving::GetModelMetadataResponse* resp) {
  return ToGrpcStatus(api_->GetModelMetadata(*req, resp));
}

grpc::Status ModelServiceHandler::GetModelStatus(
    grpc::ServerContext*, const tensorflow::serving::GetModelStatusRequest* req,
    tensorflow::serving::GetModelStatusResponse* resp) {
  return ToGrpcStatus(api_->GetModelStatus(*req, resp));
}

}  // namespace serving
}  // namespace estuary
