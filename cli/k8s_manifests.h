// Kubernetes manifests for an Estuary job: plain Kubernetes (one headless
// Service and one batch/v1 Job per task) and Kubeflow's TFJob.
//
// Both forms use the same task addresses, the ones the TFJob operator gives
// its pods: `<name>-<type>-<index>.<namespace>.svc:2222` (TensorFlow's
// replica types in lower case: chief, worker, ps, evaluator; the evaluator
// is listed in the cluster, as TFJob and `estuary local` do). Every pod
// mounts the job file from the ConfigMap `<name>-job` at
// /etc/estuary/job.json and the ReadWriteMany PVC `<name>-model-dir` at
// /estuary; the job's model_dir is rewritten to lie on it (/estuary/model
// unless it already does), so the chief, the evaluator and a restarted
// chief all see the same checkpoints.
//
// Restart policy (the parameter-server fault semantics): every task is
// `OnFailure`. A worker or ps that dies is restarted and rejoins (a ps's
// return makes the chief reload the last checkpoint); a chief that dies
// makes every other task exit 1 within the heartbeat timeout, so they are
// restarted too and wait (up to distribution.startup_timeout_secs) for the
// restarted chief, which resumes from the last checkpoint. A task that
// finished exits 0 and stays down; the job is done when the chief is.
// SIGTERM (preemption, eviction, a drain) is not the end of the job: every
// task runs with --on_sigterm=preempt, so a preempted chief saves a
// checkpoint and fails the cluster (the others exit 1 and restart), and the
// task that got the signal exits 143 (its Job / TFJob replaces the pod).
#ifndef ESTUARY_CLI_K8S_MANIFESTS_H_
#define ESTUARY_CLI_K8S_MANIFESTS_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace estuary {

struct K8sOptions {
  std::string name = "estuary";      // Job name: prefix of every object.
  std::string namespace_ = "default";  // Appears in every task address.
  std::string image = "estuary:latest";
  std::string image_pull_policy = "IfNotPresent";
  int workers = 1;  // besides the chief
  int ps = 1;
  bool evaluator = false;
  int port = 2222;
  // PVC for model_dir: its size, and its storage class ("" = the
  // cluster's default). It must support ReadWriteMany (NFS, CephFS, a CSI
  // file store...; see deploy/README.md).
  std::string storage = "10Gi";
  std::string storage_class;
  // Per container.
  std::string cpu = "1";
  std::string memory = "2Gi";
  // A directory mounted read-only at the same path in every pod from the
  // node (hostPath): for single-node clusters and `podman kube play`, where
  // the input lives on the host. Empty: none (inputs then live on the
  // shared volume, under /estuary).
  std::string data_host_path;
  // Seconds between SIGTERM and SIGKILL: time for the chief's last
  // checkpoint.
  int termination_grace_secs = 60;
  // Job / TFJob backoffLimit: restarts (all tasks together) before the job fails.
  int backoff_limit = 10;
  // The Secret `estuary certs --k8s_secret NAME` wrote (the job's CA, task
  // certificates and token): mounted read-only at kK8sSecurityMount in
  // every pod, and the job file's `security` block points there. Empty:
  // no security. With it, gRPC requires client certificates, which
  // kubelet's gRPC probe cannot present: every task then also serves its
  // Prometheus metrics on plain HTTP `metrics_port`, and the probes are
  // httpGet /metrics there.
  std::string security_secret;
  int metrics_port = 9090;
};

// The mount point of the shared volume and the job file in every pod.
inline constexpr char kK8sSharedMount[] = "/estuary";
inline constexpr char kK8sJobFile[] = "/etc/estuary/job.json";
inline constexpr char kK8sSecurityMount[] = "/etc/estuary-security";

struct K8sManifests {
  // The job file as mounted in the pods (model_dir on the shared volume).
  std::string job_json;
  // Every manifest, in apply order, as YAML documents.
  std::string configmap_yaml;  // ConfigMap <name>-job (holds job_json)
  std::string pvc_yaml;        // PVC <name>-model-dir
  std::string plain_yaml;      // Services + Jobs, one per task
  std::string tfjob_yaml;      // the TFJob
  // A kustomize tree: "base/kustomization.yaml", "base/job.json",
  // "base/pvc.yaml", "overlays/plain/...", "overlays/tfjob/..." -> contents.
  std::map<std::string, std::string> kustomize_files;
};

// Renders the manifests for `job_text` (a job file's contents; `job_source`
// names it in errors). InvalidArgument for a bad job file or options (a
// name that is not a DNS label, workers < 0, ...), naming the field.
absl::StatusOr<K8sManifests> RenderK8sManifests(const std::string& job_text,
                                                const std::string& job_source,
                                                const K8sOptions& options);

// TF_CONFIG's cluster for these options (the addresses above), as JSON.
std::string K8sClusterJson(const K8sOptions& options);

}  // namespace estuary

#endif  // ESTUARY_CLI_K8S_MANIFESTS_H_
