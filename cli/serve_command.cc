#include "cli/serve_command.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/io/env.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/transport_security.h"
#include "estimator/export/export.h"
#include "serving/config.h"
#include "serving/model_server.h"

namespace estuary {
namespace {

int Error(const std::string& msg) {
  std::fprintf(stderr, "estuary serve: error: %s\n", msg.c_str());
  return kExitBadInput;
}

}  // namespace

int ServeCommand(int argc, char** argv, SignalWatcher* signals) {
  serving::ModelServerOptions o;
  std::string model_name = "default";
  std::string model_base_path;
  std::string model_config_file;
  std::string batching_parameters_file;
  std::string ssl_config_file;
  double poll_secs = absl::ToDoubleSeconds(o.file_system_poll_wait);
  double drain_secs = absl::ToDoubleSeconds(o.drain_timeout);
  int max_request_bytes = static_cast<int>(o.max_request_bytes);
  int metrics_port = kMetricsOff;
  FlagSet flags(
      "estuary serve --model_base_path DIR [--model_name NAME] [--port N] [--rest_api_port N]\n"
      "       estuary serve --model_config_file FILE [flags]",
      "Serves exports (`estuary export`) with TensorFlow Serving's APIs: gRPC "
      "tensorflow.serving.PredictionService (Predict, Classify, Regress, GetModelMetadata) and "
      "ModelService.GetModelStatus on --port, REST /v1/models/... on --rest_api_port. Watches "
      "each base path for numeric version directories, loads new versions and unloads old "
      "ones. SIGTERM stops accepting, finishes the requests in flight and exits 0.");
  flags.Int("port", &o.port, "gRPC port (0: a free port, logged).");
  flags.Int("rest_api_port", &o.rest_api_port,
            "REST port (0: a free port, logged; < 0: no REST API). TF Serving reads 0 as off.");
  flags.String("model_name", &model_name, "Name of the model served from --model_base_path.");
  flags.String("model_base_path", &model_base_path,
               "Directory whose numeric subdirectories are the model's versions.");
  flags.String("model_config_file", &model_config_file,
               "Several models: a ModelServerConfig (model_config_list { config { name, "
               "base_path, model_platform, model_version_policy } }) in text format or JSON.");
  flags.Double("file_system_poll_wait_seconds", &poll_secs,
               "Seconds between scans of the base paths for new versions (<= 0: once).");
  flags.Bool("enable_batching", &o.enable_batching,
             "Batch concurrent Predict/Classify/Regress requests to one signature.");
  flags.String("batching_parameters_file", &batching_parameters_file,
               "BatchingParameters (max_batch_size, batch_timeout_micros, num_batch_threads, "
               "max_enqueued_batches) in text format or JSON.");
  flags.String("ssl_config_file", &ssl_config_file,
               "TLS for the gRPC API: TF Serving's SSLConfig in text format (server_key, "
               "server_cert, custom_ca as PEM text; client_verify: true requires client "
               "certificates of custom_ca). REST stays plain HTTP, as in TF Serving.");
  flags.Int("rest_api_num_threads", &o.rest_api_num_threads, "Threads serving REST requests.");
  flags.Int("max_request_bytes", &max_request_bytes,
            "Largest gRPC request message and REST body accepted.");
  flags.Double("drain_timeout_secs", &drain_secs,
               "On SIGTERM, how long requests in flight may take before they are cancelled.");
  flags.Int("metrics_port", &metrics_port,
            "Serve Prometheus metrics (requests, latency, batch sizes, process) at "
            "http://0.0.0.0:PORT/metrics (0: a free port, logged; -1: off). Labels: "
            "job=\"serving\", task=\"0\".");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && !flags.positional().empty()) {
    st = absl::InvalidArgumentError(absl::StrCat("unexpected argument '", flags.positional()[0], "'"));
  }
  if (!st.ok()) return Error(absl::StrCat(st.message(), " (see --help)"));
  if (model_config_file.empty() == model_base_path.empty()) {
    return Error("give exactly one of --model_base_path and --model_config_file");
  }
  if (max_request_bytes < 1) return Error("--max_request_bytes must be >= 1");
  if (!(drain_secs >= 0)) return Error("--drain_timeout_secs must be >= 0");
  InitLogging("serve");
  MetricsOptions metrics_options;
  metrics_options.job = "serving";
  metrics_options.task = "0";
  metrics_options.port = metrics_port;
  absl::StatusOr<std::unique_ptr<TaskMetrics>> metrics = TaskMetrics::Create(metrics_options);
  if (!metrics.ok()) return Error(std::string(metrics.status().message()));
  if (metrics_port != kMetricsOff) o.metrics = metrics->get();  // else collect nothing
  const io::Env& env = io::Env::Default();
  if (!model_config_file.empty()) {
    absl::StatusOr<std::vector<serving::ModelConfig>> models =
        serving::LoadModelConfigFile(env, model_config_file);
    if (!models.ok()) return Error(std::string(models.status().message()));
    o.models = *std::move(models);
  } else {
    serving::ModelConfig m;
    m.name = model_name;
    m.base_path = model_base_path;
    o.models.push_back(std::move(m));
  }
  if (!batching_parameters_file.empty()) {
    if (!o.enable_batching) return Error("--batching_parameters_file needs --enable_batching");
    absl::StatusOr<serving::BatchingOptions> b =
        serving::LoadBatchingFile(env, batching_parameters_file, o.batching);
    if (!b.ok()) return Error(std::string(b.status().message()));
    o.batching = *b;
  }
  if (!ssl_config_file.empty()) {
    absl::StatusOr<serving::ServingTls> tls = serving::LoadSslConfigFile(env, ssl_config_file);
    if (!tls.ok()) return Error(std::string(tls.status().message()));
    o.grpc_credentials =
        TlsServerCredentials(tls->key_pem, tls->cert_pem, tls->ca_pem, tls->client_verify);
  }
  o.file_system_poll_wait = absl::Seconds(poll_secs);
  o.drain_timeout = absl::Seconds(drain_secs);
  o.max_request_bytes = max_request_bytes;
  o.loader = [](const std::string& dir)
      -> absl::StatusOr<std::shared_ptr<const LoadedExport>> {
    absl::StatusOr<std::unique_ptr<LoadedExport>> e = LoadedExport::Load(dir);
    if (!e.ok()) return e.status();
    return std::shared_ptr<const LoadedExport>(*std::move(e));
  };

  absl::Notification stop;
  signals->OnSignal([&stop](int) {
    if (!stop.HasBeenNotified()) stop.Notify();
  });
  absl::StatusOr<std::unique_ptr<serving::ModelServer>> server =
      serving::ModelServer::Start(std::move(o));
  if (!server.ok()) {
    signals->ClearCallbacks();
    std::fprintf(stderr, "estuary serve: error: %s\n",
                 std::string(server.status().message()).c_str());
    return absl::IsInvalidArgument(server.status()) ? kExitBadInput : kExitFailure;
  }
  stop.WaitForNotification();
  spdlog::info("Received a shutdown signal; draining requests in flight");
  (*server)->Shutdown();
  signals->ClearCallbacks();
  spdlog::info("Server stopped");
  return kExitOk;
}

}  // namespace estuary
