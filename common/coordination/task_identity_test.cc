// Mutual TLS binds a coordination call's claimed task to the caller's
// certificate: over real TLS gRPC on a kernel-chosen port, a task holding
// worker:1's certificate cannot register, heartbeat, enter a barrier or
// disconnect as chief:0 (PermissionDenied naming both), the tools' client
// certificate may read but not write, and the coordinator goes on serving
// the legitimate tasks.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/cert_gen.h"
#include "common/coordination/coordination_client.h"
#include "common/coordination/coordination_service.h"
#include "common/coordination/grpc_service.h"
#include "common/rpc.h"
#include "common/status/live_status.h"
#include "common/task_identity.h"
#include "common/transport_security.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

const TaskId kChief0{"chief", 0};
const TaskId kWorker1{"worker", 1};

absl::Time In(absl::Duration d) { return absl::Now() + d; }

struct Pki {
  PemPair ca, chief, worker1, tools;
};

const Pki& TestPki() {
  static const Pki* pki = [] {
    auto* p = new Pki;
    const absl::Duration day = absl::Hours(24);
    const std::vector<std::string> hosts = {"localhost", "127.0.0.1"};
    p->ca = *MakeCertificateAuthority("test CA", day);
    p->chief = *MakeSignedCertificate(p->ca, "chief:0", hosts, day, TaskIdentityUri("chief", 0));
    p->worker1 =
        *MakeSignedCertificate(p->ca, "worker:1", hosts, day, TaskIdentityUri("worker", 1));
    p->tools = *MakeSignedCertificate(p->ca, "client", hosts, day);
    return p;
  }();
  return *pki;
}

SecurityPtr Tls(const PemPair& own, const std::string& task) {
  auto s = std::make_shared<TransportSecurity>();
  s->ca_pem = TestPki().ca.cert;
  s->cert_pem = own.cert;
  s->key_pem = own.key;
  s->task = task;
  return s;
}

class TaskIdentityTest : public testing::Test {
 protected:
  void SetUp() override {
    CoordinationServiceOptions o;
    o.cluster_tasks = {kChief0, kWorker1};
    o.heartbeat_timeout = absl::InfiniteDuration();
    service_ = std::make_unique<CoordinationService>(o);
    live_ = std::make_unique<LiveStatus>(LiveStatusOptions{});
    grpc_service_ = std::make_unique<GrpcCoordinationService>(service_.get(), live_.get());
    grpc::ServerBuilder b;
    ServerOptions so;
    so.listen_address = "127.0.0.1:0";
    so.security = Tls(TestPki().chief, "chief:0");
    ConfigureServerBuilder(&b, so, &port_);
    b.RegisterService(grpc_service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    service_->Stop();
    server_->Shutdown(absl::ToChronoTime(In(absl::Seconds(1))));
  }
  // A client for `claimed` presenting `cert`.
  std::unique_ptr<CoordinationClient> Client(const TaskId& claimed, const PemPair& cert,
                                             uint64_t incarnation) {
    const std::string addr = absl::StrCat("127.0.0.1:", port_);
    ChannelOptions co;
    co.security = Tls(cert, claimed.ToString());
    return std::make_unique<CoordinationClient>(CreateChannel(addr, co), claimed, incarnation,
                                                addr);
  }

  std::unique_ptr<CoordinationService> service_;
  std::unique_ptr<LiveStatus> live_;
  std::unique_ptr<GrpcCoordinationService> grpc_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

void ExpectImpersonationRefused(const absl::Status& s) {
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("the caller's certificate is for task worker:1, not chief:0"));
}

TEST_F(TaskIdentityTest, ATaskCannotClaimAnotherTasksIdentity) {
  // worker:1's certificate claiming chief:0.
  auto impostor = Client(kChief0, TestPki().worker1, 666);
  absl::StatusOr<coordination::RegisterTaskResponse> reg =
      impostor->Register("127.0.0.1:1", In(absl::Seconds(20)));
  ExpectImpersonationRefused(reg.status());
  EXPECT_THAT(std::string(reg.status().message()), HasSubstr("RegisterTask"));
  ExpectImpersonationRefused(impostor->Heartbeat(In(absl::Seconds(20))).status());
  ExpectImpersonationRefused(impostor->Barrier("b", {kChief0}, In(absl::Seconds(20))));
  ExpectImpersonationRefused(impostor->Disconnect("bye", In(absl::Seconds(20))));

  // The job goes on: the real tasks register and meet.
  auto chief = Client(kChief0, TestPki().chief, 1);
  auto worker = Client(kWorker1, TestPki().worker1, 2);
  ASSERT_TRUE(chief->Register("127.0.0.1:1", In(absl::Seconds(20))).ok());
  ASSERT_TRUE(worker->Register("127.0.0.1:2", In(absl::Seconds(20))).ok());
  EXPECT_TRUE(worker->Heartbeat(In(absl::Seconds(20))).ok());
  EXPECT_TRUE(worker->Set("k", "v", In(absl::Seconds(20))).ok());
  EXPECT_EQ(*chief->Get("k", In(absl::Seconds(20))), "v");
  // The impostor never got in: chief:0 kept incarnation 1.
  const coordination::ClusterState state = service_->State();
  for (const auto& t : state.tasks()) {
    if (t.task().type() == "chief") {
      EXPECT_EQ(t.incarnation(), 1u);
    }
    EXPECT_EQ(t.restarts(), 0);
  }
}

TEST_F(TaskIdentityTest, TheToolsCertificateReadsButDoesNotWrite) {
  // The tools' client certificate names no task (estuary status).
  auto tools = Client(TaskId{"client", 0}, TestPki().tools, 9);
  absl::StatusOr<coordination::ClusterState> state = tools->GetClusterState(In(absl::Seconds(20)));
  EXPECT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(tools->Get("missing", In(absl::Seconds(20))).status().code(),
            absl::StatusCode::kNotFound);

  absl::Status set = tools->Set("k", "v", In(absl::Seconds(20)));
  EXPECT_EQ(set.code(), absl::StatusCode::kPermissionDenied) << set;
  EXPECT_THAT(std::string(set.message()), HasSubstr("names no task"));
  EXPECT_EQ(tools->Add("n", 1, In(absl::Seconds(20))).status().code(),
            absl::StatusCode::kPermissionDenied);
  absl::Status stop = tools->RequestShutdown("no", false, In(absl::Seconds(20)));
  EXPECT_EQ(stop.code(), absl::StatusCode::kPermissionDenied) << stop;
  EXPECT_FALSE(service_->State().shutdown_requested());
  absl::StatusOr<coordination::RegisterTaskResponse> reg =
      Client(kWorker1, TestPki().tools, 3)->Register("127.0.0.1:2", In(absl::Seconds(20)));
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kPermissionDenied) << reg.status();
  EXPECT_THAT(std::string(reg.status().message()),
              HasSubstr("is for no task (a tools' client certificate), not worker:1"));
}

}  // namespace
}  // namespace estuary
