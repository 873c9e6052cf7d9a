// Security between the tasks of a job, on the gRPC side: mutual TLS with
// the job's CA and a shared job token in every call's metadata. Everything
// that makes a channel or a server goes through common/rpc.h
// (CreateChannel, ConfigureServerBuilder), which uses this file; nothing
// else calls grpc::InsecureChannelCredentials / InsecureServerCredentials.
//
//  - TLS: servers present their task certificate and require one from
//    every client, verified against the job's CA
//    (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY); clients
//    verify the server's certificate against the same CA and the host name
//    they dial (the certificate's SANs must name it: `estuary certs` puts
//    the task's TF_CONFIG host, localhost, 127.0.0.1 and ::1 there).
//  - Identity: a task certificate names its task (task_identity.h, a URI
//    SAN). Calls that claim a task (register, heartbeat, barrier,
//    disconnect) must come with that task's certificate
//    (CheckCallerIsTask); calls that change the job (key-value writes,
//    shutdown, every PS call) need a task certificate, so the tools' client
//    certificate (no task) may make read-only calls only
//    (CheckCallerIsATask). Both answer PermissionDenied; the server goes on.
//  - Token: a client interceptor adds "estuary-job-token: <token>" to every
//    call; the server's interceptor compares it in constant time with its
//    own and, on a mismatch, logs the refusal (method, peer, why) and marks
//    the call; each service handler then answers Unauthenticated through
//    CheckCallAuthenticated (gRPC 1.51's sync server runs a handler even
//    when an interceptor objects, so the handler is where the call stops).
//
// Without TLS the token crosses the network in clear text: it keeps out
// strays and misconfigured jobs, not an eavesdropper. Use both on a shared
// network.
#ifndef ESTUARY_COMMON_TRANSPORT_SECURITY_H_
#define ESTUARY_COMMON_TRANSPORT_SECURITY_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/client_interceptor.h"
#include "grpcpp/support/server_interceptor.h"

namespace estuary {

// The loaded security material of one task (common/security.h loads it from
// the job file's `security` block). Empty fields mean "off".
struct TransportSecurity {
  std::string ca_pem;    // the job's CA certificate; non-empty: mutual TLS
  std::string cert_pem;  // this task's certificate (chain), signed by the CA
  std::string key_pem;   // its private key
  std::string token;     // the shared job token; non-empty: checked on every call
  // For messages: where the material came from ("job.json $.security"),
  // and the task it belongs to ("worker:0").
  std::string source;
  std::string task;

  bool tls() const { return !ca_pem.empty(); }
  bool has_token() const { return !token.empty(); }
  // Either of the two (the PS data plane is only used when neither is on).
  bool any() const { return tls() || has_token(); }
};
using SecurityPtr = std::shared_ptr<const TransportSecurity>;

// The metadata key that carries the job token.
inline constexpr char kJobTokenMetadata[] = "estuary-job-token";

// Insecure credentials without TLS, else SSL credentials with the CA as
// root and this task's key and certificate as the client identity.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const SecurityPtr& security);
// Insecure credentials without TLS, else SSL credentials that require and
// verify a client certificate of the job's CA.
std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFor(const SecurityPtr& security);

// SSL server credentials presenting `cert_pem` / `key_pem`; with
// `require_client_cert`, clients must present a certificate that chains to
// `ca_pem` (mutual TLS), else none is asked for. The job's servers
// (ServerCredentialsFor) and the model server's --ssl_config_file use it.
std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(const std::string& key_pem,
                                                              const std::string& cert_pem,
                                                              const std::string& ca_pem,
                                                              bool require_client_cert);

// The interceptor factories a channel / server needs for the token (empty
// when there is no token; the server's factory is always installed so
// that a client's forged verdict header is stripped).
std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
ClientInterceptorsFor(const SecurityPtr& security);
std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
ServerInterceptorsFor(const SecurityPtr& security);

// At the top of every coordination / PS / task handler: OK, or
// Unauthenticated "refused by <server>: missing job token ..." / "wrong
// job token ..." when the server's interceptor refused the call. A server
// not built through ConfigureServerBuilder has no interceptor and checks
// nothing.
grpc::Status CheckCallAuthenticated(const grpc::ServerContext* ctx);

// The task the caller's certificate names ("worker:0"): nullopt when the
// call did not come over TLS with a client certificate (nothing to bind),
// "" for a certificate that names no task (the tools' client certificate),
// an error for one whose identity is malformed.
std::optional<absl::StatusOr<std::string>> CallerTaskIdentity(const grpc::ServerContext* ctx);

// After CheckCallAuthenticated in handlers whose request claims a task:
// OK without mutual TLS or when the caller's certificate names `claimed`
// ("chief:0"); else PermissionDenied "<method>: the caller's certificate
// is for task worker:0, not chief:0 (the task the call claims to be)",
// also logged with the peer.
grpc::Status CheckCallerIsTask(const grpc::ServerContext* ctx, absl::string_view method,
                               absl::string_view claimed);
// In handlers that change the job: OK without mutual TLS or with a task
// certificate; PermissionDenied for a certificate that names no task.
grpc::Status CheckCallerIsATask(const grpc::ServerContext* ctx, absl::string_view method);

// The verdict of a token check, for the interceptor and its unit test:
// empty when `sent` (nullptr: no token sent) is acceptable, else why not.
std::string TokenVerdict(absl::string_view expected, const std::string* sent);

// Whether "host:port" (or a bare host) is a loopback address: localhost,
// 127.0.0.0/8, ::1. Wildcards ("0.0.0.0", "[::]") and other names are not.
bool IsLoopbackAddress(absl::string_view address);

// Logs the loud start-up warning when `listen_address` is not loopback and
// `security` has neither TLS nor a token. `what` names the listener ("gRPC
// server", "ring data plane"). Returns whether it warned.
bool WarnIfInsecure(absl::string_view what, absl::string_view listen_address,
                    const SecurityPtr& security);

}  // namespace estuary

#endif  // ESTUARY_COMMON_TRANSPORT_SECURITY_H_
