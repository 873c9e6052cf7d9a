#include "common/collective/in_process.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/collective/communicator_conformance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

// The second and third instantiations: no 64 MiB case, shorter stalls
// (the first one covers both).
ConformanceOptions Small(int max_world) {
  ConformanceOptions options;
  options.max_world = max_world;
  options.big = false;
  options.stall_deadline = absl::Milliseconds(500);
  return options;
}

INSTANTIATE_TEST_SUITE_P(InProcess, CommunicatorConformanceTest,
                         testing::Values(ConformanceParam{"in_process", [](int world) {
                                                            InProcessGroupOptions options;
                                                            options.size = world;
                                                            return CreateInProcessGroup(options);
                                                          }}),
                         ConformanceParamName);

// The same suite with ranks created one by one on threads (how a ring's
// factory does it).
INSTANTIATE_TEST_SUITE_P(
    InProcessInThreads, CommunicatorConformanceTest,
    testing::Values(ConformanceParam{
        "in_process_in_threads",
        [](int world) -> absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> {
          InProcessGroupOptions options;
          options.size = world;
          auto group = std::make_shared<std::vector<std::unique_ptr<Communicator>>>();
          absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> made =
              CreateInProcessGroup(options);
          if (!made.ok()) return made.status();
          *group = std::move(made).value();
          return CreateInThreads(world, [group](int rank) { return std::move((*group)[rank]); });
        },
        Small(3)}),
    ConformanceParamName);

// A factory that cannot make every world (as NCCL with fewer GPUs than
// ranks): the suite leaves those worlds out.
INSTANTIATE_TEST_SUITE_P(
    InProcessUpToTwo, CommunicatorConformanceTest,
    testing::Values(ConformanceParam{
        "in_process_up_to_two",
        [](int world) -> absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> {
          if (world > 2) return absl::UnimplementedError("only 2 ranks here");
          InProcessGroupOptions options;
          options.size = world;
          return CreateInProcessGroup(options);
        },
        Small(4)}),
    ConformanceParamName);

TEST(InProcessGroupTest, BadOptions) {
  InProcessGroupOptions options;
  options.size = 0;
  EXPECT_EQ(CreateInProcessGroup(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.size = 2;
  options.peer_names = {"a"};
  EXPECT_EQ(CreateInProcessGroup(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InProcessGroupTest, PeerNames) {
  InProcessGroupOptions options;
  options.size = 2;
  absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> group = CreateInProcessGroup(options);
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ((*group)[0]->PeerName(1), "replica 1 (rank 1)");
  options.peer_names = {"worker:0", "worker:1"};
  group = CreateInProcessGroup(options);
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ((*group)[1]->PeerName(0), "worker:0 (rank 0)");
}

// A rank whose communicator is destroyed ends its peers' calls at once.
TEST(InProcessGroupTest, DestroyedRankEndsPeersCalls) {
  InProcessGroupOptions options;
  options.size = 2;
  absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> group = CreateInProcessGroup(options);
  ASSERT_TRUE(group.ok()) << group.status();
  absl::Status status;
  std::thread rank0([&] { status = (*group)[0]->Barrier(absl::InfiniteFuture()); });
  (*group)[1].reset();
  rank0.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("replica 1 (rank 1)"));
}

// The stalled rank, arriving after its peers gave up, fails too (with the
// peers' error) instead of waiting for them.
TEST(InProcessGroupTest, LateRankFailsAtOnce) {
  InProcessGroupOptions options;
  options.size = 2;
  absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> group = CreateInProcessGroup(options);
  ASSERT_TRUE(group.ok()) << group.status();
  const absl::Status early = (*group)[0]->Barrier(absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(early.code(), absl::StatusCode::kDeadlineExceeded) << early;
  const absl::Status late = (*group)[1]->Barrier(absl::InfiniteFuture());
  EXPECT_EQ(late.code(), absl::StatusCode::kDeadlineExceeded) << late;
  EXPECT_THAT(std::string(late.message()), HasSubstr("waiting for replica 1 (rank 1)"));
}

// A deadline that passed before the call still lets a complete rendezvous
// through only if every rank is there: here none is, so it fails at once.
TEST(InProcessGroupTest, PastDeadlineFailsAtOnce) {
  InProcessGroupOptions options;
  options.size = 2;
  absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> group = CreateInProcessGroup(options);
  ASSERT_TRUE(group.ok()) << group.status();
  std::vector<float> x(3);
  EXPECT_EQ((*group)[0]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum, absl::InfinitePast()).code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace estuary
