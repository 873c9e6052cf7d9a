// Which task a certificate belongs to. `estuary certs` (cert_gen.h) puts a
// URI subjectAltName "estuary://task/<type>/<index>" into every task
// certificate (beside the host names TLS verifies); the servers read it
// from the peer's certificate (transport_security.h, CheckCallerIsTask) so
// that a task holding worker:0's certificate cannot register, heartbeat or
// enter a barrier as chief:0. The tools' client certificate carries no
// task identity: it may make read-only calls only.
#ifndef ESTUARY_COMMON_TASK_IDENTITY_H_
#define ESTUARY_COMMON_TASK_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace estuary {

// "estuary://task/worker/0".
std::string TaskIdentityUri(absl::string_view type, int index);

// The task a PEM certificate names by its URI SAN, as "type:index"
// ("worker:0"); "" when it names none. InvalidArgument when the PEM does
// not parse, or it names two different tasks or a malformed one.
absl::StatusOr<std::string> CertificateTaskIdentity(absl::string_view pem);

}  // namespace estuary

#endif  // ESTUARY_COMMON_TASK_IDENTITY_H_
