#include "common/subprocess.h"

#include <signal.h>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

TEST(SubprocessTest, StreamsLinesAndReturnsExitCode) {
  absl::Mutex mu;
  std::vector<std::string> out, err;
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "echo one; echo two >&2; printf three; exit 3"};
  o.env["X"] = "1";
  o.on_line = [&](const std::string& line, bool is_err) {
    absl::MutexLock l(&mu);
    (is_err ? err : out).push_back(line);
  };
  auto p = Subprocess::Start(o);
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> code = (*p)->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  absl::MutexLock l(&mu);
  EXPECT_EQ(out, (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(err, (std::vector<std::string>{"two"}));
}

TEST(SubprocessTest, PassesEnvironment) {
  std::string seen;
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "echo \"$TF_CONFIG\""};
  o.env["TF_CONFIG"] = "{\"a\": 1}";
  o.on_line = [&](const std::string& line, bool) { seen = line; };
  auto p = Subprocess::Start(o);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(*(*p)->Wait(absl::Seconds(30)), 0);
  EXPECT_EQ(seen, "{\"a\": 1}");
}

TEST(SubprocessTest, WaitTimesOutThenKillWorks) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", "exec sleep 60"};
  o.on_line = [](const std::string&, bool) {};
  auto p = Subprocess::Start(o);
  ASSERT_TRUE(p.ok());
  absl::StatusOr<int> code = (*p)->Wait(absl::Milliseconds(50));
  EXPECT_EQ(code.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE((*p)->Poll().has_value());
  (*p)->Signal(SIGKILL);
  code = (*p)->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(SubprocessTest, MissingExecutableIsNotFound) {
  SubprocessOptions o;
  o.argv = {"/nonexistent/binary"};
  auto p = Subprocess::Start(o);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
}

TEST(PortReservationTest, DistinctPorts) {
  auto a = PortReservation::Reserve();
  auto b = PortReservation::Reserve();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(a->port(), 0);
  EXPECT_NE(a->port(), b->port());
}

}  // namespace
}  // namespace estuary
