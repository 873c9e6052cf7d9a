#include "estimator/hooks.h"

#include <vector>

#include "gtest/gtest.h"

namespace estuary {
namespace {

TEST(ProgressReportHookTest, ReportsRatesAndMeanLossPerWindow) {
  absl::Time now = absl::FromUnixSeconds(100);
  std::vector<TrainingProgress> got;
  ProgressReportHook hook([&got](const TrainingProgress& p) { got.push_back(p); },
                          absl::Seconds(1), [&now] { return now; });
  ASSERT_TRUE(hook.Begin(10).ok());
  RunContext run;
  auto step = [&](int64_t global_step, double loss) {
    now += absl::Milliseconds(250);
    StepInfo s;
    s.global_step = global_step;
    s.loss = loss;
    s.batch_size = 8;
    ASSERT_TRUE(hook.AfterStep(s, &run).ok());
  };
  step(11, 1.0);  // the first step reports at once
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].local_steps, 1);
  EXPECT_DOUBLE_EQ(got[0].steps_per_sec, 4);
  EXPECT_DOUBLE_EQ(got[0].examples_per_sec, 32);
  step(12, 0.5);
  step(13, 0.3);
  step(14, 0.2);
  EXPECT_EQ(got.size(), 1u);
  step(15, 0.2);  // a second since the last report: 4 steps
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].global_step, 15);
  EXPECT_EQ(got[1].local_steps, 5);
  EXPECT_DOUBLE_EQ(got[1].steps_per_sec, 4);
  EXPECT_DOUBLE_EQ(got[1].loss, (0.5 + 0.3 + 0.2 + 0.2) / 4);
  step(16, 0.1);
  ASSERT_TRUE(hook.End(16).ok());  // the rest at the end
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].local_steps, 6);
  EXPECT_DOUBLE_EQ(got[2].loss, 0.1);
}

}  // namespace
}  // namespace estuary
