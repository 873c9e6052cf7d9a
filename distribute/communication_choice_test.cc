// ChooseCommunication: ring / nccl / auto against pretended builds and
// machines (no CUDA, CUDA without a GPU, CUDA with GPUs), and the answer of
// this build's real probe.
#include "distribute/communication_choice.h"

#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/coordination/in_memory_store.h"
#include "common/nccl/nccl_communicator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

const absl::StatusOr<int> kNoCuda = absl::UnimplementedError(
    "this build has no CUDA (built without --config=cuda; scripts/setup.sh --cuda)");
const absl::StatusOr<int> kNoGpu = absl::FailedPreconditionError(
    "no usable GPU: cudaErrorNoDevice: no CUDA-capable device is detected");
const absl::StatusOr<int> kTwoGpus = 2;

TEST(CommunicationChoiceTest, RingIsTheRingEverywhere) {
  for (const absl::StatusOr<int>* probe : {&kNoCuda, &kNoGpu, &kTwoGpus}) {
    absl::StatusOr<CommunicationChoice> c = ChooseCommunication("ring", *probe);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->nccl);
    EXPECT_EQ(c->why, "all-reduce over the TCP ring: distribution.communication 'ring'");
  }
}

TEST(CommunicationChoiceTest, AutoTakesNcclOnlyWithCudaAndAGpu) {
  absl::StatusOr<CommunicationChoice> c = ChooseCommunication("auto", kTwoGpus);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->nccl);
  EXPECT_EQ(c->gpus, 2);
  EXPECT_EQ(c->why,
            "all-reduce over NCCL: distribution.communication 'auto', CUDA build with 2 GPU(s) "
            "visible");
  c = ChooseCommunication("auto", kNoCuda);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->nccl);
  EXPECT_EQ(c->why,
            "all-reduce over the TCP ring: distribution.communication 'auto' and this build has no "
            "CUDA (built without --config=cuda; scripts/setup.sh --cuda)");
  c = ChooseCommunication("auto", kNoGpu);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->nccl);
  EXPECT_THAT(c->why, HasSubstr("'auto' and no usable GPU: cudaErrorNoDevice"));
}

TEST(CommunicationChoiceTest, NcclWhereItCanNotRunIsOneLineNamingTheField) {
  absl::StatusOr<CommunicationChoice> c = ChooseCommunication("nccl", kNoCuda);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(c.status().message(),
            "distribution.communication 'nccl' can not run here: this build has no CUDA (built "
            "without --config=cuda; scripts/setup.sh --cuda) (use 'ring', or 'auto' to take NCCL "
            "only where it can run)");
  c = ChooseCommunication("nccl", kNoGpu);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("distribution.communication 'nccl' can not run here: no usable GPU"));
  EXPECT_EQ(c.status().message().find('\n'), absl::string_view::npos);
  c = ChooseCommunication("nccl", kTwoGpus);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->nccl);
  EXPECT_EQ(ChooseCommunication("gloo", kTwoGpus).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// This build's real probe: without --config=cuda it says so; with it, this
// machine has a GPU or says why not. Either way `auto` starts.
TEST(CommunicationChoiceTest, ThisBuildsProbe) {
  const absl::StatusOr<int> devices = NcclVisibleDevices();
  if (devices.ok()) {
    EXPECT_GE(*devices, 1);
  } else {
    EXPECT_TRUE(absl::IsUnimplemented(devices.status()) ||
                absl::IsFailedPrecondition(devices.status()))
        << devices.status();
  }
  absl::StatusOr<CommunicationChoice> c = ChooseCommunication("auto", devices);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->nccl, devices.ok());
}

// Under `auto` a chief with a GPU and a worker without (or the reverse)
// must not form two different groups: every rank takes the chief's choice,
// or fails at start-up saying why.
class AgreeOnCommunicationTest : public ::testing::Test {
 protected:
  AgreeOnCommunicationTest() : coordination_({{"chief", 0}, {"worker", 0}}) {
    chief_ = *coordination_.Connect({"chief", 0});
    worker_ = *coordination_.Connect({"worker", 0});
  }
  static absl::Time Soon() { return absl::Now() + absl::Seconds(30); }
  static CommunicationChoice Choice(const absl::StatusOr<int>& probe) {
    return *ChooseCommunication("auto", probe);
  }

  InMemoryCoordination coordination_;
  std::unique_ptr<InMemoryStore> chief_, worker_;
};

TEST_F(AgreeOnCommunicationTest, EveryRankTakesTheChiefsChoice) {
  // The worker waits for the chief (either order works: no sleep).
  absl::StatusOr<CommunicationChoice> worker;
  std::thread t([&] { worker = AgreeOnCommunication(*worker_, false, Choice(kTwoGpus), Soon()); });
  absl::StatusOr<CommunicationChoice> chief =
      AgreeOnCommunication(*chief_, true, Choice(kTwoGpus), Soon());
  t.join();
  ASSERT_TRUE(chief.ok()) << chief.status();
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_TRUE(chief->nccl);
  EXPECT_TRUE(worker->nccl);
  EXPECT_EQ(worker->gpus, 2);
}

TEST_F(AgreeOnCommunicationTest, AChiefOnTheRingTakesAWorkerWithAGpuAlong) {
  ASSERT_TRUE(AgreeOnCommunication(*chief_, true, Choice(kNoGpu), Soon()).ok());
  absl::StatusOr<CommunicationChoice> worker =
      AgreeOnCommunication(*worker_, false, Choice(kTwoGpus), Soon());
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_FALSE(worker->nccl);
  EXPECT_THAT(worker->why, HasSubstr("all-reduce over the TCP ring: the chief chose it"));
}

TEST_F(AgreeOnCommunicationTest, AChiefOnNcclFailsAWorkerWithoutAGpuNamingTheField) {
  ASSERT_TRUE(AgreeOnCommunication(*chief_, true, Choice(kTwoGpus), Soon()).ok());
  absl::StatusOr<CommunicationChoice> worker =
      AgreeOnCommunication(*worker_, false, Choice(kNoCuda), Soon());
  EXPECT_EQ(worker.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(worker.status().message()),
              HasSubstr("distribution.communication: the chief chose NCCL, but this task can not "
                        "run it (all-reduce over the TCP ring: distribution.communication 'auto' "
                        "and this build has no CUDA"));
}

TEST_F(AgreeOnCommunicationTest, NoChiefIsDeadlineExceeded) {
  EXPECT_EQ(AgreeOnCommunication(*worker_, false, Choice(kNoGpu),
                                 absl::Now() + absl::Milliseconds(100))
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace estuary
