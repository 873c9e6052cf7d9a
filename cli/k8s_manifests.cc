#include "cli/k8s_manifests.h"

#include <cctype>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/cluster.h"
#include "common/cluster_plan.h"
#include "common/job_spec.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using Json = nlohmann::ordered_json;

// ---- A small YAML writer (block style) for the manifests' JSON trees.

bool IsPlainScalar(const std::string& s) {
  if (s.empty()) return false;
  static const char* const kReserved[] = {"true", "false", "yes", "no", "on", "off",
                                          "null", "y", "n", "~"};
  for (const char* r : kReserved) {
    if (absl::EqualsIgnoreCase(s, r)) return false;
  }
  if (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '.' ||
      s[0] == '+') {
    return false;  // could read as a number
  }
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
        c != '/') {
      return false;
    }
  }
  return true;
}

std::string Scalar(const Json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return IsPlainScalar(s) ? s : v.dump();  // a JSON string is a YAML double-quoted one
  }
  return v.dump();
}

void WriteYaml(const Json& v, int indent, std::string* out);

// Writes the value of a mapping key or sequence item that follows "key:" or
// "- " on the current line.
void WriteValue(const Json& v, int indent, std::string* out) {
  const std::string pad(indent, ' ');
  if (v.is_object() && !v.empty()) {
    out->append("\n");
    WriteYaml(v, indent, out);
  } else if (v.is_array() && !v.empty()) {
    out->append("\n");
    WriteYaml(v, indent, out);
  } else if (v.is_object()) {
    out->append(" {}\n");
  } else if (v.is_array()) {
    out->append(" []\n");
  } else if (v.is_string() && absl::StrContains(v.get_ref<const std::string&>(), '\n')) {
    // A literal block keeps a file (the job's JSON) readable.
    const std::string& s = v.get_ref<const std::string&>();
    out->append(absl::EndsWith(s, "\n") ? " |\n" : " |-\n");
    for (absl::string_view line : absl::StrSplit(absl::StripSuffix(s, "\n"), '\n')) {
      if (!line.empty()) absl::StrAppend(out, pad, line);
      out->append("\n");
    }
  } else {
    absl::StrAppend(out, " ", Scalar(v), "\n");
  }
}

void WriteYaml(const Json& v, int indent, std::string* out) {
  const std::string pad(indent, ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      absl::StrAppend(out, pad, Scalar(Json(it.key())), ":");
      WriteValue(it.value(), indent + 2, out);
    }
  } else if (v.is_array()) {
    for (const Json& item : v) {
      if (item.is_object() && !item.empty()) {
        // "- key: value" with the rest of the mapping aligned under key.
        std::string body;
        WriteYaml(item, indent + 2, &body);
        absl::StrAppend(out, pad, "- ", body.substr(indent + 2));
      } else {
        absl::StrAppend(out, pad, "-");
        WriteValue(item, indent + 2, out);
      }
    }
  } else {
    absl::StrAppend(out, pad, Scalar(v), "\n");
  }
}

std::string Yaml(const Json& v) {
  std::string out;
  WriteYaml(v, 0, &out);
  return out;
}

std::string Documents(const std::vector<Json>& docs) {
  std::vector<std::string> parts;
  for (const Json& d : docs) parts.push_back(Yaml(d));
  return absl::StrJoin(parts, "---\n");
}

// ---- The objects.

bool IsDnsLabel(const std::string& s, size_t max_size) {
  if (s.empty() || s.size() > max_size) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '-')) {
      return false;
    }
  }
  return s.front() != '-' && s.back() != '-';
}

struct TaskType {
  const char* type;      // TF_CONFIG's
  const char* replica;   // TFJob's replica type
  const char* binary;
  int count;
};

