// Prometheus metrics of live clusters (common/metrics.h). First a chief, 2
// workers and 2 PS tasks training with parameter_server, and an evaluator,
// each with --metrics_port=0. The test scrapes every task's /metrics while
// the cluster trains and checks:
//  - promtool check metrics accepts every task's output (skipped when
//    promtool is not installed; scripts/setup.sh installs it);
//  - the workers' step counter, input-wait and communication time and the
//    PS tasks' pushed bytes and apply latency count keep increasing between
//    two scrapes;
//  - every task reports its process metrics with its job/task labels.
// Then 2 multi_worker_mirrored workers: their all-reduce latency histogram
// grows while they train.
#include <random>
#include <regex>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/promtool_testing.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr absl::Duration kSlack = absl::Seconds(90);

// A small DNN classifier on a small learnable CSV, read forever, under
// `strategy`.
std::string Job(const std::string& model_dir, const std::string& strategy = "parameter_server") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::string text = "a,b,y\n";
  for (int i = 0; i < 1000; ++i) {
    const float a = u(rng), b = u(rng);
    absl::StrAppend(&text, a, ",", b, ",", 2 * a - b > 0.5f ? 1 : 0, "\n");
  }
  const std::string data = WriteTempFile("metrics_data.csv", text);
  nlohmann::json input = {{"format", "csv"},        {"files", {data}}, {"header", true},
                          {"column_defaults", {0.0, 0.0, 0}}, {"label_key", "y"},
                          {"batch_size", 32}};
  nlohmann::json train = input;
  train["num_epochs"] = -1;
  nlohmann::json job = {
      {"model_dir", model_dir},
      {"estimator", {{"type", "dnn_classifier"}, {"hidden_units", {8}}}},
      {"feature_columns",
       {{{"type", "numeric"}, {"key", "a"}}, {{"type", "numeric"}, {"key", "b"}}}},
      {"train_input", train},
      {"eval_input", input},
      {"run_config", {{"save_checkpoints_secs", 3600}, {"log_step_count_steps", 100}}},
      {"train_spec", {{"max_steps", 100000000}}},
      {"eval_spec", {{"steps", nullptr}, {"start_delay_secs", 0}, {"throttle_secs", 0}}},
      {"distribution",
       {{"strategy", strategy},
        {"heartbeat_interval_secs", 0.5},
        {"heartbeat_timeout_secs", 10},
        {"startup_timeout_secs", 60},
        {"shutdown_timeout_secs", 10}}}};
  return WriteTempFile("metrics_job_" + strategy + ".json", job.dump(1));
}

// The port a task logged ("metrics at http://0.0.0.0:PORT/metrics").
int MetricsPort(Proc& p) {
  if (!p.WaitForLine("metrics at http://", kSlack)) return 0;
  const std::regex re("metrics at http://[^:]+:([0-9]+)/metrics");
  std::smatch m;
  const std::string line = p.FindLine("metrics at http://");
  int port = 0;
  if (std::regex_search(line, m, re)) (void)absl::SimpleAtoi(m[1].str(), &port);
  return port;
}

std::string Scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(10);
  client.set_read_timeout(30);
  httplib::Result r = client.Get("/metrics");
  if (!r || r->status != 200) return "";
  return r->body;
}

// The sum of every sample of `name` whose labels contain `label` (e.g.
// "phase=\"input\""; "" for any): "name{...} value" lines.
double Sum(const std::string& text, const std::string& name, const std::string& label = "") {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name + "{") || !absl::StrContains(line, label)) continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &v)) sum += v;
  }
  return sum;
}

// What the test follows on a task.
struct Reading {
  double steps = 0, input = 0, communicate = 0;  // workers
  double pushed_bytes = 0, applies = 0;          // PS tasks
};

Reading Read(const std::string& text) {
  return {Sum(text, "estuary_train_steps_total"),
          Sum(text, "estuary_step_phase_seconds_total", "phase=\"input\""),
          Sum(text, "estuary_step_phase_seconds_total", "phase=\"communicate\""),
          Sum(text, "estuary_ps_pushed_bytes_total"), Sum(text, "estuary_ps_apply_seconds_count")};
}

