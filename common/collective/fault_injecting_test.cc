#include "common/collective/fault_injecting.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/collective/in_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

// Two ranks; rank 1 wrapped with `options`.
std::vector<std::unique_ptr<Communicator>> MakePair(FaultInjectingOptions options) {
  InProcessGroupOptions group_options;
  group_options.size = 2;
  absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> group =
      CreateInProcessGroup(group_options);
  EXPECT_TRUE(group.ok()) << group.status();
  (*group)[1] = std::make_unique<FaultInjectingCommunicator>(std::move((*group)[1]), options);
  return std::move(group).value();
}

// Both ranks call Barrier `n` times; returns each rank's first failure (or OK).
std::vector<absl::Status> Barriers(std::vector<std::unique_ptr<Communicator>>& group, int n,
                                   absl::Duration timeout) {
  std::vector<absl::Status> statuses(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      for (int i = 0; i < n && statuses[r].ok(); ++i) {
        statuses[r] = group[r]->Barrier(absl::Now() + timeout);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return statuses;
}

TEST(FaultInjectingTest, PassesCallsThrough) {
  std::vector<std::unique_ptr<Communicator>> group = MakePair({});
  std::vector<absl::Status> statuses = Barriers(group, 5, absl::Seconds(60));
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_EQ(static_cast<FaultInjectingCommunicator&>(*group[1]).calls(), 5);
  EXPECT_EQ(group[1]->PeerName(0), "replica 0 (rank 0)");
  EXPECT_EQ(group[1]->rank(), 1);
  EXPECT_EQ(group[1]->size(), 2);
}

TEST(FaultInjectingTest, FailsTheChosenCallAndThePeerSeesIt) {
  FaultInjectingOptions options;
  options.call = 2;
  std::vector<std::unique_ptr<Communicator>> group = MakePair(options);
  // The peer's deadline is long: it must end because the wrapped rank aborted.
  std::vector<absl::Status> statuses = Barriers(group, 5, absl::Seconds(60));
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kUnavailable) << statuses[1];
  EXPECT_THAT(std::string(statuses[1].message()), HasSubstr("injected fault in call #2"));
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable) << statuses[0];
  EXPECT_THAT(std::string(statuses[0].message()), HasSubstr("replica 1 (rank 1)"));
  const absl::Status later = group[1]->Barrier(absl::Now() + absl::Seconds(60));
  EXPECT_EQ(later.code(), absl::StatusCode::kFailedPrecondition) << later;
  EXPECT_THAT(std::string(later.message()), HasSubstr("injected fault in call #2"));
}

TEST(FaultInjectingTest, ChosenStatus) {
  FaultInjectingOptions options;
  options.call = 0;
  options.failure = absl::InternalError("boom");
  options.abort_wrapped = false;
  std::vector<std::unique_ptr<Communicator>> group = MakePair(options);
  std::vector<float> x(4);
  const absl::Status status = group[1]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum,
                                                  absl::Now() + absl::Seconds(60));
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("boom"));
}

TEST(FaultInjectingTest, StallMakesThePeerNameThisRank) {
  FaultInjectingOptions options;
  options.call = 1;
  options.mode = FaultInjectingOptions::Mode::kStall;
  std::vector<std::unique_ptr<Communicator>> group = MakePair(options);
  std::vector<absl::Status> statuses = Barriers(group, 3, absl::Seconds(1));
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kDeadlineExceeded) << statuses[0];
  EXPECT_THAT(std::string(statuses[0].message()), HasSubstr("waiting for replica 1 (rank 1)"));
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kDeadlineExceeded) << statuses[1];
  EXPECT_THAT(std::string(statuses[1].message()), HasSubstr("injected stall of call #1"));
}

TEST(FaultInjectingTest, AbortEndsAStall) {
  FaultInjectingOptions options;
  options.call = 0;
  options.mode = FaultInjectingOptions::Mode::kStall;
  std::vector<std::unique_ptr<Communicator>> group = MakePair(options);
  absl::Status status;
  std::thread stalled([&] { status = group[1]->Barrier(absl::InfiniteFuture()); });
  group[1]->Abort();
  stalled.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(group[1]->Barrier(absl::InfiniteFuture()).code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace estuary
