// `estuary certs --out DIR (--tf_config JSON | --tasks chief:1,worker:2,...)
// [--hosts h1,h2] [--days N] [--k8s_secret NAME]`: the security material of
// a job for local runs and Kubernetes (common/cert_gen.h, common/security.h):
//
//   DIR/ca.crt, ca.key            the job's CA (reused when already there)
//   DIR/<type>-<index>.crt, .key  one certificate per task, SANs: the task's
//                                 TF_CONFIG host, --hosts, localhost,
//                                 127.0.0.1, ::1
//   DIR/client.crt, client.key    for tools and tests outside the cluster
//   DIR/token                     the job token (64 hex digits; reused)
//   DIR/security.json             the job file's "security" block for DIR
//   DIR/k8s-secret.yaml           a Kubernetes Secret with all of it but
//                                 ca.key, and the "security" block for the
//                                 Secret mounted at /etc/estuary-security
//
// Keys and the token are written mode 0600.
#ifndef ESTUARY_CLI_CERTS_COMMAND_H_
#define ESTUARY_CLI_CERTS_COMMAND_H_

namespace estuary {

// argv[1] is the verb. Exit codes: 0 ok, 1 failed (I/O, OpenSSL), 2 bad
// flags or TF_CONFIG.
int CertsCommand(int argc, char** argv);

}  // namespace estuary

#endif  // ESTUARY_CLI_CERTS_COMMAND_H_
