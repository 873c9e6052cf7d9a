#include "cli/k8s_manifests.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

constexpr char kJob[] = R"({"model_dir": "/tmp/local/model",
  "distribution": {"strategy": "parameter_server"}})";

K8sOptions Shape() {
  K8sOptions o;
  o.name = "mnist";
  o.namespace_ = "team";
  o.workers = 2;
  o.ps = 1;
  o.evaluator = true;
  return o;
}

TEST(K8sManifestsTest, TaskAddressesAreTfJobs) {
  EXPECT_EQ(K8sClusterJson(Shape()),
            R"({"chief":["mnist-chief-0.team.svc:2222"],)"
            R"("worker":["mnist-worker-0.team.svc:2222","mnist-worker-1.team.svc:2222"],)"
            R"("ps":["mnist-ps-0.team.svc:2222"],"evaluator":["mnist-evaluator-0.team.svc:2222"]})");
}

TEST(K8sManifestsTest, ModelDirMovesToTheSharedVolume) {
  absl::StatusOr<K8sManifests> m = RenderK8sManifests(kJob, "job.json", Shape());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(nlohmann::json::parse(m->job_json)["model_dir"], "/estuary/model");
  const std::string kept = R"({"model_dir": "/estuary/runs/a"})";
  m = RenderK8sManifests(kept, "job.json", Shape());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(nlohmann::json::parse(m->job_json)["model_dir"], "/estuary/runs/a");
}

TEST(K8sManifestsTest, EveryTaskGetsAServiceAJobAndItsOwnTfConfig) {
  absl::StatusOr<K8sManifests> m = RenderK8sManifests(kJob, "job.json", Shape());
  ASSERT_TRUE(m.ok()) << m.status();
  for (const char* task : {"mnist-chief-0", "mnist-worker-0", "mnist-worker-1", "mnist-ps-0",
                           "mnist-evaluator-0"}) {
    EXPECT_TRUE(absl::StrContains(m->plain_yaml, absl::StrCat("hostname: ", task))) << task;
  }
  // TF_CONFIG is one JSON string in YAML's double-quoted (JSON) syntax.
  EXPECT_TRUE(absl::StrContains(m->plain_yaml,
                                R"(\"task\":{\"type\":\"worker\",\"index\":1}})"))
      << m->plain_yaml;
  EXPECT_TRUE(absl::StrContains(m->plain_yaml, "restartPolicy: OnFailure"));
  EXPECT_TRUE(absl::StrContains(m->plain_yaml, "publishNotReadyAddresses: true"));
  EXPECT_TRUE(absl::StrContains(m->plain_yaml, "- /usr/local/bin/ps")) << m->plain_yaml;
  EXPECT_TRUE(absl::StrContains(m->plain_yaml, "claimName: mnist-model-dir"));
  EXPECT_TRUE(absl::StrContains(m->configmap_yaml, "job.json: |\n    {\n")) << m->configmap_yaml;
}

TEST(K8sManifestsTest, TfJobHasEveryReplicaTypeAndNoTfConfig) {
  absl::StatusOr<K8sManifests> m = RenderK8sManifests(kJob, "job.json", Shape());
  ASSERT_TRUE(m.ok()) << m.status();
  for (const char* replica : {"Chief:", "Worker:", "PS:", "Evaluator:"}) {
    EXPECT_TRUE(absl::StrContains(m->tfjob_yaml, replica)) << replica;
  }
  EXPECT_TRUE(absl::StrContains(m->tfjob_yaml, "- name: tensorflow"));
  EXPECT_TRUE(absl::StrContains(m->tfjob_yaml, "containerPort: 2222"));
  EXPECT_FALSE(absl::StrContains(m->tfjob_yaml, "TF_CONFIG"));
  EXPECT_EQ(m->kustomize_files.count("overlays/tfjob/tfjob.yaml"), 1);
  EXPECT_EQ(m->kustomize_files.count("base/job.json"), 1);
}

TEST(K8sManifestsTest, SecuritySecretIsMountedAndTheProbesLeaveGrpc) {
  absl::StatusOr<K8sManifests> plain = RenderK8sManifests(kJob, "job.json", Shape());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(absl::StrContains(plain->plain_yaml, "grpc:")) << plain->plain_yaml;
  EXPECT_FALSE(absl::StrContains(plain->plain_yaml, "--metrics_port"));
  EXPECT_FALSE(nlohmann::json::parse(plain->job_json).contains("security"));

  K8sOptions o = Shape();
  o.security_secret = "mnist-security";
  o.metrics_port = 9100;
  absl::StatusOr<K8sManifests> m = RenderK8sManifests(kJob, "job.json", o);
  ASSERT_TRUE(m.ok()) << m.status();
  const nlohmann::json job = nlohmann::json::parse(m->job_json);
  EXPECT_EQ(job["security"]["ca"], "/etc/estuary-security/ca.crt");
  EXPECT_EQ(job["security"]["cert"], "/etc/estuary-security/");
  EXPECT_EQ(job["security"]["key"], "/etc/estuary-security/");
  EXPECT_EQ(job["security"]["token_file"], "/etc/estuary-security/token");
  for (const std::string& yaml : {m->plain_yaml, m->tfjob_yaml}) {
    EXPECT_TRUE(absl::StrContains(yaml, "secretName: mnist-security")) << yaml;
    EXPECT_TRUE(absl::StrContains(yaml, "defaultMode: 288")) << yaml;  // 0440
    EXPECT_TRUE(absl::StrContains(yaml, "mountPath: /etc/estuary-security")) << yaml;
    EXPECT_TRUE(absl::StrContains(yaml, "- \"--metrics_port=9100\"")) << yaml;
    EXPECT_TRUE(absl::StrContains(yaml, "containerPort: 9100")) << yaml;
    EXPECT_TRUE(absl::StrContains(yaml, "path: /metrics")) << yaml;
    // kubelet's gRPC probe cannot present a client certificate.
    EXPECT_FALSE(absl::StrContains(yaml, "grpc:")) << yaml;
  }
  o.metrics_port = o.port;
  EXPECT_TRUE(absl::StrContains(RenderK8sManifests(kJob, "job.json", o).status().message(),
                                "--metrics_port must be 1..65535 and not --port"));
  o = Shape();
  o.security_secret = "Bad_Name";
  EXPECT_TRUE(absl::StrContains(RenderK8sManifests(kJob, "job.json", o).status().message(),
                                "--security_secret 'Bad_Name' is not a valid Secret name"));
}

TEST(K8sManifestsTest, BadInputNamesTheField) {
  K8sOptions o = Shape();
  o.name = "My_Job";
  absl::StatusOr<K8sManifests> m = RenderK8sManifests(kJob, "job.json", o);
  EXPECT_TRUE(absl::StrContains(m.status().message(), "--name 'My_Job' is not a DNS label"))
      << m.status();
  o = Shape();
  o.workers = -1;
  EXPECT_TRUE(absl::StrContains(RenderK8sManifests(kJob, "job.json", o).status().message(),
                                "--workers must be >= 0"));
  m = RenderK8sManifests(R"({"model_dir": "m", "distribution": {"strategy": "multi_worker_mirrored"}})",
                         "mwm.json", Shape());
  EXPECT_FALSE(m.ok());
  EXPECT_TRUE(absl::StrContains(m.status().message(), "multi_worker_mirrored")) << m.status();
  m = RenderK8sManifests(R"({"model_dir": "m", "oops": 1})", "bad.json", Shape());
  EXPECT_TRUE(absl::StrContains(m.status().message(), "bad.json: $.oops: unknown key"))
      << m.status();
}

}  // namespace
}  // namespace estuary