std::vector<TaskType> TaskTypes(const K8sOptions& o) {
  std::vector<TaskType> types = {{"chief", "Chief", "chief", 1},
                                 {"worker", "Worker", "worker", o.workers},
                                 {"ps", "PS", "ps", o.ps},
                                 {"evaluator", "Evaluator", "evaluator", o.evaluator ? 1 : 0}};
  std::vector<TaskType> present;
  for (const TaskType& t : types) {
    if (t.count > 0) present.push_back(t);
  }
  return present;
}

std::string TaskName(const K8sOptions& o, const char* type, int index) {
  return absl::StrCat(o.name, "-", type, "-", index);
}

Json Labels(const K8sOptions& o) {
  return Json{{"app.kubernetes.io/name", "estuary"}, {"app.kubernetes.io/instance", o.name}};
}

Json TaskLabels(const K8sOptions& o, const char* type, int index) {
  Json l = Labels(o);
  l["estuary.dev/task-type"] = type;
  l["estuary.dev/task-index"] = absl::StrCat(index);
  return l;
}

// The one container of every pod: `tensorflow`, the name the TFJob
// operator injects TF_CONFIG into. `tf_config` empty: none (TFJob's).
Json Container(const K8sOptions& o, const TaskType& t, const std::string& tf_config) {
  Json c;
  c["name"] = "tensorflow";
  c["image"] = o.image;
  c["imagePullPolicy"] = o.image_pull_policy;
  // SIGTERM here is a preemption, not the end of the job (role_main.h).
  c["command"] = Json::array({absl::StrCat("/usr/local/bin/", t.binary),
                              absl::StrCat("--job=", kK8sJobFile), "--on_sigterm=preempt"});
  const bool secured = !o.security_secret.empty();
  if (secured) c["command"].push_back(absl::StrCat("--metrics_port=", o.metrics_port));
  if (!tf_config.empty()) c["env"] = Json::array({Json{{"name", "TF_CONFIG"}, {"value", tf_config}}});
  c["ports"] = Json::array({Json{{"name", "tfjob-port"}, {"containerPort", o.port}}});
  if (secured) {
    c["ports"].push_back(Json{{"name", "metrics"}, {"containerPort", o.metrics_port}});
  }
  // The task's gRPC server answers grpc.health.v1 from its start (before
  // the start barrier), so readiness means "serving"; liveness catches a
  // wedged server. Kubernetes >= 1.24 probes gRPC natively. Under mutual
  // TLS kubelet cannot present a client certificate: the probes ask the
  // plain-HTTP metrics server instead (it listens from start-up too).
  const Json probe = secured ? Json{{"httpGet", Json{{"path", "/metrics"}, {"port", "metrics"}}}}
                             : Json{{"grpc", Json{{"port", o.port}}}};
  c["readinessProbe"] = probe;
  c["readinessProbe"]["periodSeconds"] = 5;
  c["livenessProbe"] = probe;
  c["livenessProbe"]["initialDelaySeconds"] = 10;
  c["livenessProbe"]["periodSeconds"] = 10;
  c["livenessProbe"]["timeoutSeconds"] = 5;
  c["livenessProbe"]["failureThreshold"] = 6;
  c["resources"] = Json{{"requests", Json{{"cpu", o.cpu}, {"memory", o.memory}}},
                        {"limits", Json{{"memory", o.memory}}}};
  c["securityContext"] = Json{{"allowPrivilegeEscalation", false},
                              {"readOnlyRootFilesystem", true},
                              {"capabilities", Json{{"drop", Json::array({"ALL"})}}}};
  Json mounts = Json::array(
      {Json{{"name", "job"}, {"mountPath", "/etc/estuary"}, {"readOnly", true}},
       Json{{"name", "model-dir"}, {"mountPath", kK8sSharedMount}},
       Json{{"name", "tmp"}, {"mountPath", "/tmp"}}});
  if (!o.data_host_path.empty()) {
    mounts.push_back(
        Json{{"name", "data"}, {"mountPath", o.data_host_path}, {"readOnly", true}});
  }
  if (secured) {
    mounts.push_back(
        Json{{"name", "security"}, {"mountPath", kK8sSecurityMount}, {"readOnly", true}});
  }
  c["volumeMounts"] = mounts;
  return c;
}

