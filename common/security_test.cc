// The job token check and mutual TLS on real gRPC servers and channels made
// the one way (rpc.h), the per-task loader of the job file's `security`
// block, and the certificates cert_gen.h makes.
#include "common/security.h"

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/cert_gen.h"
#include "common/job_config.h"
#include "common/json_schema.h"
#include "common/rpc.h"
#include "common/task_identity.h"
#include "common/transport_security.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.grpc.pb.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "0123456789abcdef-the-job-token";

// A task service whose handler checks the call like every real one.
class EchoTask final : public task::TaskService::Service {
 public:
  grpc::Status GetTaskStatus(grpc::ServerContext* ctx, const task::GetTaskStatusRequest*,
                             task::TaskStatus* resp) override {
    if (grpc::Status auth = CheckCallAuthenticated(ctx); !auth.ok()) return auth;
    resp->set_type("worker");
    ++served;
    return grpc::Status::OK;
  }
  std::atomic<int> served{0};
};

class Server {
 public:
  explicit Server(SecurityPtr security) {
    grpc::ServerBuilder b;
    ServerOptions o;
    o.security = std::move(security);
    ConfigureServerBuilder(&b, o, &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    EXPECT_NE(port_, 0);
  }
  ~Server() { server_->Shutdown(); }
  std::string Address(const std::string& host = "127.0.0.1") const {
    return absl::StrCat(host, ":", port_);
  }
  EchoTask& service() { return service_; }

 private:
  EchoTask service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

absl::Status Call(const std::string& address, SecurityPtr security) {
  ChannelOptions o;
  o.security = std::move(security);
  auto stub = task::TaskService::NewStub(CreateChannel(address, o));
  task::GetTaskStatusRequest req;
  task::TaskStatus resp;
  CallOptions call;
  call.deadline = absl::Now() + absl::Seconds(20);
  call.what = absl::StrCat("GetTaskStatus to ", address);
  return CallUnary(stub.get(), &task::TaskService::Stub::GetTaskStatus, req, &resp, call);
}

SecurityPtr TokenOnly(std::string token) {
  auto s = std::make_shared<TransportSecurity>();
  s->token = std::move(token);
  s->task = "worker:0";
  return s;
}

TEST(TokenVerdict, AcceptsOnlyTheJobsToken) {
  const std::string right = kToken, wrong = "guess", empty;
  EXPECT_EQ(TokenVerdict("", nullptr), "");
  EXPECT_EQ(TokenVerdict(kToken, &right), "");
  EXPECT_THAT(TokenVerdict(kToken, nullptr), HasSubstr("missing job token"));
  EXPECT_THAT(TokenVerdict(kToken, &wrong), HasSubstr("wrong job token"));
  EXPECT_THAT(TokenVerdict(kToken, &empty), HasSubstr("wrong job token"));
}

TEST(IsLoopbackAddress, KnowsLoopbackFromTheRest) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:0"));
  EXPECT_TRUE(IsLoopbackAddress("127.3.4.5:80"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:2222"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:2222"));
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:2222"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:2222"));
  EXPECT_FALSE(IsLoopbackAddress("10.1.2.3:2222"));
  EXPECT_FALSE(IsLoopbackAddress("worker-0.job:2222"));
}

TEST(JobToken, WrongOrMissingTokenIsUnauthenticatedAndTheServerGoesOn) {
  Server server(TokenOnly(kToken));
  EXPECT_TRUE(Call(server.Address(), TokenOnly(kToken)).ok());

  absl::Status wrong = Call(server.Address(), TokenOnly("a-guessed-token"));
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated) << wrong;
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("refused by worker:0: wrong job token"));

  absl::Status missing = Call(server.Address(), nullptr);
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr("missing job token"));

  EXPECT_TRUE(Call(server.Address(), TokenOnly(kToken)).ok());
  EXPECT_EQ(server.service().served, 2);
}

TEST(JobToken, AClientCannotForgeTheServersVerdict) {
  // Metadata a client sends under the verdict key is dropped by the
  // server's interceptor: a server without a token accepts the call.
  Server server(nullptr);
  EXPECT_TRUE(Call(server.Address(), TokenOnly("anything")).ok());
}

