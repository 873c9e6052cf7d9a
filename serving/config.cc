#include "serving/config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "common/security.h"
#include "proto/serving/model_server_config.pb.h"
#include "proto/serving/ssl_config.pb.h"

namespace estuary {
namespace serving {
namespace {

class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) first_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// Text format, or JSON if the text starts with '{'.
absl::Status ParseMessage(const std::string& text, const std::string& path,
                          google::protobuf::Message* msg) {
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), "{")) {
    auto st = google::protobuf::util::JsonStringToMessage(text, msg);
    if (!st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a valid ", msg->GetTypeName(), " in JSON: ", st.message().ToString()));
    }
    return absl::OkStatus();
  }
  ErrorCollector errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, msg)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", errors.first()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ModelConfig>> ParseModelConfigText(const std::string& text,
                                                              const std::string& path) {
  tensorflow::serving::ModelServerConfig config;
  absl::Status st = ParseMessage(text, path, &config);
  if (!st.ok()) return st;
  if (!config.has_model_config_list() || config.model_config_list().config().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model_config_list has no config"));
  }
  std::vector<ModelConfig> out;
  int i = 0;
  for (const auto& c : config.model_config_list().config()) {
    const std::string where = absl::StrCat(path, ": model_config_list.config[", i++, "]");
    if (!c.model_platform().empty() && c.model_platform() != "tensorflow") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".model_platform: '", c.model_platform(), "' is not served (only \"tensorflow\")"));
    }
    if (c.name().empty()) return absl::InvalidArgumentError(absl::StrCat(where, ".name is empty"));
    if (c.base_path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".base_path is empty"));
    }
    ModelConfig m;
    m.name = c.name();
    m.base_path = c.base_path();
    const auto& p = c.model_version_policy();
    if (p.has_all()) {
      m.policy.kind = VersionPolicy::Kind::kAll;
    } else if (p.has_specific()) {
      m.policy.kind = VersionPolicy::Kind::kSpecific;
      m.policy.versions.assign(p.specific().versions().begin(), p.specific().versions().end());
      if (m.policy.versions.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".model_version_policy.specific has no versions"));
      }
    } else if (p.has_latest() && p.latest().num_versions() > 0) {
      m.policy.num_versions = static_cast<int>(p.latest().num_versions());
    }
    for (const auto& [label, v] : c.version_labels()) m.version_labels[label] = v;
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<std::vector<ModelConfig>> LoadModelConfigFile(const io::Env& env,
                                                             const std::string& path) {
  absl::StatusOr<std::string> text = io::ReadWholeFile(env, path);
  if (!text.ok()) return text.status();
  return ParseModelConfigText(*text, path);
}

absl::StatusOr<BatchingOptions> ParseBatchingText(const std::string& text,
                                                  const std::string& path,
                                                  const BatchingOptions& defaults) {
  tensorflow::serving::BatchingParameters p;
  absl::Status st = ParseMessage(text, path, &p);
  if (!st.ok()) return st;
  BatchingOptions o = defaults;
  if (p.has_max_batch_size()) o.max_batch_size = static_cast<int64_t>(p.max_batch_size().value());
  if (p.has_batch_timeout_micros()) {
    o.batch_timeout = absl::Microseconds(static_cast<int64_t>(p.batch_timeout_micros().value()));
  }
  if (p.has_num_batch_threads()) o.num_batch_threads = static_cast<int>(p.num_batch_threads().value());
  if (p.has_max_enqueued_batches()) {
    o.max_enqueued_batches = static_cast<int64_t>(p.max_enqueued_batches().value());
  }
  if (o.max_batch_size < 1 || o.num_batch_threads < 1 || o.max_enqueued_batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": max_batch_size, num_batch_threads and max_enqueued_batches must be >= 1"));
  }
  return o;
}

absl::StatusOr<BatchingOptions> LoadBatchingFile(const io::Env& env, const std::string& path,
                                                 const BatchingOptions& defaults) {
  absl::StatusOr<std::string> text = io::ReadWholeFile(env, path);
  if (!text.ok()) return text.status();
  return ParseBatchingText(*text, path, defaults);
}

absl::StatusOr<ServingTls> ParseSslConfigText(const std::string& text, const std::string& path) {
  tensorflow::serving::SSLConfig c;
  absl::Status st = ParseMessage(text, path, &c);
  if (!st.ok()) return st;
  auto invalid = [&path](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", field, " ", why));
  };
  constexpr char kPemNotPath[] = " (SSLConfig holds the PEM text itself, as in TF Serving)";
  if (c.server_key().empty()) return invalid("server_key", "is empty");
  if (c.server_cert().empty()) return invalid("server_cert", "is empty");
  if (c.client_verify() && c.custom_ca().empty()) {
    return invalid("custom_ca",
                   "is empty, but client_verify needs the CA of the client certificates");
  }
  if (absl::Status pem = CheckPemMaterial(c.server_cert(), c.server_key(), c.custom_ca());
      !pem.ok()) {
    const absl::string_view m = pem.message();
    if (absl::StartsWith(m, "ca: ")) {
      return invalid("custom_ca", absl::StrCat(m.substr(4), kPemNotPath));
    }
    if (absl::StartsWith(m, "cert: ")) {
      return invalid("server_cert", absl::StrCat(m.substr(6), kPemNotPath));
    }
    if (absl::StartsWith(m, "key: is not")) {
      return invalid("server_key", absl::StrCat(m.substr(5), kPemNotPath));
    }
    return invalid("server_key", absl::StrCat(m.substr(5), " in server_cert"));
  }
  ServingTls tls;
  tls.key_pem = c.server_key();
  tls.cert_pem = c.server_cert();
  tls.ca_pem = c.custom_ca();
  tls.client_verify = c.client_verify();
  return tls;
}

absl::StatusOr<ServingTls> LoadSslConfigFile(const io::Env& env, const std::string& path) {
  absl::StatusOr<std::string> text = io::ReadWholeFile(env, path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("--ssl_config_file: cannot read ", path,
                                                           ": ", text.status().message()));
  }
  return ParseSslConfigText(*text, path);
}

}  // namespace serving
}  // namespace estuary
