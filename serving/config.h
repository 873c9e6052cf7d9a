// TF Serving's config files for `estuary serve`:
//   --model_config_file: a ModelServerConfig with a model_config_list, in
//     protobuf text format (TF Serving's) or JSON (protobuf's JSON mapping
//     of the same message, chosen when the file starts with '{'):
//       model_config_list {
//         config {
//           name: "titanic" base_path: "/models/titanic" model_platform: "tensorflow"
//           model_version_policy { latest { num_versions: 2 } }  # or specific { versions: 3 } / all {}
//           version_labels { key: "stable" value: 3 }
//         }
//       }
//   --batching_parameters_file: BatchingParameters in text format or JSON
//     (max_batch_size { value: 32 } batch_timeout_micros { value: 1000 }
//      num_batch_threads { value: 4 } max_enqueued_batches { value: 100 }).
//   --ssl_config_file: TF Serving's SSLConfig in text format (server_key,
//     server_cert, custom_ca: the PEM text itself; client_verify: mutual
//     TLS), for the gRPC API.
// Fields outside this subset are errors naming the file, line and field.
#ifndef ESTUARY_SERVING_CONFIG_H_
#define ESTUARY_SERVING_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "serving/batcher.h"
#include "serving/model_manager.h"

namespace estuary {
namespace serving {

// Errors: those of reading `path`; InvalidArgument (a parse error with its
// line and column, a model_platform other than "tensorflow", no models).
absl::StatusOr<std::vector<ModelConfig>> ParseModelConfigText(const std::string& text,
                                                              const std::string& path);
absl::StatusOr<std::vector<ModelConfig>> LoadModelConfigFile(const io::Env& env,
                                                             const std::string& path);

// Fields left out keep `defaults`' values.
absl::StatusOr<BatchingOptions> ParseBatchingText(const std::string& text,
                                                  const std::string& path,
                                                  const BatchingOptions& defaults);
absl::StatusOr<BatchingOptions> LoadBatchingFile(const io::Env& env, const std::string& path,
                                                 const BatchingOptions& defaults);

// The gRPC API's TLS material from --ssl_config_file.
struct ServingTls {
  std::string key_pem;
  std::string cert_pem;
  std::string ca_pem;  // client certificates must chain to it (client_verify)
  bool client_verify = false;
};

// Errors (InvalidArgument, naming `path` and the field): a parse error;
// server_key / server_cert empty or not PEM, or not a pair; custom_ca not
// PEM; client_verify without custom_ca.
absl::StatusOr<ServingTls> ParseSslConfigText(const std::string& text, const std::string& path);
// Also the errors of reading `path`, with its name.
absl::StatusOr<ServingTls> LoadSslConfigFile(const io::Env& env, const std::string& path);

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_CONFIG_H_
