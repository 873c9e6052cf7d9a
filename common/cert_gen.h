// Certificates for a job's mutual TLS, made with OpenSSL's EVP / X509 API:
// a CA, and task certificates it signs (EC P-256 keys, SHA-256
// signatures, X.509 v3 with the SANs the tasks are dialed by). For local
// runs, tests and `estuary certs`; a production job may bring its own PKI.
#ifndef ESTUARY_COMMON_CERT_GEN_H_
#define ESTUARY_COMMON_CERT_GEN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace estuary {

struct PemPair {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (PKCS#8, unencrypted)
};

// A self-signed CA (basicConstraints CA:TRUE, keyCertSign). Internal if
// OpenSSL fails.
absl::StatusOr<PemPair> MakeCertificateAuthority(const std::string& common_name,
                                                 absl::Duration validity);

// A certificate signed by `ca` for both TLS server and client use, with
// `hosts` as subjectAltNames (IP literals as IP entries, others as DNS) and,
// when `task_uri` is given (task_identity.h TaskIdentityUri), that URI as
// one more: the task the certificate belongs to. InvalidArgument if `ca`
// does not parse or `hosts` is empty; Internal if OpenSSL fails.
absl::StatusOr<PemPair> MakeSignedCertificate(const PemPair& ca, const std::string& common_name,
                                              const std::vector<std::string>& hosts,
                                              absl::Duration validity,
                                              const std::string& task_uri = "");

}  // namespace estuary

#endif  // ESTUARY_COMMON_CERT_GEN_H_
