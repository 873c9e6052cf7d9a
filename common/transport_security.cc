#include "common/transport_security.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/logging.h"
#include "common/task_identity.h"
#include "grpc/grpc_security_constants.h"

namespace estuary {
namespace {

// Set by the server's interceptor on a refused call (the value says why);
// a client's own entry under this key is always removed first.
constexpr char kRefusedMetadata[] = "estuary-auth-refused";

class TokenClientInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenClientInterceptor(const std::string* token) : token_(token) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({kJobTokenMetadata, *token_});
    }
    methods->Proceed();
  }

 private:
  const std::string* const token_;  // owned by the factory's TransportSecurity
};

class TokenClientFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenClientFactory(SecurityPtr security) : security_(std::move(security)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenClientInterceptor(&security_->token);
  }

 private:
  const SecurityPtr security_;
};

class TokenServerInterceptor final : public grpc::experimental::Interceptor {
 public:
  TokenServerInterceptor(const TransportSecurity* security, grpc::experimental::ServerRpcInfo* info)
      : security_(security), info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      std::multimap<grpc::string_ref, grpc::string_ref>* md = methods->GetRecvInitialMetadata();
      md->erase(kRefusedMetadata);
      if (security_ != nullptr && security_->has_token()) {
        std::string sent;
        const auto it = md->find(kJobTokenMetadata);
        if (it != md->end()) sent.assign(it->second.data(), it->second.size());
        verdict_ = TokenVerdict(security_->token, it == md->end() ? nullptr : &sent);
        if (!verdict_.empty()) {
          verdict_ = absl::StrCat("refused by ", security_->task.empty() ? "the server" : security_->task,
                                  ": ", verdict_);
          spdlog::warn("refused {} from {}: {}", info_->method(), info_->server_context()->peer(),
                       verdict_);
          md->insert({kRefusedMetadata, verdict_});
        }
      }
    }
    methods->Proceed();
  }

 private:
  const TransportSecurity* const security_;
  grpc::experimental::ServerRpcInfo* const info_;
  std::string verdict_;  // outlives the call's metadata map
};

class TokenServerFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit TokenServerFactory(SecurityPtr security) : security_(std::move(security)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new TokenServerInterceptor(security_.get(), info);
  }

 private:
  const SecurityPtr security_;
};

}  // namespace

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const SecurityPtr& security) {
  if (security == nullptr || !security->tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = security->ca_pem;
  o.pem_private_key = security->key_pem;
  o.pem_cert_chain = security->cert_pem;
  return grpc::SslCredentials(o);
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentialsFor(const SecurityPtr& security) {
  if (security == nullptr || !security->tls()) return grpc::InsecureServerCredentials();
  return TlsServerCredentials(security->key_pem, security->cert_pem, security->ca_pem,
                              /*require_client_cert=*/true);
}

std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(const std::string& key_pem,
                                                              const std::string& cert_pem,
                                                              const std::string& ca_pem,
                                                              bool require_client_cert) {
  grpc::SslServerCredentialsOptions o(
      require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                          : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  o.pem_root_certs = ca_pem;
  o.pem_key_cert_pairs.push_back({key_pem, cert_pem});
  return grpc::SslServerCredentials(o);
}

std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
ClientInterceptorsFor(const SecurityPtr& security) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> out;
  if (security != nullptr && security->has_token()) {
    out.push_back(std::make_unique<TokenClientFactory>(security));
  }
  return out;
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
ServerInterceptorsFor(const SecurityPtr& security) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<TokenServerFactory>(security));
  return out;
}

grpc::Status CheckCallAuthenticated(const grpc::ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  const auto it = md.find(kRefusedMetadata);
  if (it == md.end()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      std::string(it->second.data(), it->second.size()));
}

std::optional<absl::StatusOr<std::string>> CallerTaskIdentity(const grpc::ServerContext* ctx) {
  const std::shared_ptr<const grpc::AuthContext> auth = ctx->auth_context();
  if (auth == nullptr) return std::nullopt;
  const std::vector<grpc::string_ref> pems =
      auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.empty()) return std::nullopt;
  const absl::string_view pem(pems.front().data(), pems.front().size());
  // A connection makes many calls with one certificate (a PS pull per
  // step): parse each handler thread's last certificate once.
  thread_local std::string last_pem;
  thread_local absl::StatusOr<std::string> last_identity;
  if (pem != last_pem) {
    last_identity = CertificateTaskIdentity(pem);
    last_pem.assign(pem.data(), pem.size());
  }
  return last_identity;
}