Json PodSpec(const K8sOptions& o, const TaskType& t, const std::string& tf_config) {
  Json spec;
  spec["restartPolicy"] = "OnFailure";
  spec["terminationGracePeriodSeconds"] = o.termination_grace_secs;
  spec["securityContext"] = Json{{"runAsNonRoot", true},
                                 {"runAsUser", 65532},
                                 {"runAsGroup", 65532},
                                 {"fsGroup", 65532}};
  spec["containers"] = Json::array({Container(o, t, tf_config)});
  Json volumes = Json::array(
      {Json{{"name", "job"}, {"configMap", Json{{"name", absl::StrCat(o.name, "-job")}}}},
       Json{{"name", "model-dir"},
            {"persistentVolumeClaim", Json{{"claimName", absl::StrCat(o.name, "-model-dir")}}}},
       Json{{"name", "tmp"}, {"emptyDir", Json::object()}}});
  if (!o.data_host_path.empty()) {
    volumes.push_back(Json{{"name", "data"},
                           {"hostPath", Json{{"path", o.data_host_path}, {"type", "Directory"}}}});
  }
  if (!o.security_secret.empty()) {
    // 0440: the files belong to root and the pod's fsGroup (65532), whose
    // member the task runs as; the keys stay unreadable to others.
    volumes.push_back(Json{{"name", "security"},
                           {"secret", Json{{"secretName", o.security_secret},
                                           {"defaultMode", 0440}}}});
  }
  spec["volumes"] = volumes;
  return spec;
}

Json ClusterJson(const K8sOptions& o) {
  Json cluster = Json::object();
  for (const TaskType& t : TaskTypes(o)) {
    Json list = Json::array();
    for (int i = 0; i < t.count; ++i) {
      list.push_back(absl::StrCat(TaskName(o, t.type, i), ".", o.namespace_, ".svc:", o.port));
    }
    cluster[t.type] = list;
  }
  return cluster;
}

std::string TfConfigJson(const K8sOptions& o, const TaskType& t, int index) {
  Json tf;
  tf["cluster"] = ClusterJson(o);
  tf["task"] = Json{{"type", t.type}, {"index", index}};
  return tf.dump();
}

Json Metadata(const K8sOptions& o, const std::string& name, Json labels) {
  return Json{{"name", name}, {"namespace", o.namespace_}, {"labels", std::move(labels)}};
}

std::vector<Json> PlainObjects(const K8sOptions& o) {
  std::vector<Json> docs;
  for (const TaskType& t : TaskTypes(o)) {
    for (int i = 0; i < t.count; ++i) {
      const std::string name = TaskName(o, t.type, i);
      // A headless Service per task, named as the TFJob operator names
      // them, so `<name>.<ns>.svc` resolves to the task's pod;
      // publishNotReadyAddresses: tasks find each other while starting.
      Json svc;
      svc["apiVersion"] = "v1";
      svc["kind"] = "Service";
      svc["metadata"] = Metadata(o, name, TaskLabels(o, t.type, i));
      svc["spec"] = Json{{"clusterIP", "None"},
                         {"publishNotReadyAddresses", true},
                         {"selector", TaskLabels(o, t.type, i)},
                         {"ports", Json::array({Json{{"name", "tfjob-port"},
                                                     {"port", o.port},
                                                     {"targetPort", o.port}}})}};
      docs.push_back(svc);
    }
  }
  for (const TaskType& t : TaskTypes(o)) {
    for (int i = 0; i < t.count; ++i) {
      const std::string name = TaskName(o, t.type, i);
      Json job;
      job["apiVersion"] = "batch/v1";
      job["kind"] = "Job";
      job["metadata"] = Metadata(o, name, TaskLabels(o, t.type, i));
      Json pod = PodSpec(o, t, TfConfigJson(o, t, i));
      pod["hostname"] = name;
      job["spec"] = Json{{"backoffLimit", o.backoff_limit},
                         {"completions", 1},
                         {"parallelism", 1},
                         {"template", Json{{"metadata", Json{{"labels", TaskLabels(o, t.type, i)}}},
                                           {"spec", pod}}}};
      docs.push_back(job);
    }
  }
  return docs;
}

