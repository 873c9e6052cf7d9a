#include "cli/k8s_command.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/k8s_manifests.h"
#include "common/exit_codes.h"
#include "common/flags.h"
#include "common/io/env.h"

namespace estuary {
namespace {

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "estuary k8s: error: %.*s\n", static_cast<int>(message.size()),
               message.data());
  return code;
}

}  // namespace

int K8sCommand(int argc, char** argv) {
  K8sOptions o;
  bool tfjob = false;
  std::string out_dir;
  FlagSet flags(
      "estuary k8s JOB.json --workers N --ps M [--evaluator] [--tfjob] [--name NAME] "
      "[--namespace NS] [--image IMAGE] [--out_dir DIR]",
      absl::StrCat(
          "Renders the Kubernetes manifests that run JOB.json as a cluster of a chief, N "
          "workers, M ps tasks and optionally an evaluator: a ConfigMap with the job file, a "
          "ReadWriteMany PVC for model_dir (the job's model_dir is moved under ",
          kK8sSharedMount,
          " where it is mounted in every pod), and either one headless Service + one "
          "batch/v1 Job per task with its TF_CONFIG (default), or a Kubeflow TFJob "
          "(--tfjob; the operator injects TF_CONFIG into the container `tensorflow`). Task "
          "addresses are TFJob's: <name>-<type>-<i>.<namespace>.svc:2222. Every task restarts "
          "OnFailure (a killed worker or ps rejoins; a lost chief restarts the others, and the "
          "new chief resumes from the last checkpoint). Prints the YAML on stdout "
          "(`| kubectl apply -f -`), or with --out_dir writes a kustomize tree: base/ (job.json, "
          "PVC) and overlays/plain, overlays/tfjob (`kubectl apply -k DIR/overlays/tfjob`)."));
  flags.Int("workers", &o.workers, "Workers besides the chief.");
  flags.Int("ps", &o.ps, "Parameter-server tasks.");
  flags.Bool("evaluator", &o.evaluator, "Add an evaluator task.");
  flags.Bool("tfjob", &tfjob, "Render a kubeflow.org/v1 TFJob instead of Services + Jobs.");
  flags.String("name", &o.name, "Job name: prefix of every object and task address.");
  flags.String("namespace", &o.namespace_, "Namespace (it is part of every task address).");
  flags.String("image", &o.image, "Container image (deploy/build_image.sh builds it).");
  flags.String("image_pull_policy", &o.image_pull_policy, "IfNotPresent, Always or Never.");
  flags.Int("port", &o.port, "Task port.");
  flags.String("storage", &o.storage, "Size of the model_dir PVC.");
  flags.String("storage_class", &o.storage_class,
               "StorageClass of the model_dir PVC; it must offer ReadWriteMany (NFS, CephFS, a "
               "CSI file store). Empty: the cluster's default.");
  flags.String("cpu", &o.cpu, "CPU request per task.");
  flags.String("memory", &o.memory, "Memory request and limit per task.");
  flags.String("data_host_path", &o.data_host_path,
               "A node directory mounted read-only at the same path in every pod (input data "
               "on single-node clusters and podman); else keep inputs on the shared volume.");
  flags.Int("termination_grace_secs", &o.termination_grace_secs,
            "Seconds between SIGTERM and SIGKILL (time for the chief's last checkpoint).");
  flags.Int("backoff_limit", &o.backoff_limit, "Restarts before Kubernetes fails the job.");
  flags.String("security_secret", &o.security_secret,
               "Mount this Secret (`estuary certs --k8s_secret NAME`: CA, task certificates, "
               "token) at /etc/estuary-security in every pod and set the job file's security "
               "block to it (mutual TLS + job token); the probes then use the metrics port.");
  flags.Int("metrics_port", &o.metrics_port,
            "With --security_secret: every task's plain-HTTP Prometheus metrics port, which "
            "the readiness/liveness probes use (kubelet's gRPC probe has no client "
            "certificate).");
  flags.String("out_dir", &out_dir, "Write a kustomize tree here instead of printing YAML.");
  absl::Status st = flags.Parse(argc, argv, 2);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  if (st.ok() && flags.positional().size() != 1) {
    st = absl::InvalidArgumentError("expected exactly one job file");
  }
  if (!st.ok()) return Fail(kExitBadInput, absl::StrCat(st.message(), " (see --help)"));

  const io::Env& env = io::Env::Default();
  const std::string job_path = flags.positional()[0];
  absl::StatusOr<std::string> text = io::ReadWholeFile(env, job_path);
  if (!text.ok()) return Fail(kExitBadInput, text.status().message());
  absl::StatusOr<K8sManifests> m = RenderK8sManifests(*text, job_path, o);
  if (!m.ok()) return Fail(kExitBadInput, m.status().message());

  if (out_dir.empty()) {
    const std::string& tasks = tfjob ? m->tfjob_yaml : m->plain_yaml;
    std::printf("%s---\n%s---\n%s", m->configmap_yaml.c_str(), m->pvc_yaml.c_str(),
                tasks.c_str());
    return kExitOk;
  }
  for (const auto& [relative, contents] : m->kustomize_files) {
    const std::string path = io::JoinPath(out_dir, relative);
    absl::Status w = env.MakeDirs(io::DirName(path));
    if (w.ok()) w = io::WriteFileDurably(env, path, contents);
    if (!w.ok()) return Fail(kExitFailure, w.message());
  }
  std::printf("wrote %s/base and %s/overlays/{plain,tfjob}: kubectl apply -k %s/overlays/%s\n",
              out_dir.c_str(), out_dir.c_str(), out_dir.c_str(), tfjob ? "tfjob" : "plain");
  return kExitOk;
}

}  // namespace estuary
