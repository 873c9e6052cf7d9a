// Loads the job file's `security` block (job_config.h SecurityConfig) for
// one task: reads the CA, the task's certificate and key (expanding the
// {task} / {type} / {index} templates) and the token file, and checks them
// before anything listens, so that a wrong file is a one-line error at
// start-up naming the field, the path and the task, not a TLS handshake
// failure later.
#ifndef ESTUARY_COMMON_SECURITY_H_
#define ESTUARY_COMMON_SECURITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/cluster.h"
#include "common/io/env.h"
#include "common/job_config.h"
#include "common/transport_security.h"

namespace estuary {

// "<type>-<index>": the {task} of path templates and the file names
// `estuary certs` writes ("worker-0").
std::string TaskFileStem(const TaskId& task);

// `path` with {task}, {type} and {index} replaced for `task`; a path that
// ends in "/" becomes "<path><task><extension>".
std::string ExpandTaskPath(const std::string& path, const TaskId& task,
                           const std::string& extension);

// Checks PEM material before a TLS server or channel uses it: `cert_pem` is
// a certificate, `key_pem` a private key that belongs to it, `ca_pem` (when
// non-empty) a certificate. OK, or InvalidArgument whose message starts
// with the field at fault, "cert: ", "key: " or "ca: ", then why.
absl::Status CheckPemMaterial(const std::string& cert_pem, const std::string& key_pem,
                              const std::string& ca_pem);

// The task type of the tools' client (`estuary status`): its certificate
// may name any task or none (the servers then allow it read-only calls).
inline constexpr char kToolsClientType[] = "client";

// The material for `task`; null when the config enables nothing. Errors:
// NotFound / PermissionDenied (a file cannot be read; the message names the
// field, the path and the task); InvalidArgument (not PEM, a key that does
// not match the certificate, a certificate not signed by the CA or expired,
// a certificate that does not name `task` (task_identity.h), an empty
// token file).
absl::StatusOr<SecurityPtr> LoadTaskSecurity(const SecurityConfig& config, const TaskId& task,
                                             const io::Env& env = io::Env::Default());

}  // namespace estuary

#endif  // ESTUARY_COMMON_SECURITY_H_