Json TfJobObject(const K8sOptions& o) {
  Json specs = Json::object();
  for (const TaskType& t : TaskTypes(o)) {
    Json pod = PodSpec(o, t, "");
    pod.erase("restartPolicy");  // the replica spec's restartPolicy rules
    specs[t.replica] = Json{{"replicas", t.count},
                            {"restartPolicy", "OnFailure"},
                            {"template", Json{{"metadata", Json{{"labels", Labels(o)}}},
                                              {"spec", pod}}}};
  }
  Json job;
  job["apiVersion"] = "kubeflow.org/v1";
  job["kind"] = "TFJob";
  job["metadata"] = Metadata(o, o.name, Labels(o));
  // cleanPodPolicy None keeps the pods' logs after the job; backoffLimit
  // bounds restarts.
  job["spec"] = Json{{"runPolicy", Json{{"cleanPodPolicy", "None"}, {"backoffLimit", o.backoff_limit}}},
                     {"tfReplicaSpecs", specs}};
  return job;
}

Json PvcObject(const K8sOptions& o) {
  Json spec{{"accessModes", Json::array({"ReadWriteMany"})},
            {"resources", Json{{"requests", Json{{"storage", o.storage}}}}}};
  if (!o.storage_class.empty()) spec["storageClassName"] = o.storage_class;
  Json pvc;
  pvc["apiVersion"] = "v1";
  pvc["kind"] = "PersistentVolumeClaim";
  pvc["metadata"] = Metadata(o, absl::StrCat(o.name, "-model-dir"), Labels(o));
  pvc["spec"] = spec;
  return pvc;
}

absl::Status CheckOptions(const K8sOptions& o) {
  // Task names (<name>-evaluator-N) must be DNS labels of at most 63.
  if (!IsDnsLabel(o.name, 40)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--name '", o.name,
        "' is not a DNS label of at most 40 characters (lower-case letters, digits, '-')"));
  }
  if (!IsDnsLabel(o.namespace_, 63)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--namespace '", o.namespace_, "' is not a DNS label"));
  }
  if (o.workers < 0) return absl::InvalidArgumentError("--workers must be >= 0");
  if (o.ps < 0) return absl::InvalidArgumentError("--ps must be >= 0");
  if (o.port <= 0 || o.port > 65535) return absl::InvalidArgumentError("--port must be 1..65535");
  if (o.image.empty()) return absl::InvalidArgumentError("--image must not be empty");
  if (!o.data_host_path.empty() && o.data_host_path[0] != '/') {
    return absl::InvalidArgumentError("--data_host_path must be an absolute path");
  }
  if (!o.security_secret.empty() && !IsDnsLabel(o.security_secret, 253)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--security_secret '", o.security_secret, "' is not a valid Secret name"));
  }
  if (!o.security_secret.empty() &&
      (o.metrics_port <= 0 || o.metrics_port > 65535 || o.metrics_port == o.port)) {
    return absl::InvalidArgumentError("--metrics_port must be 1..65535 and not --port");
  }
  return absl::OkStatus();
}

}  // namespace

std::string K8sClusterJson(const K8sOptions& options) { return ClusterJson(options).dump(); }

