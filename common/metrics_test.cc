// TaskMetrics: the registry's and the process's metrics in Prometheus' text
// format, accepted by promtool, and served over HTTP on a free port.
#include "common/metrics.h"

#include <string>

#include "absl/strings/match.h"
#include "common/promtool_testing.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace estuary {
namespace {

TEST(TaskMetricsTest, ScrapeHasTheProcessMetricsAndPassesPromtool) {
  absl::StatusOr<std::unique_ptr<TaskMetrics>> m = TaskMetrics::Create({"worker", "1"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->port(), 0);
  prometheus::BuildCounter()
      .Name("estuary_test_events_total")
      .Help("Events.")
      .Register((*m)->registry())
      .Add((*m)->labels())
      .Increment(3);
  prometheus::BuildHistogram()
      .Name("estuary_test_seconds")
      .Help("Durations.")
      .Register((*m)->registry())
      .Add((*m)->LabelsWith({{"phase", "input"}}), LatencyBuckets())
      .Observe(0.002);
  const std::string text = (*m)->Scrape();
  EXPECT_TRUE(absl::StrContains(text, "estuary_test_events_total{job=\"worker\",task=\"1\"} 3"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "estuary_process_resident_memory_bytes{job=\"worker\""))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "estuary_process_threads{")) << text;
  EXPECT_TRUE(absl::StrContains(text, "estuary_process_cpu_seconds_total{")) << text;
  EXPECT_TRUE(absl::StrContains(text, "phase=\"input\"")) << text;
  std::optional<std::string> promtool = testing::FindPromtool();
  if (!promtool) GTEST_SKIP() << "promtool not installed (scripts/setup.sh installs it)";
  absl::Status st = testing::PromtoolCheckMetrics(*promtool, text);
  EXPECT_TRUE(st.ok()) << st;
}

TEST(TaskMetricsTest, PromtoolRejectsBadNames) {
  std::optional<std::string> promtool = testing::FindPromtool();
  if (!promtool) GTEST_SKIP() << "promtool not installed";
  // A counter without _total: the check must catch what the tests rely on.
  absl::Status st = testing::PromtoolCheckMetrics(
      *promtool, "# HELP estuary_x Events.\n# TYPE estuary_x counter\nestuary_x 1\n");
  EXPECT_FALSE(st.ok());
}

TEST(TaskMetricsTest, ServesMetricsOnAFreePort) {
  MetricsOptions o{"ps", "0"};
  o.port = 0;
  o.host = "127.0.0.1";
  absl::StatusOr<std::unique_ptr<TaskMetrics>> m = TaskMetrics::Create(o);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_GT((*m)->port(), 0);
  prometheus::BuildGauge()
      .Name("estuary_test_value")
      .Help("A value.")
      .Register((*m)->registry())
      .Add((*m)->labels())
      .Set(7);
  httplib::Client client("127.0.0.1", (*m)->port());
  client.set_connection_timeout(10);
  client.set_read_timeout(30);
  httplib::Result r = client.Get("/metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(absl::StrContains(r->body, "estuary_test_value{job=\"ps\",task=\"0\"} 7")) << r->body;
  EXPECT_TRUE(absl::StrContains(r->body, "estuary_process_threads{job=\"ps\",task=\"0\"}"))
      << r->body;
}

TEST(TaskMetricsTest, RejectsABadPort) {
  MetricsOptions o{"ps", "0"};
  o.port = 70000;
  EXPECT_TRUE(absl::IsInvalidArgument(TaskMetrics::Create(o).status()));
}

}  // namespace
}  // namespace estuary
