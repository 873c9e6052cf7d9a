#include "common/ps/ps_data_plane.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

std::string ToString(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(b.Dump(&slices).ok());
  std::string s;
  for (const grpc::Slice& x : slices) s.append(reinterpret_cast<const char*>(x.begin()), x.size());
  return s;
}

grpc::ByteBuffer FromString(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

// Echoes "<method>:<body>"; "fail" answers InvalidArgument; "slow" waits.
grpc::Status Echo(uint32_t method, const grpc::ByteBuffer& in, grpc::ByteBuffer* out,
                  absl::Notification* release) {
  const std::string body = ToString(in);
  if (body == "fail") return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad gradient");
  if (body == "slow") release->WaitForNotification();
  // Several slices, as a FrameWriter's answers have.
  std::vector<grpc::Slice> slices = {grpc::Slice(absl::StrCat(method, ":")), grpc::Slice(body)};
  *out = grpc::ByteBuffer(slices.data(), slices.size());
  return grpc::Status::OK;
}

class PsDataPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PsDataServer::Start(
        "127.0.0.1", [this](uint32_t m, const grpc::ByteBuffer& in, grpc::ByteBuffer* out) {
          return Echo(m, in, out, &release_);
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  std::string Address() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  absl::Notification release_;
  std::unique_ptr<PsDataServer> server_;
};

TEST_F(PsDataPlaneTest, AnswersRequestsInOrderOnOneConnection) {
  PsDataConnection c(Address(), "ps:0");
  ASSERT_TRUE(c.EnsureConnected(absl::Now() + absl::Seconds(5), absl::Seconds(1)).ok());
  std::string big(3 << 20, 'x');  // bigger than the socket buffers
  big[12345] = 'y';
  for (const std::string& body : {std::string("a"), big, std::string()}) {
    grpc::ByteBuffer out;
    absl::Status s = c.Call(ps_data::kPush, FromString(body), &out, absl::Now() + absl::Seconds(10),
                            "Push to ps:0");
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(ToString(out), absl::StrCat(ps_data::kPush, ":", body));
  }
  grpc::ByteBuffer out;
  ASSERT_TRUE(c.Call(ps_data::kPull, FromString("p"), &out, absl::Now() + absl::Seconds(10), "Pull")
                  .ok());
  EXPECT_EQ(ToString(out), absl::StrCat(ps_data::kPull, ":p"));
}

TEST_F(PsDataPlaneTest, TheHandlersErrorReachesTheCallerAndTheConnectionGoesOn) {
  PsDataConnection c(Address(), "ps:0");
  ASSERT_TRUE(c.EnsureConnected(absl::Now() + absl::Seconds(5), absl::Seconds(1)).ok());
  grpc::ByteBuffer out;
  absl::Status s = c.Call(ps_data::kPush, FromString("fail"), &out, absl::Now() + absl::Seconds(10),
                          "Push to ps:0");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("bad gradient"), std::string::npos) << s;
  EXPECT_NE(s.message().find("Push to ps:0"), std::string::npos) << s;
  s = c.Call(ps_data::kPush, FromString("ok"), &out, absl::Now() + absl::Seconds(10), "Push");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ToString(out), absl::StrCat(ps_data::kPush, ":ok"));
}

TEST_F(PsDataPlaneTest, AStalledServerIsDeadlineExceeded) {
  PsDataConnection c(Address(), "ps:0");
  ASSERT_TRUE(c.EnsureConnected(absl::Now() + absl::Seconds(5), absl::Seconds(1)).ok());
  grpc::ByteBuffer out;
  const absl::Time start = absl::Now();
  absl::Status s = c.Call(ps_data::kPush, FromString("slow"), &out,
                          absl::Now() + absl::Milliseconds(300), "Push to ps:0");
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  release_.Notify();
  // The connection was closed (its state is unknown): the next call says so.
  s = c.Call(ps_data::kPush, FromString("x"), &out, absl::Now() + absl::Seconds(5), "Push");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  ASSERT_TRUE(c.EnsureConnected(absl::Now() + absl::Seconds(5), absl::Seconds(1)).ok());
  s = c.Call(ps_data::kPush, FromString("x"), &out, absl::Now() + absl::Seconds(5), "Push");
  EXPECT_TRUE(s.ok()) << s;
}

TEST_F(PsDataPlaneTest, AServerThatStopsIsUnavailableAndRefusesNewConnections) {
  PsDataConnection c(Address(), "ps:0");
  ASSERT_TRUE(c.EnsureConnected(absl::Now() + absl::Seconds(5), absl::Seconds(1)).ok());
  const std::string address = Address();
  server_.reset();  // closes every connection, as a PS that dies
  grpc::ByteBuffer out;
  absl::Status s =
      c.Call(ps_data::kPush, FromString("x"), &out, absl::Now() + absl::Seconds(5), "Push to ps:0");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  PsDataConnection again(address, "ps:0");
  const absl::Time start = absl::Now();
  s = again.EnsureConnected(absl::Now() + absl::Seconds(30), absl::Milliseconds(200));
  EXPECT_FALSE(s.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // the short connect timeout, not the call's
}

TEST_F(PsDataPlaneTest, GarbageIsRefusedAndTheServerGoesOn) {
  // A stranger speaking another protocol gets an error answer and is closed.
  PsDataConnection c(Address(), "ps:0");
  ASSERT_TRUE(c.EnsureConnected(absl::Now() + absl::Seconds(5), absl::Seconds(1)).ok());
  grpc::ByteBuffer out;
  absl::Status s =
      c.Call(7, FromString("x"), &out, absl::Now() + absl::Seconds(5), "Frobnicate to ps:0");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("unknown method 7"), std::string::npos) << s;
  PsDataConnection d(Address(), "ps:0");
  ASSERT_TRUE(d.EnsureConnected(absl::Now() + absl::Seconds(5), absl::Seconds(1)).ok());
  s = d.Call(ps_data::kPull, FromString("y"), &out, absl::Now() + absl::Seconds(5), "Pull");
  EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace estuary