absl::StatusOr<K8sManifests> RenderK8sManifests(const std::string& job_text,
                                                const std::string& job_source,
                                                const K8sOptions& o) {
  if (absl::Status st = CheckOptions(o); !st.ok()) return st;
  // The job must be valid as the pods will read it, and match the shape.
  absl::StatusOr<JobSpec> spec = ParseJobSpec(job_text, job_source);
  if (!spec.ok()) return spec.status();
  // The strategy must fit the shape (ps tasks <=> parameter_server), as
  // every pod will check at start-up.
  absl::StatusOr<estuary::TfConfig> tf = ParseTfConfig(TfConfigJson(o, TaskTypes(o)[0], 0));
  if (!tf.ok()) return tf.status();
  if (absl::StatusOr<std::string> strategy = ResolveStrategy(*spec, *tf); !strategy.ok()) {
    return strategy.status();
  }
  Json job = Json::parse(job_text, nullptr, /*allow_exceptions=*/false);
  if (job.is_discarded() || !job.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(job_source, ": not a JSON object"));
  }
  const std::string model_dir = job.value("model_dir", "");
  const std::string shared = absl::StrCat(kK8sSharedMount, "/");
  if (!absl::StartsWith(model_dir, shared)) job["model_dir"] = absl::StrCat(shared, "model");
  if (!o.security_secret.empty()) {
    // The block `estuary certs` prints for the Secret's mount (replacing
    // any the job had: paths on the submitting machine mean nothing here).
    const std::string dir = absl::StrCat(kK8sSecurityMount, "/");
    job["security"] = Json{{"ca", absl::StrCat(dir, "ca.crt")},
                           {"cert", dir},
                           {"key", dir},
                           {"token_file", absl::StrCat(dir, "token")}};
  }

  K8sManifests m;
  m.job_json = job.dump(2) + "\n";
  Json cm;
  cm["apiVersion"] = "v1";
  cm["kind"] = "ConfigMap";
  cm["metadata"] = Metadata(o, absl::StrCat(o.name, "-job"), Labels(o));
  cm["data"] = Json{{"job.json", m.job_json}};
  m.configmap_yaml = Yaml(cm);
  m.pvc_yaml = Yaml(PvcObject(o));
  m.plain_yaml = Documents(PlainObjects(o));
  m.tfjob_yaml = Yaml(TfJobObject(o));

  const std::string header = absl::StrCat(
      "# Rendered by `estuary k8s` for ", o.workers, " worker(s), ", o.ps, " ps",
      o.evaluator ? ", an evaluator" : "", " (namespace ", o.namespace_,
      "; task addresses <name>-<type>-<i>.", o.namespace_, ".svc:", o.port, ").\n");
  Json base{{"apiVersion", "kustomize.config.k8s.io/v1beta1"},
            {"kind", "Kustomization"},
            {"resources", Json::array({"pvc.yaml"})},
            {"configMapGenerator",
             Json::array({Json{{"name", absl::StrCat(o.name, "-job")},
                               {"namespace", o.namespace_},
                               {"files", Json::array({"job.json"})},
                               {"options", Json{{"disableNameSuffixHash", true},
                                                {"labels", Labels(o)}}}}})}};
  m.kustomize_files["base/kustomization.yaml"] = header + Yaml(base);
  m.kustomize_files["base/job.json"] = m.job_json;
  m.kustomize_files["base/pvc.yaml"] = m.pvc_yaml;
  for (const char* overlay : {"plain", "tfjob"}) {
    const std::string file = absl::StrCat(overlay, ".yaml");
    Json k{{"apiVersion", "kustomize.config.k8s.io/v1beta1"},
           {"kind", "Kustomization"},
           {"resources", Json::array({"../../base", file})}};
    m.kustomize_files[absl::StrCat("overlays/", overlay, "/kustomization.yaml")] =
        header + Yaml(k);
    m.kustomize_files[absl::StrCat("overlays/", overlay, "/", file)] =
        std::string(overlay) == "plain" ? m.plain_yaml : m.tfjob_yaml;
  }
  return m;
}

}  // namespace estuary
