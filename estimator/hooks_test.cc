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
    s.phases.input = absl::Milliseconds(10);
    s.phases.compute = absl::Milliseconds(global_step);
    s.phases.communicate = absl::Milliseconds(5);
    s.phases.apply = absl::Milliseconds(1);
    s.phases.total = absl::Milliseconds(250);
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
  EXPECT_TRUE(got[1].has_phases);
  EXPECT_NEAR(got[1].input_secs, 0.010, 1e-9);
  EXPECT_NEAR(got[1].compute_secs, (12 + 13 + 14 + 15) / 4.0 * 1e-3, 1e-9);
  EXPECT_NEAR(got[1].communicate_secs, 0.005, 1e-9);
  EXPECT_NEAR(got[1].apply_secs, 0.001, 1e-9);
  step(16, 0.1);
  ASSERT_TRUE(hook.End(16).ok());  // the rest at the end
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].local_steps, 6);
  EXPECT_DOUBLE_EQ(got[2].loss, 0.1);
}

}  // namespace
}  // namespace estuary
