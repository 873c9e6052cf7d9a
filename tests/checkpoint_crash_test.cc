// Crash safety of common/checkpoint: a child saves checkpoints in a loop and
// is killed with SIGKILL at random points of a save (after a random busy-wait
// from one of its "saved" lines, scaled by how long its saves take); after
// every kill the checkpoint named latest must restore with valid checksums
// and consistent contents, and every checkpoint the state file lists must be
// complete. No sleeps: the test waits on the child's output lines and on its
// exit.
#include <signal.h>

#include <algorithm>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "gtest/gtest.h"
#include "tests/process_harness.h"

namespace estuary {
namespace {

void CheckConsistent(const std::string& prefix, const checkpoint::Variables& v) {
  absl::StatusOr<int64_t> step = checkpoint::StepFromPrefix(prefix);
  ASSERT_TRUE(step.ok());
  ASSERT_EQ(v.ints.at("global_step"), *step) << prefix;
  const RowMatrixXf& a = v.floats.at("a");
  ASSERT_EQ(a.rows(), 256);
  ASSERT_EQ(a.cols(), 512);
  EXPECT_EQ(a.minCoeff(), static_cast<float>(*step)) << prefix;
  EXPECT_EQ(a.maxCoeff(), static_cast<float>(*step)) << prefix;
  EXPECT_EQ(v.floats.at("b")(2, 6), static_cast<float>(-*step)) << prefix;
}

TEST(CheckpointCrashTest, KillNineNeverCorruptsTheLatest) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/crash_model");
  const std::string child = testing::Runfile("tests/checkpoint_crash_child");
  absl::BitGen gen;
  int64_t avg_save_us = 2000;  // refined from the child's reports
  int64_t last_step = 0;
  constexpr int kIterations = 80;
  for (int i = 0; i < kIterations; ++i) {
    std::unique_ptr<testing::Proc> p = testing::Proc::Start({child, dir});
    ASSERT_TRUE(p->WaitForLine("saved ", absl::Seconds(60))) << p->Output();
    // Kill somewhere inside one of the next saves: busy-wait a random time
    // up to ~2 saves.
    const int64_t delay_us = absl::Uniform<int64_t>(gen, 0, 2 * avg_save_us + 1);
    const absl::Time until = absl::Now() + absl::Microseconds(delay_us);
    while (absl::Now() < until) {
    }
    p->Signal(SIGKILL);
    absl::StatusOr<int> rc = p->Wait(absl::Seconds(60));
    ASSERT_TRUE(rc.ok()) << rc.status();
    ASSERT_EQ(*rc, 128 + SIGKILL) << p->Output();
    // The child resumed from the checkpoint the previous kill left.
    ASSERT_TRUE(p->HasLine(absl::StrCat("resumed ", last_step))) << p->Output();
    const std::string output = p->Output();
    for (absl::string_view line : absl::StrSplit(output, '\n')) {
      int64_t us;
      const size_t at = line.find(" us=");
      if (at != std::string::npos && absl::SimpleAtoi(line.substr(at + 4), &us)) {
        avg_save_us = (avg_save_us * 3 + std::max<int64_t>(us, 100)) / 4;
      }
    }

    // The named latest restores, verified, with consistent contents.
    absl::StatusOr<std::string> latest = checkpoint::LatestCheckpoint(dir);
    ASSERT_TRUE(latest.ok()) << latest.status();
    absl::StatusOr<std::optional<checkpoint::CheckpointState>> state =
        checkpoint::ReadCheckpointState(dir);
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_TRUE(state->has_value());
    ASSERT_EQ(absl::StrCat(dir, "/", (*state)->model_checkpoint_path), *latest);
    absl::StatusOr<checkpoint::Variables> v = checkpoint::Restore(*latest);
    ASSERT_TRUE(v.ok()) << "iteration " << i << ": " << v.status();
    CheckConsistent(*latest, *v);
    // Every listed checkpoint is complete and verifies.
    for (const std::string& path : (*state)->all_model_checkpoint_paths) {
      absl::StatusOr<checkpoint::Variables> old = checkpoint::Restore(dir + "/" + path);
      ASSERT_TRUE(old.ok()) << "iteration " << i << ": " << old.status();
      CheckConsistent(dir + "/" + path, *old);
    }
    const int64_t step = *checkpoint::StepFromPrefix(*latest);
    ASSERT_GE(step, last_step);
    last_step = step;
  }
  // Leftovers are bounded: old crashes' files were swept.
  absl::StatusOr<std::vector<checkpoint::CheckpointInfo>> list = checkpoint::ListCheckpoints(dir);
  ASSERT_TRUE(list.ok());
  EXPECT_LE(list->size(), 4u);
  std::printf("after %d kills: latest step %lld, average save %lld us\n", kIterations,
              static_cast<long long>(last_step), static_cast<long long>(avg_save_us));
}

}  // namespace
}  // namespace estuary