namespace {

grpc::Status Refuse(const grpc::ServerContext* ctx, absl::string_view method,
                    const std::string& why) {
  const std::string message = absl::StrCat(method, ": ", why);
  spdlog::warn("refused {} from {}: {}", method, ctx->peer(), why);
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, message);
}

}  // namespace

grpc::Status CheckCallerIsTask(const grpc::ServerContext* ctx, absl::string_view method,
                               absl::string_view claimed) {
  const std::optional<absl::StatusOr<std::string>> identity = CallerTaskIdentity(ctx);
  if (!identity.has_value()) return grpc::Status::OK;
  if (!identity->ok()) {
    return Refuse(ctx, method, absl::StrCat("the caller's certificate is unusable: ",
                                            identity->status().message()));
  }
  if (**identity == claimed) return grpc::Status::OK;
  const std::string holder = (*identity)->empty()
                                 ? std::string("no task (a tools' client certificate)")
                                 : absl::StrCat("task ", **identity);
  return Refuse(ctx, method,
                absl::StrCat("the caller's certificate is for ", holder, ", not ", claimed,
                             " (the task the call claims to be)"));
}

grpc::Status CheckCallerIsATask(const grpc::ServerContext* ctx, absl::string_view method) {
  const std::optional<absl::StatusOr<std::string>> identity = CallerTaskIdentity(ctx);
  if (!identity.has_value()) return grpc::Status::OK;
  if (!identity->ok()) {
    return Refuse(ctx, method, absl::StrCat("the caller's certificate is unusable: ",
                                            identity->status().message()));
  }
  if (!(*identity)->empty()) return grpc::Status::OK;
  return Refuse(ctx, method,
                "the caller's certificate names no task (a tools' client certificate may make "
                "read-only calls only)");
}

std::string TokenVerdict(absl::string_view expected, const std::string* sent) {
  if (expected.empty()) return "";
  if (sent == nullptr) {
    return "missing job token (this job requires one: set security.token_file in the job "
           "file to the job's token)";
  }
  if (!ConstantTimeEquals(*sent, expected)) {
    return "wrong job token (security.token_file holds a token other than this job's)";
  }
  return "";
}

bool IsLoopbackAddress(absl::string_view address) {
  std::string host(address);
  // Strip ":port" unless it is a bare IPv6 literal.
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  if (host == "localhost" || absl::EndsWith(host, ".localhost")) return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    static const in6_addr kLoopback = IN6ADDR_LOOPBACK_INIT;
    return std::memcmp(&v6, &kLoopback, sizeof(v6)) == 0;
  }
  return false;
}

bool WarnIfInsecure(absl::string_view what, absl::string_view listen_address,
                    const SecurityPtr& security) {
  if (IsLoopbackAddress(listen_address)) return false;
  const bool tls = security != nullptr && security->tls();
  const bool token = security != nullptr && security->has_token();
  if (tls) return false;  // mutual TLS: only certificates of the job's CA get in
  if (!token) {
    spdlog::warn(
        "SECURITY WARNING: the {} listens on {} (not loopback) with neither TLS nor a job "
        "token: anything that reaches this port can join the job, push gradients or shut it "
        "down. Set `security` {{ca, cert, key, token_file}} in the job file (`estuary certs` "
        "makes them).",
        what, listen_address);
  } else {
    spdlog::warn("SECURITY WARNING: the {} listens on {} (not loopback) with a job token but "
                 "no TLS: the token crosses the network in clear text. Set security.ca/cert/key "
                 "too.",
                 what, listen_address);
  }
  return true;
}

}  // namespace estuary