struct Pki {
  PemPair ca, server, client, tools, other_ca, stranger;
};

const Pki& TestPki() {
  static const Pki* pki = [] {
    auto* p = new Pki;
    const absl::Duration day = absl::Hours(24);
    p->ca = *MakeCertificateAuthority("test CA", day);
    p->server = *MakeSignedCertificate(p->ca, "ps:0", {"localhost", "127.0.0.1"}, day,
                                       TaskIdentityUri("ps", 0));
    p->client = *MakeSignedCertificate(p->ca, "worker:1", {"localhost"}, day,
                                       TaskIdentityUri("worker", 1));
    p->tools = *MakeSignedCertificate(p->ca, "client", {"localhost"}, day);
    p->other_ca = *MakeCertificateAuthority("another CA", day);
    p->stranger = *MakeSignedCertificate(p->other_ca, "worker:9", {"localhost"}, day,
                                         TaskIdentityUri("worker", 9));
    return p;
  }();
  return *pki;
}

SecurityPtr Tls(const PemPair& own, const PemPair& ca, std::string token = kToken) {
  auto s = std::make_shared<TransportSecurity>();
  s->ca_pem = ca.cert;
  s->cert_pem = own.cert;
  s->key_pem = own.key;
  s->token = std::move(token);
  s->task = "ps:0";
  return s;
}

TEST(MutualTls, OnlyCertificatesOfTheJobsCaGetIn) {
  const Pki& pki = TestPki();
  Server server(Tls(pki.server, pki.ca));
  // Dialed by IP and by name: both are SANs of the server's certificate.
  EXPECT_TRUE(Call(server.Address("127.0.0.1"), Tls(pki.client, pki.ca)).ok());
  EXPECT_TRUE(Call(server.Address("localhost"), Tls(pki.client, pki.ca)).ok());

  // A certificate of another CA: the handshake fails (the server refuses
  // the client's certificate, the client the server's).
  absl::Status stranger = Call(server.Address(), Tls(pki.stranger, pki.other_ca));
  EXPECT_EQ(stranger.code(), absl::StatusCode::kUnavailable) << stranger;
  // No TLS at all.
  absl::Status plain = Call(server.Address(), TokenOnly(kToken));
  EXPECT_EQ(plain.code(), absl::StatusCode::kUnavailable) << plain;
  // The right certificate with a wrong token.
  absl::Status token = Call(server.Address(), Tls(pki.client, pki.ca, "wrong"));
  EXPECT_EQ(token.code(), absl::StatusCode::kUnauthenticated) << token;

  EXPECT_TRUE(Call(server.Address(), Tls(pki.client, pki.ca)).ok());
  EXPECT_EQ(server.service().served, 3);
}

TEST(TaskIdentity, TaskCertificatesNameTheirTaskAndToolsCertificatesNone) {
  const Pki& pki = TestPki();
  EXPECT_EQ(TaskIdentityUri("worker", 3), "estuary://task/worker/3");
  EXPECT_EQ(*CertificateTaskIdentity(pki.server.cert), "ps:0");
  EXPECT_EQ(*CertificateTaskIdentity(pki.client.cert), "worker:1");
  EXPECT_EQ(*CertificateTaskIdentity(pki.tools.cert), "");
  EXPECT_EQ(CertificateTaskIdentity("not pem").status().code(),
            absl::StatusCode::kInvalidArgument);
  const PemPair odd = *MakeSignedCertificate(pki.ca, "x", {"localhost"}, absl::Hours(1),
                                             "estuary://task/worker/zero");
  EXPECT_THAT(std::string(CertificateTaskIdentity(odd.cert).status().message()),
              HasSubstr("is not estuary://task/<type>/<index>"));
}

// --- the job file's block and its per-task loading ---

