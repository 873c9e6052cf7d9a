// NcclCommunicator: the conformance suite on as many ranks (threads, one
// GPU each) as there are GPUs; skips without a GPU. The option checks run
// everywhere.
#include "common/nccl/nccl_communicator.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cluster.h"
#include "common/collective/communicator_conformance.h"
#include "common/coordination/in_memory_store.h"
#include "common/nccl/gpu_probe.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

const gpu::GpuProbeResult& Probe() {
  static const gpu::GpuProbeResult* const probe = new gpu::GpuProbeResult(gpu::ProbeGpu());
  return *probe;
}

std::string NoGpu() {
  const gpu::GpuProbeResult& probe = Probe();
  if (probe.device_count > 0 && probe.unavailable.empty()) return "";
  return absl::StrCat("no GPU visible: ", probe.unavailable);
}

// The tasks of a cluster of `world` workers, each with its store.
class Cluster {
 public:
  explicit Cluster(int world) : coordination_(Tasks(world)) {
    for (int r = 0; r < world; ++r) {
      absl::StatusOr<std::unique_ptr<InMemoryStore>> store = coordination_.Connect({"worker", r});
      EXPECT_TRUE(store.ok()) << store.status();
      stores_.push_back(std::move(store).value());
    }
  }
  Store* store(int rank) { return stores_[rank].get(); }

  NcclOptions Options(int rank, absl::Duration timeout) {
    NcclOptions options;
    options.store = store(rank);
    options.rank = rank;
    options.size = static_cast<int>(stores_.size());
    options.device = rank;
    for (int r = 0; r < options.size; ++r) options.peer_names.push_back(absl::StrCat("worker:", r));
    options.deadline = absl::Now() + timeout;
    return options;
  }

 private:
  static std::vector<TaskId> Tasks(int world) {
    std::vector<TaskId> tasks;
    for (int r = 0; r < world; ++r) tasks.push_back({"worker", r});
    return tasks;
  }
  InMemoryCoordination coordination_;
  std::vector<std::unique_ptr<InMemoryStore>> stores_;
};

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> MakeNcclGroup(int world) {
  if (!NoGpu().empty()) return absl::UnimplementedError(NoGpu());
  if (world > Probe().device_count) {
    return absl::UnimplementedError(absl::StrCat(world, " ranks need ", world, " GPUs; ",
                                                 Probe().device_count, " visible"));
  }
  Cluster cluster(world);  // the store is used only while creating
  return CreateInThreads(world, [&](int rank) {
    return CreateNcclCommunicator(cluster.Options(rank, absl::Seconds(60)));
  });
}

ConformanceOptions NcclConformance() {
  ConformanceOptions options;
  options.detects_mismatch = false;  // NCCL cannot tell
  options.stall_deadline = absl::Seconds(5);
  return options;
}

INSTANTIATE_TEST_SUITE_P(Nccl, CommunicatorConformanceTest,
                         testing::Values(ConformanceParam{"nccl", MakeNcclGroup,
                                                          NcclConformance()}),
                         ConformanceParamName);

TEST(NcclCommunicatorTest, Probe) {
  if (!NoGpu().empty()) GTEST_SKIP() << NoGpu();
  const gpu::GpuProbeResult& probe = Probe();
  EXPECT_TRUE(probe.kernel_ok) << probe.error;
  EXPECT_TRUE(probe.nccl_allreduce_ok) << probe.error;
}

// The cheap start-up check a trainer runs agrees with the full probe:
// FailedPrecondition with the CUDA runtime's reason without a GPU.
TEST(NcclCommunicatorTest, VisibleDevicesAgreesWithTheProbe) {
  const absl::StatusOr<int> devices = NcclVisibleDevices();
  if (!NoGpu().empty()) {
    EXPECT_EQ(devices.status().code(), absl::StatusCode::kFailedPrecondition) << devices.status();
    return;
  }
  ASSERT_TRUE(devices.ok()) << devices.status();
  EXPECT_EQ(*devices, Probe().device_count);
}

TEST(NcclCommunicatorTest, BadOptions) {
  Cluster cluster(2);
  NcclOptions options = cluster.Options(0, absl::Seconds(5));
  options.store = nullptr;
  EXPECT_EQ(CreateNcclCommunicator(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = cluster.Options(2, absl::Seconds(5));
  options.store = cluster.store(0);
  EXPECT_EQ(CreateNcclCommunicator(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = cluster.Options(0, absl::Seconds(5));
  options.peer_names = {"worker:0"};
  EXPECT_EQ(CreateNcclCommunicator(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NcclCommunicatorTest, DeviceOutOfRange) {
  if (!NoGpu().empty()) GTEST_SKIP() << NoGpu();
  Cluster cluster(1);
  NcclOptions options = cluster.Options(0, absl::Seconds(30));
  options.device = Probe().device_count;
  const absl::Status status = CreateNcclCommunicator(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

// Rank 1 never comes: rank 0 gives up at its deadline naming it.
TEST(NcclCommunicatorTest, RendezvousDeadlineNamesTheMissingRank) {
  if (!NoGpu().empty()) GTEST_SKIP() << NoGpu();
  Cluster cluster(2);
  const absl::Status status =
      CreateNcclCommunicator(cluster.Options(0, absl::Seconds(3))).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("never joined: worker:1 (rank 1)"));
}

// A rank waiting for rank 0's id names it.
TEST(NcclCommunicatorTest, WaitingForTheIdNamesRankZero) {
  if (!NoGpu().empty()) GTEST_SKIP() << NoGpu();
  Cluster cluster(2);
  NcclOptions options = cluster.Options(1, absl::Seconds(1));
  options.device = 0;
  const absl::Status status = CreateNcclCommunicator(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("worker:0 (rank 0)'s NCCL id"));
}

}  // namespace
}  // namespace estuary
