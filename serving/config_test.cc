#include "serving/config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/cert_gen.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace serving {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, TfServingTextFormat) {
  absl::StatusOr<std::vector<ModelConfig>> m = ParseModelConfigText(R"(
    model_config_list {
      config {
        name: "titanic"
        base_path: "/models/titanic"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }
      }
      config {
        name: "clicks"
        base_path: "/models/clicks"
        model_version_policy { specific { versions: 3 versions: 5 } }
        version_labels { key: "stable" value: 3 }
      }
      config { name: "all" base_path: "/m/all" model_version_policy { all {} } }
    })", "models.config");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].name, "titanic");
  EXPECT_EQ((*m)[0].policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ((*m)[0].policy.num_versions, 2);
  EXPECT_EQ((*m)[1].policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_EQ((*m)[1].policy.versions, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ((*m)[1].version_labels.at("stable"), 3);
  EXPECT_EQ((*m)[2].policy.kind, VersionPolicy::Kind::kAll);
}

TEST(ConfigTest, Json) {
  absl::StatusOr<std::vector<ModelConfig>> m = ParseModelConfigText(
      R"({"model_config_list": {"config": [{"name": "a", "base_path": "/a",
          "model_platform": "tensorflow"}]}})",
      "models.json");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)[0].base_path, "/a");
  EXPECT_EQ((*m)[0].policy.num_versions, 1);
}

TEST(ConfigTest, ErrorsNameTheFileAndField) {
  absl::Status st = ParseModelConfigText("model_config_list { config { nmae: \"a\" } }", "f.config")
                        .status();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("f.config:1:"));
  EXPECT_THAT(st.message(), HasSubstr("nmae"));
  st = ParseModelConfigText(
           "model_config_list { config { name: \"a\" base_path: \"/a\" model_platform: \"caffe\" } }",
           "f.config")
           .status();
  EXPECT_THAT(st.message(), HasSubstr("model_config_list.config[0].model_platform"));
  EXPECT_THAT(ParseModelConfigText("", "f").status().message(), HasSubstr("has no config"));
  EXPECT_THAT(ParseModelConfigText("model_config_list { config { name: \"a\" } }", "f")
                  .status()
                  .message(),
              HasSubstr("base_path is empty"));
}

TEST(ConfigTest, BatchingParameters) {
  BatchingOptions defaults;
  absl::StatusOr<BatchingOptions> b = ParseBatchingText(
      "max_batch_size { value: 64 } batch_timeout_micros { value: 2000 } "
      "num_batch_threads { value: 3 }",
      "batching.config", defaults);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->max_batch_size, 64);
  EXPECT_EQ(b->batch_timeout, absl::Microseconds(2000));
  EXPECT_EQ(b->num_batch_threads, 3);
  EXPECT_EQ(b->max_enqueued_batches, defaults.max_enqueued_batches);
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseBatchingText("max_batch_size { value: 0 }", "b", defaults).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseBatchingText("max_batch_sizes { value: 1 }", "b", defaults).status()));
}

// A string field of the text format holding PEM text.
std::string Field(const std::string& name, const std::string& pem) {
  return absl::StrCat(name, ": \"", absl::StrReplaceAll(pem, {{"\n", "\\n"}}), "\"\n");
}

TEST(SslConfigTest, TfServingsSslConfigWithPemText) {
  const PemPair ca = *MakeCertificateAuthority("ca", absl::Hours(1));
  const PemPair server = *MakeSignedCertificate(ca, "server", {"localhost"}, absl::Hours(1));
  const PemPair other = *MakeSignedCertificate(ca, "other", {"localhost"}, absl::Hours(1));
  absl::StatusOr<ServingTls> tls = ParseSslConfigText(
      Field("server_key", server.key) + Field("server_cert", server.cert) +
          Field("custom_ca", ca.cert) + "client_verify: true\n",
      "ssl.config");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->cert_pem, server.cert);
  EXPECT_EQ(tls->key_pem, server.key);
  EXPECT_EQ(tls->ca_pem, ca.cert);
  EXPECT_TRUE(tls->client_verify);
  // Server-side TLS only: no CA needed.
  tls = ParseSslConfigText(Field("server_key", server.key) + Field("server_cert", server.cert),
                           "ssl.config");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_FALSE(tls->client_verify);

  auto error = [](const std::string& text) {
    absl::StatusOr<ServingTls> t = ParseSslConfigText(text, "ssl.config");
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
    return std::string(t.status().message());
  };
  EXPECT_THAT(error(Field("server_cert", server.cert)),
              HasSubstr("ssl.config: server_key is empty"));
  EXPECT_THAT(error(Field("server_key", server.key)),
              HasSubstr("ssl.config: server_cert is empty"));
  EXPECT_THAT(error(Field("server_key", server.key) + Field("server_cert", "/etc/server.crt")),
              HasSubstr("ssl.config: server_cert is not a PEM certificate (SSLConfig holds the "
                        "PEM text itself"));
  EXPECT_THAT(error(Field("server_key", "junk") + Field("server_cert", server.cert)),
              HasSubstr("ssl.config: server_key is not a PEM private key"));
  EXPECT_THAT(error(Field("server_key", other.key) + Field("server_cert", server.cert)),
              HasSubstr("ssl.config: server_key does not belong to the certificate in "
                        "server_cert"));
  EXPECT_THAT(error(Field("server_key", server.key) + Field("server_cert", server.cert) +
                    "client_verify: true\n"),
              HasSubstr("ssl.config: custom_ca is empty, but client_verify needs"));
  EXPECT_THAT(error(Field("server_key", server.key) + Field("server_cert", server.cert) +
                    Field("custom_ca", "x")),
              HasSubstr("ssl.config: custom_ca is not a PEM certificate"));
  EXPECT_THAT(error("server_pem: \"x\"\n"), HasSubstr("ssl.config:1:"));
  absl::StatusOr<ServingTls> missing = LoadSslConfigFile(io::Env::Default(), "/nonexistent/ssl");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("--ssl_config_file: cannot read /nonexistent/ssl"));
}

}  // namespace
}  // namespace serving
}  // namespace estuary
