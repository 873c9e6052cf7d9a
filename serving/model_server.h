// `estuary serve` as a library: the model manager (+ its watcher thread),
// optional batching, TF Serving's gRPC services on `port` and its REST API
// on `rest_api_port`.
//
// Start logs, as TF Serving does, "Running gRPC ModelServer at
// 0.0.0.0:PORT ..." and "Exporting HTTP/REST API at:localhost:PORT ..." with
// the ports actually bound (0 picks free ones). Shutdown() (SIGTERM in
// `estuary serve`) stops accepting on both, waits for the requests in
// flight (at most drain_timeout; later ones are cancelled), then stops the
// batcher and the watcher.
//
// Thread-safe. Owns the gRPC server's threads, the HTTP server's, the
// watcher's and the batcher's.
#ifndef ESTUARY_SERVING_MODEL_SERVER_H_
#define ESTUARY_SERVING_MODEL_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "serving/batcher.h"
#include "serving/grpc_services.h"
#include "serving/http_server.h"
#include "serving/model_manager.h"
#include "serving/rest_handler.h"
#include "serving/serving_api.h"

namespace estuary {
namespace serving {

struct ModelServerOptions {
  std::string host = "0.0.0.0";
  int port = 8500;            // gRPC; 0: a free port
  int rest_api_port = -1;     // REST; 0: a free port, < 0: no REST API
  std::vector<ModelConfig> models;
  ExportLoader loader;        // required
  const io::Env* env = nullptr;
  // Between scans of the base paths; <= 0: scan once at start.
  absl::Duration file_system_poll_wait = absl::Seconds(1);
  bool enable_batching = false;
  BatchingOptions batching;
  int64_t max_request_bytes = 64 << 20;  // gRPC messages and REST bodies
  int rest_api_num_threads = 8;
  absl::Duration drain_timeout = absl::Seconds(30);
  // The process's Prometheus metrics (borrowed, may be null): the serving
  // API's requests, latency and batch sizes (serving_api.h).
  TaskMetrics* metrics = nullptr;
  // The gRPC API's TLS (--ssl_config_file; transport_security.h
  // TlsServerCredentials); null: plaintext. REST stays plain HTTP, as in
  // TF Serving.
  std::shared_ptr<grpc::ServerCredentials> grpc_credentials;
};

class ModelServer {
 public:
  // Errors: those of ModelManager::Create (InvalidArgument), Unavailable (a
  // port cannot be bound). A model without a loadable version does not
  // fail Start (it is logged; the watcher keeps looking).
  static absl::StatusOr<std::unique_ptr<ModelServer>> Start(ModelServerOptions options);
  ~ModelServer();  // Shutdown()

  int grpc_port() const { return grpc_port_; }
  int rest_port() const { return http_ ? http_->port() : -1; }
  ModelManager* manager() { return manager_.get(); }
  ModelWatcher* watcher() { return watcher_.get(); }  // null without polling
  Batcher* batcher() { return batcher_.get(); }        // null without batching

  // Idempotent; see the file comment.
  void Shutdown();

 private:
  ModelServer() = default;

  ModelServerOptions options_;
  std::unique_ptr<ServingMetrics> metrics_;  // null without options.metrics
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<ModelWatcher> watcher_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<ServingApi> api_;
  std::unique_ptr<PredictionServiceHandler> prediction_service_;
  std::unique_ptr<ModelServiceHandler> model_service_;
  std::unique_ptr<RestHandler> rest_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<HttpServer> http_;
  int grpc_port_ = 0;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_MODEL_SERVER_H_
