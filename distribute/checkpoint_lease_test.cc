#include "distribute/checkpoint_lease.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/coordination/in_memory_store.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

absl::Time Deadline() { return absl::Now() + absl::Seconds(30); }

class LeaseTest : public ::testing::Test {
 protected:
  LeaseTest() : coordination_({{"chief", 0}, {"evaluator", 0}}) {
    chief_ = *coordination_.Connect({"chief", 0});
    evaluator_ = *coordination_.Connect({"evaluator", 0});
  }
  InMemoryCoordination coordination_;
  std::unique_ptr<InMemoryStore> chief_;
  std::unique_ptr<InMemoryStore> evaluator_;
};

TEST_F(LeaseTest, ALeasedCheckpointIsNotDeletedUntilReleased) {
  CheckpointLeases reader(evaluator_.get());
  CheckpointLeases cleaner(chief_.get());
  ASSERT_TRUE(reader.Acquire(100, Deadline()).ok());
  ASSERT_TRUE(reader.Acquire(100, Deadline()).ok());  // two readers
  EXPECT_FALSE(cleaner.MayDelete(100, Deadline()));
  ASSERT_TRUE(reader.Release(100, Deadline()).ok());
  EXPECT_FALSE(cleaner.MayDelete(100, Deadline()));
  // Backing off left it leasable.
  ASSERT_TRUE(reader.Acquire(100, Deadline()).ok());
  ASSERT_TRUE(reader.Release(100, Deadline()).ok());
  ASSERT_TRUE(reader.Release(100, Deadline()).ok());
  EXPECT_TRUE(cleaner.MayDelete(100, Deadline()));
  // Once it may be deleted, it can not be leased again.
  EXPECT_TRUE(absl::IsNotFound(reader.Acquire(100, Deadline())));
  // Other steps are independent.
  EXPECT_TRUE(cleaner.MayDelete(200, Deadline()));
  ASSERT_TRUE(reader.Acquire(300, Deadline()).ok());
}

TEST_F(LeaseTest, StoreErrorsKeepTheCheckpoint) {
  InMemoryStoreOptions failing;
  failing.fail_after_calls = 0;
  std::unique_ptr<InMemoryStore> broken = *coordination_.Connect({"chief", 0}, failing);
  EXPECT_FALSE(CheckpointLeases(broken.get()).MayDelete(5, Deadline()));
  EXPECT_TRUE(absl::IsUnavailable(CheckpointLeases(broken.get()).Acquire(5, Deadline())));
  // A store that fails between announcing and checking: the check's error,
  // and the checkpoint stays deletable only if no lease is left behind.
  failing.fail_after_calls = 1;
  std::unique_ptr<InMemoryStore> flaky = *coordination_.Connect({"evaluator", 0}, failing);
  EXPECT_TRUE(absl::IsUnavailable(CheckpointLeases(flaky.get()).Acquire(6, Deadline())));
  EXPECT_FALSE(CheckpointLeases(chief_.get()).MayDelete(6, Deadline()));  // left behind: kept
}

std::string NewDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
}

Variables SmallVars(int64_t step) {
  Variables v;
  v.floats["w"] = RowMatrixXf::Constant(4, 8, static_cast<float>(step));
  v.ints["global_step"] = step;
  return v;
}

// A saver commits checkpoints with keep_checkpoint_max 1 while an evaluator
// leases the latest and reads it, often holding it across later commits:
// no read ever finds its checkpoint deleted.
TEST_F(LeaseTest, EvaluatorNeverReadsADeletedCheckpoint) {
  const std::string dir = NewDir("stress");
  constexpr int64_t kLastStep = 120;
  absl::Mutex mu;
  int64_t committed = 0;  // guarded by mu

  std::thread saver([&] {
    CheckpointLeases leases(chief_.get());
    checkpoint::SaveOptions options;
    options.keep_checkpoint_max = 1;
    options.may_delete = [&](int64_t step) { return leases.MayDelete(step, Deadline()); };
    for (int64_t step = 1; step <= kLastStep; ++step) {
      absl::StatusOr<std::string> saved = checkpoint::Save(dir, step, SmallVars(step), options);
      ASSERT_TRUE(saved.ok()) << saved.status();
      absl::MutexLock lock(&mu);
      committed = step;
    }
  });

  CheckpointLeases leases(evaluator_.get());
  int64_t reads = 0, superseded = 0, held_across_commits = 0, last_read = 0;
  while (last_read < kLastStep) {
    absl::StatusOr<int64_t> latest = checkpoint::LatestStep(dir);
    if (!latest.ok()) {
      ASSERT_TRUE(absl::IsNotFound(latest.status())) << latest.status();
      absl::MutexLock lock(&mu);
      mu.AwaitWithTimeout(absl::Condition(+[](int64_t* c) { return *c > 0; }, &committed),
                          absl::Seconds(30));
      continue;
    }
    absl::Status st = leases.Acquire(*latest, Deadline());
    if (absl::IsNotFound(st)) {
      ++superseded;
      continue;
    }
    ASSERT_TRUE(st.ok()) << st;
    if (reads % 3 == 0 && *latest < kLastStep - 2) {
      // Hold the lease while the saver commits two more (and would delete it).
      const int64_t until = *latest + 2;
      absl::MutexLock lock(&mu);
      auto passed = [&] { return committed >= until; };
      ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&passed), absl::Seconds(60)));
      ++held_across_commits;
    }
    absl::StatusOr<Variables> vars = checkpoint::Restore(checkpoint::CheckpointPrefix(dir, *latest));
    ASSERT_TRUE(vars.ok()) << "read of leased step " << *latest << ": " << vars.status();
    EXPECT_EQ(vars->ints.at("global_step"), *latest);
    EXPECT_EQ(vars->floats.at("w")(3, 7), static_cast<float>(*latest));
    ASSERT_TRUE(leases.Release(*latest, Deadline()).ok());
    ++reads;
    last_read = *latest;
  }
  saver.join();
  EXPECT_GT(held_across_commits, 0);
  std::printf("reads %lld, superseded %lld, held across commits %lld\n",
              static_cast<long long>(reads), static_cast<long long>(superseded),
              static_cast<long long>(held_across_commits));
  // Everything is released: one more commit leaves only the newest.
  CheckpointLeases cleaner(chief_.get());
  checkpoint::SaveOptions options;
  options.keep_checkpoint_max = 1;
  options.may_delete = [&](int64_t step) { return cleaner.MayDelete(step, Deadline()); };
  ASSERT_TRUE(checkpoint::Save(dir, kLastStep + 1, SmallVars(kLastStep + 1), options).ok());
  EXPECT_EQ(checkpoint::ListCheckpoints(dir)->size(), 1u);
}

}  // namespace
}  // namespace estuary
