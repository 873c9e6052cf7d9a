#include "common/security.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/task_identity.h"

namespace estuary {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* s) const { X509_STORE_CTX_free(s); }
};

std::unique_ptr<BIO, BioFree> MemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::unique_ptr<X509, X509Free> ParseCert(const std::string& pem) {
  auto bio = MemBio(pem);
  return std::unique_ptr<X509, X509Free>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

class Loader {
 public:
  Loader(const TaskId& task, const io::Env& env) : task_(task), env_(env) {}

  absl::StatusOr<std::string> Read(const char* field, const std::string& path) const {
    absl::StatusOr<std::string> text = io::ReadWholeFile(env_, path);
    if (!text.ok()) {
      return absl::Status(text.status().code(),
                          absl::StrCat(Where(field), ": cannot read ", path, " (for task ",
                                       task_.ToString(), "): ", text.status().message()));
    }
    return text;
  }

  absl::Status Invalid(const char* field, const std::string& path, absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(field), ": ", path, " (for task ", task_.ToString(), ") ", why));
  }

  std::string Where(const char* field) const { return absl::StrCat("security.", field); }

 private:
  const TaskId& task_;
  const io::Env& env_;
};

}  // namespace

absl::Status CheckPemMaterial(const std::string& cert_pem, const std::string& key_pem,
                              const std::string& ca_pem) {
  if (!ca_pem.empty() && ParseCert(ca_pem) == nullptr) {
    return absl::InvalidArgumentError("ca: is not a PEM certificate");
  }
  std::unique_ptr<X509, X509Free> cert = ParseCert(cert_pem);
  if (cert == nullptr) return absl::InvalidArgumentError("cert: is not a PEM certificate");
  auto key_bio = MemBio(key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError("key: is not a PEM private key");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError("key: does not belong to the certificate");
  }
  return absl::OkStatus();
}

std::string TaskFileStem(const TaskId& task) { return absl::StrCat(task.type, "-", task.index); }

std::string ExpandTaskPath(const std::string& path, const TaskId& task,
                           const std::string& extension) {
  if (!path.empty() && path.back() == '/') return absl::StrCat(path, TaskFileStem(task), extension);
  return absl::StrReplaceAll(path, {{"{task}", TaskFileStem(task)},
                                    {"{type}", task.type},
                                    {"{index}", absl::StrCat(task.index)}});
}

absl::StatusOr<SecurityPtr> LoadTaskSecurity(const SecurityConfig& config, const TaskId& task,
                                             const io::Env& env) {
  if (!config.enabled()) return SecurityPtr();
  Loader loader(task, env);
  auto s = std::make_shared<TransportSecurity>();
  s->task = task.ToString();
  if (!config.token_file.empty()) {
    ASSIGN_OR_RETURN(std::string token, loader.Read("token_file", config.token_file));
    s->token = std::string(absl::StripAsciiWhitespace(token));
    if (s->token.empty()) return loader.Invalid("token_file", config.token_file, "is empty");
    if (s->token.size() < 16) {
      spdlog::warn("security.token_file {}: the job token has only {} characters; use at least "
                   "16 random ones (`estuary certs` writes 64)",
                   config.token_file, s->token.size());
    }
  }
  if (!config.tls()) return SecurityPtr(std::move(s));

  const std::string cert_path = ExpandTaskPath(config.cert, task, ".crt");
  const std::string key_path = ExpandTaskPath(config.key, task, ".key");
  ASSIGN_OR_RETURN(s->ca_pem, loader.Read("ca", config.ca));
  ASSIGN_OR_RETURN(s->cert_pem, loader.Read("cert", cert_path));
  ASSIGN_OR_RETURN(s->key_pem, loader.Read("key", key_path));

  if (absl::Status pem = CheckPemMaterial(s->cert_pem, s->key_pem, s->ca_pem); !pem.ok()) {
    const absl::string_view m = pem.message();
    if (absl::StartsWith(m, "ca: ")) return loader.Invalid("ca", config.ca, m.substr(4));
    if (absl::StartsWith(m, "cert: ")) return loader.Invalid("cert", cert_path, m.substr(6));
    return loader.Invalid("key", key_path, absl::StrCat(m.substr(5), " ", cert_path));
  }
  std::unique_ptr<X509, X509Free> ca = ParseCert(s->ca_pem);
  std::unique_ptr<X509, X509Free> cert = ParseCert(s->cert_pem);
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    return loader.Invalid(
        "cert", cert_path,
        absl::StrCat("is not a valid certificate of the job's CA ", config.ca, ": ",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()))));
  }
  // The certificate must name this task: the servers bind a call's
  // claimed task to it (transport_security.h CheckCallerIsTask).
  absl::StatusOr<std::string> identity = CertificateTaskIdentity(s->cert_pem);
  if (!identity.ok()) return loader.Invalid("cert", cert_path, identity.status().message());
  if (task.type != kToolsClientType && *identity != task.ToString()) {
    return loader.Invalid(
        "cert", cert_path,
        identity->empty()
            ? absl::StrCat("names no task (a URI SAN ", TaskIdentityUri(task.type, task.index),
                           " is needed: the servers refuse a task whose certificate is not "
                           "its own; `estuary certs` writes it)")
            : absl::StrCat("is the certificate of task ", *identity));
  }
  s->source = absl::StrCat("security {ca: ", config.ca, ", cert: ", cert_path, "}");
  return SecurityPtr(std::move(s));
}

}  // namespace estuary
