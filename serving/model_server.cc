#include "serving/model_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/rpc.h"

namespace estuary {
namespace serving {

absl::StatusOr<std::unique_ptr<ModelServer>> ModelServer::Start(ModelServerOptions options) {
  std::unique_ptr<ModelServer> s(new ModelServer());
  s->options_ = std::move(options);
  const ModelServerOptions& o = s->options_;
  ModelManagerOptions mo;
  mo.models = o.models;
  mo.loader = o.loader;
  mo.env = o.env;
  absl::StatusOr<std::unique_ptr<ModelManager>> manager = ModelManager::Create(std::move(mo));
  if (!manager.ok()) return manager.status();
  s->manager_ = *std::move(manager);
  // The first scan before the ports open, as TF Serving loads before serving.
  absl::Status polled = s->manager_->PollOnce();
  if (!polled.ok()) spdlog::warn("initial load: {}", polled.message());
  if (o.file_system_poll_wait > absl::ZeroDuration()) {
    s->watcher_ = std::make_unique<ModelWatcher>(s->manager_.get(), o.file_system_poll_wait);
  }
  if (o.metrics != nullptr) s->metrics_ = std::make_unique<ServingMetrics>(o.metrics);
  if (o.enable_batching) {
    s->batcher_ = std::make_unique<Batcher>(
        o.batching, s->metrics_ != nullptr ? &s->metrics_->batch_size() : nullptr);
  }
  s->api_ = std::make_unique<ServingApi>(s->manager_.get(), s->batcher_.get(), s->metrics_.get());
  s->prediction_service_ = std::make_unique<PredictionServiceHandler>(s->api_.get());
  s->model_service_ = std::make_unique<ModelServiceHandler>(s->api_.get());
  s->rest_ = std::make_unique<RestHandler>(s->api_.get());

  grpc::ServerBuilder builder;
  ServerOptions server_options;
  server_options.listen_address = absl::StrCat(o.host, ":", o.port);
  server_options.max_receive_message_bytes = static_cast<int>(o.max_request_bytes);
  // The serving API is for clients outside the job: no job token, no
  // warning; TLS from --ssl_config_file.
  server_options.warn_if_insecure = false;
  server_options.credentials = o.grpc_credentials;
  ConfigureServerBuilder(&builder, server_options, &s->grpc_port_);
  builder.RegisterService(s->prediction_service_.get());
  builder.RegisterService(s->model_service_.get());
  s->grpc_ = builder.BuildAndStart();
  if (s->grpc_ == nullptr || s->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot bind the gRPC port ", o.host, ":", o.port));
  }
  spdlog::info("Running gRPC ModelServer at {}:{}{} ...", o.host, s->grpc_port_,
               o.grpc_credentials != nullptr ? " (TLS)" : "");
  if (o.rest_api_port >= 0) {
    HttpServerOptions ho;
    ho.host = o.host;
    ho.port = o.rest_api_port;
    ho.num_threads = o.rest_api_num_threads;
    ho.max_body_bytes = o.max_request_bytes;
    absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start(
        ho, [rest = s->rest_.get()](const std::string& method, const std::string& path,
                                    const std::string& body) {
          return rest->Handle(method, path, body);
        });
    if (!http.ok()) return http.status();
    s->http_ = *std::move(http);
    spdlog::info("Exporting HTTP/REST API at:localhost:{} ...", s->http_->port());
  }
  return s;
}

ModelServer::~ModelServer() { Shutdown(); }

void ModelServer::Shutdown() {
  {
    absl::MutexLock l(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (http_) http_->Stop();  // stops accepting; requests in flight finish
  if (grpc_) {
    grpc_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.drain_timeout));
    grpc_->Wait();
  }
  batcher_.reset();  // runs what is queued
  watcher_.reset();
}

}  // namespace serving
}  // namespace estuary