std::string TempDir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(SecurityConfig, ParsesRelativePathsAndNeedsAllTlsFields) {
  auto parse = [](const char* text) {
    return ParseSecurityConfig(nlohmann::json::parse(text), JsonPath{"job.json"}.Key("security"),
                               "/jobs");
  };
  absl::StatusOr<SecurityConfig> c = parse(
      R"({"ca": "certs/ca.crt", "cert": "certs/", "key": "/abs/{task}.key", "token_file": "t"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca, "/jobs/certs/ca.crt");
  EXPECT_EQ(c->cert, "/jobs/certs/");
  EXPECT_EQ(c->key, "/abs/{task}.key");
  EXPECT_EQ(c->token_file, "/jobs/t");
  absl::StatusOr<SecurityConfig> partial = parse(R"({"ca": "ca.crt", "cert": "x.crt"})");
  EXPECT_THAT(std::string(partial.status().message()), HasSubstr("$.security.key"));
  absl::StatusOr<SecurityConfig> typo = parse(R"({"token": "x"})");
  EXPECT_THAT(std::string(typo.status().message()), HasSubstr("token_file"));
}

TEST(LoadTaskSecurity, ExpandsTheTaskAndChecksTheFiles) {
  const Pki& pki = TestPki();
  const std::string dir = TempDir();
  Write(dir + "/ca.crt", pki.ca.cert);
  Write(dir + "/worker-1.crt", pki.client.cert);
  Write(dir + "/worker-1.key", pki.client.key);
  Write(dir + "/stranger.crt", pki.stranger.cert);
  Write(dir + "/stranger.key", pki.stranger.key);
  Write(dir + "/token", std::string(kToken) + "\n");
  SecurityConfig c;
  c.ca = dir + "/ca.crt";
  c.cert = dir + "/";
  c.key = dir + "/{type}-{index}.key";
  c.token_file = dir + "/token";
  absl::StatusOr<SecurityPtr> s = LoadTaskSecurity(c, TaskId{"worker", 1});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE((*s)->tls());
  EXPECT_EQ((*s)->token, kToken);
  EXPECT_EQ((*s)->cert_pem, pki.client.cert);

  absl::StatusOr<SecurityPtr> absent = LoadTaskSecurity(c, TaskId{"ps", 3});
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound) << absent.status();
  EXPECT_THAT(std::string(absent.status().message()), HasSubstr("ps-3.crt (for task ps:3)"));

  SecurityConfig foreign = c;
  foreign.cert = dir + "/stranger.crt";
  foreign.key = dir + "/stranger.key";
  absl::StatusOr<SecurityPtr> bad = LoadTaskSecurity(foreign, TaskId{"worker", 1});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("not a valid certificate of the job's CA"));

  // A certificate of the job's CA, but another task's or none.
  Write(dir + "/worker-2.crt", pki.client.cert);
  Write(dir + "/worker-2.key", pki.client.key);
  absl::StatusOr<SecurityPtr> other = LoadTaskSecurity(c, TaskId{"worker", 2});
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument) << other.status();
  EXPECT_THAT(std::string(other.status().message()),
              HasSubstr("worker-2.crt (for task worker:2) is the certificate of task worker:1"));
  Write(dir + "/worker-3.crt", pki.tools.cert);
  Write(dir + "/worker-3.key", pki.tools.key);
  absl::StatusOr<SecurityPtr> none = LoadTaskSecurity(c, TaskId{"worker", 3});
  EXPECT_THAT(std::string(none.status().message()),
              HasSubstr("names no task (a URI SAN estuary://task/worker/3 is needed"));
  // The tools' client may use any certificate of the CA.
  Write(dir + "/client-0.crt", pki.tools.cert);
  Write(dir + "/client-0.key", pki.tools.key);
  EXPECT_TRUE(LoadTaskSecurity(c, TaskId{kToolsClientType, 0}).ok());

  SecurityConfig mismatch = c;
  mismatch.key = dir + "/stranger.key";
  absl::StatusOr<SecurityPtr> mixed = LoadTaskSecurity(mismatch, TaskId{"worker", 1});
  EXPECT_THAT(std::string(mixed.status().message()), HasSubstr("does not belong to the certificate"));

  Write(dir + "/empty", "\n");
  SecurityConfig empty;
  empty.token_file = dir + "/empty";
  EXPECT_THAT(std::string(LoadTaskSecurity(empty, TaskId{"worker", 0}).status().message()),
              HasSubstr("is empty"));
  EXPECT_EQ(*LoadTaskSecurity(SecurityConfig{}, TaskId{"worker", 0}), nullptr);
}

}  // namespace
}  // namespace estuary
