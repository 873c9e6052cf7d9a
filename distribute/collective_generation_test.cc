#include "distribute/collective_generation.h"

#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "common/coordination/in_memory_store.h"
#include "distribute/keys.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

const TaskId kChiefTask{"chief", 0};
const TaskId kWorkerTask{"worker", 0};

class CollectiveGenerationTest : public ::testing::Test {
 protected:
  CollectiveGenerationTest() : coordination_({kChiefTask, kWorkerTask}) {
    chief_ = *coordination_.Connect(kChiefTask);
    worker_ = *coordination_.Connect(kWorkerTask);
  }
  static absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

  InMemoryCoordination coordination_;
  std::unique_ptr<InMemoryStore> chief_, worker_;
};

TEST_F(CollectiveGenerationTest, ChiefOpensOnePastTheNewest) {
  EXPECT_EQ(*OpenCollectiveGeneration(*chief_, 11, Soon()), 1);
  EXPECT_EQ(*OpenCollectiveGeneration(*chief_, 11, Soon()), 2);
  EXPECT_EQ(*chief_->Get(kCollectiveGenerationKey, Soon()), "2");
  EXPECT_EQ(*chief_->Get(CollectiveMemberKey(2, 0), Soon()), "11");
}

TEST_F(CollectiveGenerationTest, WorkerWaitsForTheChiefAndJoinsTheNewest) {
  std::thread chief([this] {
    // The worker is waiting meanwhile (no sleep needed: either order works).
    ASSERT_EQ(*OpenCollectiveGeneration(*chief_, 1, Soon()), 1);
  });
  EXPECT_EQ(*JoinCollectiveGeneration(*worker_, 1, 22, 0, Soon()), 1);
  chief.join();
  EXPECT_EQ(*worker_->Get(CollectiveMemberKey(1, 1), Soon()), "22");
  // After generation 1 failed: the chief opened 2 and 3 meanwhile; the
  // worker joins the newest.
  ASSERT_EQ(*OpenCollectiveGeneration(*chief_, 1, Soon()), 2);
  ASSERT_EQ(*OpenCollectiveGeneration(*chief_, 1, Soon()), 3);
  EXPECT_EQ(*JoinCollectiveGeneration(*worker_, 1, 22, 1, Soon()), 3);
}

// A restarted worker (new incarnation) never joins the generation its dead
// predecessor was part of: it waits for the chief's next one.
TEST_F(CollectiveGenerationTest, RestartedWorkerSkipsItsPredecessorsGeneration) {
  ASSERT_EQ(*OpenCollectiveGeneration(*chief_, 1, Soon()), 1);
  ASSERT_EQ(*JoinCollectiveGeneration(*worker_, 1, 22, 0, Soon()), 1);
  // The new incarnation starts before the chief noticed the death.
  absl::StatusOr<int64_t> early =
      JoinCollectiveGeneration(*worker_, 1, 33, 0, absl::Now() + absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(early.status())) << early.status();
  std::thread chief([this] { ASSERT_EQ(*OpenCollectiveGeneration(*chief_, 1, Soon()), 2); });
  EXPECT_EQ(*JoinCollectiveGeneration(*worker_, 1, 33, 0, Soon()), 2);
  chief.join();
  // A predecessor that died before recording itself leaves the generation
  // open to its successor.
  ASSERT_EQ(*OpenCollectiveGeneration(*chief_, 1, Soon()), 3);
  EXPECT_EQ(*JoinCollectiveGeneration(*worker_, 1, 44, 0, Soon()), 3);
}

TEST_F(CollectiveGenerationTest, EndOfTrainingEndsTheWait) {
  ASSERT_EQ(*OpenCollectiveGeneration(*chief_, 1, Soon()), 1);
  ASSERT_EQ(*JoinCollectiveGeneration(*worker_, 1, 22, 0, Soon()), 1);
  std::thread chief([this] { ASSERT_TRUE(chief_->Set(kFinalStepKey, "100", Soon()).ok()); });
  EXPECT_EQ(*JoinCollectiveGeneration(*worker_, 1, 22, 1, Soon()), 0);
  chief.join();
  // A worker restarted after the end has nothing to join either.
  EXPECT_EQ(*JoinCollectiveGeneration(*worker_, 1, 55, 0, Soon()), 0);
}

TEST_F(CollectiveGenerationTest, WaitsAreBoundedAndCancellable) {
  absl::StatusOr<int64_t> late =
      JoinCollectiveGeneration(*worker_, 1, 22, 4, absl::Now() + absl::Milliseconds(200));
  ASSERT_TRUE(absl::IsDeadlineExceeded(late.status())) << late.status();
  EXPECT_NE(late.status().message().find("no ring generation after 4"), std::string::npos)
      << late.status();
  worker_->CancelBlockingCalls();
  EXPECT_TRUE(absl::IsCancelled(JoinCollectiveGeneration(*worker_, 1, 22, 0, Soon()).status()));
}

}  // namespace
}  // namespace estuary
