// `estuary k8s JOB.json --workers N --ps M [--evaluator] [--tfjob]`: the
// Kubernetes manifests for a job and a cluster shape (cli/k8s_manifests.h).
#ifndef ESTUARY_CLI_K8S_COMMAND_H_
#define ESTUARY_CLI_K8S_COMMAND_H_

namespace estuary {

// argv[1] is the verb. Prints the manifests (YAML documents) on stdout, or
// with --out_dir writes a kustomize tree there. Exit codes: 0 ok, 1 a file
// could not be written, 2 bad input (flags, job file).
int K8sCommand(int argc, char** argv);

}  // namespace estuary

#endif  // ESTUARY_CLI_K8S_COMMAND_H_
