#include "common/rpc.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/health.grpc.pb.h"

namespace estuary {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// Serving for "", NotFound for any other service name.
class FakeHealth final : public Health::Service {
  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest* req,
                     HealthCheckResponse* resp) override {
    if (!req->service().empty()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown");
    resp->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
};

// A gRPC server with FakeHealth on a kernel-chosen port.
class RpcTest : public testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    ConfigureServerBuilder(&b, ServerOptions{}, &port_);
    b.RegisterService(&health_);
    server_ = b.BuildAndStart();
    ASSERT_NE(port_, 0);
    address_ = absl::StrCat("127.0.0.1:", port_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  FakeHealth health_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(RpcTest, CallUnaryReturnsTheResponse) {
  auto stub = Health::NewStub(CreateChannel(address_));
  HealthCheckResponse resp;
  CallOptions options;
  options.deadline = absl::Now() + absl::Seconds(5);
  options.what = "Check";
  ASSERT_TRUE(CallUnary(stub.get(), &Health::Stub::Check, HealthCheckRequest(), &resp, options).ok());
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
}

TEST_F(RpcTest, CallUnaryKeepsTheCodeAndSaysWhatFailed) {
  auto stub = Health::NewStub(CreateChannel(address_));
  HealthCheckRequest req;
  req.set_service("no.such.Service");
  HealthCheckResponse resp;
  CallOptions options;
  options.deadline = absl::Now() + absl::Seconds(5);
  options.what = "Check to the test server";
  absl::Status st = CallUnary(stub.get(), &Health::Stub::Check, req, &resp, options);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_TRUE(absl::StartsWith(st.message(), "Check to the test server: ")) << st;
}

TEST_F(RpcTest, CallUnaryHonoursTheDeadlineAndTheCanceller) {
  server_->Shutdown(absl::ToChronoTime(absl::Now()));
  auto stub = Health::NewStub(CreateChannel(address_));
  HealthCheckResponse resp;
  CallOptions options;
  options.wait_for_ready = true;  // queue until the deadline
  options.deadline = absl::Now() + absl::Milliseconds(200);
  EXPECT_EQ(CallUnary(stub.get(), &Health::Stub::Check, HealthCheckRequest(), &resp, options).code(),
            absl::StatusCode::kDeadlineExceeded);

  CallCanceller canceller;
  options.deadline = absl::Now() + absl::Seconds(30);
  options.canceller = &canceller;
  absl::Status st;
  std::thread t([&] {
    st = CallUnary(stub.get(), &Health::Stub::Check, HealthCheckRequest(), &resp, options);
  });
  canceller.CancelAll();
  t.join();
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled) << st;
  EXPECT_TRUE(canceller.cancelled());
}

TEST_F(RpcTest, TcpProbeTellsWhetherAServerListens) {
  TcpProbe probe(address_);
  EXPECT_TRUE(probe.Probe(absl::Seconds(1)).ok());
  EXPECT_TRUE(probe.Probe(absl::Seconds(1)).ok());
  EXPECT_TRUE(TcpProbe(absl::StrCat("localhost:", port_)).Probe(absl::Seconds(1)).ok());
  // A port bound but not listening refuses connections.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const absl::Status refused =
      TcpProbe(absl::StrCat("127.0.0.1:", ntohs(addr.sin_port))).Probe(absl::Seconds(1));
  close(fd);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_EQ(TcpProbe("127.0.0.1").Probe(absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace estuary
