// MetricsHook: every step's counters, phase histograms and the window
// gauges (input-wait fraction, examples/s) on a fake clock; the output
// passes promtool.
#include "estimator/metrics_hook.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/promtool_testing.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

TEST(MetricsHookTest, CountsStepsPhasesAndWindowRates) {
  absl::StatusOr<std::unique_ptr<TaskMetrics>> m = TaskMetrics::Create({"worker", "0"});
  ASSERT_TRUE(m.ok()) << m.status();
  absl::Time now = absl::UnixEpoch();
  MetricsHook hook(m->get(), absl::Seconds(1), [&] { return now; });
  ASSERT_TRUE(hook.Begin(10).ok());
  RunContext run;
  for (int i = 1; i <= 4; ++i) {
    StepInfo step;
    step.global_step = 10 + i;
    step.loss = 0.5;
    step.batch_size = 32;
    // Binary fractions of a second, so that sums print exactly.
    step.phases.input = absl::Milliseconds(125);
    step.phases.compute = absl::Milliseconds(250);
    step.phases.communicate = absl::Microseconds(62500);
    step.phases.apply = absl::Microseconds(62500);
    step.phases.total = absl::Milliseconds(500);
    now += absl::Milliseconds(500);
    ASSERT_TRUE(hook.AfterStep(step, &run).ok());
  }
  const std::string text = (*m)->Scrape();
  const std::string labels = "job=\"worker\",task=\"0\"";
  for (const std::string& want : {
           absl::StrCat("estuary_train_steps_total{", labels, "} 4"),
           absl::StrCat("estuary_global_step{", labels, "} 14"),
           absl::StrCat("estuary_train_examples_total{", labels, "} 128"),
           absl::StrCat("estuary_train_loss{", labels, "} 0.5"),
           absl::StrCat("estuary_step_seconds_count{", labels, "} 4"),
           // Labels are printed sorted: job, phase, task.
           std::string("estuary_step_phase_seconds_count{job=\"worker\",phase=\"input\","
                       "task=\"0\"} 4"),
           std::string("estuary_step_phase_seconds_total{job=\"worker\",phase=\"communicate\","
                       "task=\"0\"} 0.25"),
           // Two windows of 2 steps: 0.25 s of 1 s waiting, 64 examples/s.
           absl::StrCat("estuary_input_wait_fraction{", labels, "} 0.25"),
           absl::StrCat("estuary_train_examples_per_second{", labels, "} 64"),
       }) {
    EXPECT_TRUE(absl::StrContains(text, want)) << want << " not in\n" << text;
  }
  std::optional<std::string> promtool = testing::FindPromtool();
  if (!promtool) GTEST_SKIP() << "promtool not installed (scripts/setup.sh installs it)";
  absl::Status st = testing::PromtoolCheckMetrics(*promtool, text);
  EXPECT_TRUE(st.ok()) << st;
}

}  // namespace
}  // namespace estuary