TEST(MetricsProcessTest, EveryTaskServesMetricsThatMoveWhileTheClusterTrains) {
  const std::string job = Job(std::string(std::getenv("TEST_TMPDIR")) + "/model");
  TestCluster cluster(1, 2, 2);
  const std::vector<std::string> flags = {"--metrics_port=0"};
  std::vector<std::pair<std::string, std::unique_ptr<Proc>>> tasks;
  for (const char* t : {"ps:0", "ps:1", "chief:0", "worker:0", "worker:1"}) {
    tasks.emplace_back(t, cluster.StartTask(t, job, flags));
  }
  tasks.emplace_back("evaluator:0",
                     Proc::Start({TestCluster::BinaryFor("evaluator"), "--job=" + job,
                                  "--listen=127.0.0.1:0", "--metrics_port=0"},
                                 {{"TF_CONFIG", cluster.TfConfig("evaluator:0")}}, "evaluator:0"));
  std::map<std::string, int> ports;
  for (auto& [name, proc] : tasks) {
    ports[name] = MetricsPort(*proc);
    ASSERT_GT(ports[name], 0) << name << "\n" << proc->Output();
  }
  Proc& worker1 = *tasks[4].second;
  ASSERT_TRUE(worker1.WaitForLine("global_step/sec", kSlack)) << worker1.Output();

  // Every task's output, during training, passes promtool and carries its
  // labels and process metrics.
  std::map<std::string, Reading> first;
  const std::optional<std::string> promtool = FindPromtool();
  for (const auto& [name, port] : ports) {
    const std::string text = Scrape(port);
    ASSERT_FALSE(text.empty()) << name;
    const std::vector<std::string> id = absl::StrSplit(name, ':');
    const std::string labels = absl::StrCat("job=\"", id[0], "\",task=\"", id[1], "\"");
    EXPECT_TRUE(absl::StrContains(text, "estuary_process_resident_memory_bytes{" + labels))
        << name << "\n" << text;
    EXPECT_GT(Sum(text, "estuary_process_threads"), 1) << name;
    first[name] = Read(text);
    if (promtool.has_value()) {
      absl::Status st = PromtoolCheckMetrics(*promtool, text);
      EXPECT_TRUE(st.ok()) << name << ": " << st << "\n" << text;
    }
  }
  for (const char* w : {"chief:0", "worker:0", "worker:1"}) {
    EXPECT_GT(first[w].steps, 0) << w;
    EXPECT_GT(first[w].input, 0) << w;
    EXPECT_GT(first[w].communicate, 0) << w;
  }
  for (const char* ps : {"ps:0", "ps:1"}) EXPECT_GT(first[ps].pushed_bytes, 0) << ps;

  // The counters move: scrape until each has grown (training goes on).
  const absl::Time deadline = absl::Now() + kSlack;
  std::map<std::string, bool> moved;
  while (absl::Now() < deadline && moved.size() < 5) {
    for (const char* name : {"worker:0", "worker:1", "chief:0", "ps:0", "ps:1"}) {
      if (moved.count(name)) continue;
      const Reading now = Read(Scrape(ports[name]));
      const Reading& then = first[name];
      const bool grew = absl::StartsWith(name, "ps")
                            ? now.pushed_bytes > then.pushed_bytes && now.applies > then.applies
                            : now.steps > then.steps && now.input > then.input &&
                                  now.communicate > then.communicate;
      if (grew) moved[name] = true;
    }
    // Between rounds of scrapes; the condition above is what the test
    // waits for, bounded by the deadline.
    absl::SleepFor(absl::Milliseconds(200));
  }
  for (const char* name : {"worker:0", "worker:1", "chief:0", "ps:0", "ps:1"}) {
    EXPECT_TRUE(moved.count(name)) << name << " metrics did not move\n" << Scrape(ports[name]);
  }
}

// multi_worker_mirrored: the workers' all-reduce latency histogram and the
// communicate phase grow; promtool accepts both workers' output.
TEST(MetricsProcessTest, MirroredWorkersReportAllReduceLatency) {
  const std::string job =
      Job(std::string(std::getenv("TEST_TMPDIR")) + "/mwms_model", "multi_worker_mirrored");
  TestCluster cluster(0, 2, 0);
  std::vector<std::unique_ptr<Proc>> workers;
  for (const char* t : {"worker:0", "worker:1"}) {
    workers.push_back(cluster.StartTask(t, job, {"--metrics_port=0"}));
  }
  std::vector<int> ports;
  for (auto& w : workers) {
    ports.push_back(MetricsPort(*w));
    ASSERT_GT(ports.back(), 0) << w->Output();
  }
  const std::optional<std::string> promtool = FindPromtool();
  for (size_t i = 0; i < workers.size(); ++i) {
    const absl::Time deadline = absl::Now() + kSlack;
    double first = 0;
    std::string text;
    // Until two scrapes show the all-reduce count growing.
    while (absl::Now() < deadline) {
      text = Scrape(ports[i]);
      const double n = Sum(text, "estuary_allreduce_seconds_count", "op=\"allreduce\"");
      if (first > 0 && n > first) break;
      if (first == 0) first = n;
      absl::SleepFor(absl::Milliseconds(200));  // between scrapes; bounded by the deadline
    }
    EXPECT_GT(Sum(text, "estuary_allreduce_seconds_count", "op=\"allreduce\""), first)
        << workers[i]->Output() << "\n" << text;
    EXPECT_GT(Sum(text, "estuary_step_phase_seconds_total", "phase=\"communicate\""), 0) << text;
    EXPECT_GT(Sum(text, "estuary_allreduce_bytes_total"), 0) << text;
    if (promtool.has_value()) {
      absl::Status st = PromtoolCheckMetrics(*promtool, text);
      EXPECT_TRUE(st.ok()) << st << "\n" << text;
    }
  }
}

}  // namespace
}  // namespace estuary::testing
