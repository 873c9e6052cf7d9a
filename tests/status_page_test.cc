// The live view against a live local cluster (chief with --status_port=0,
// a worker, a PS and an evaluator, parameter-server training on a
// generated click log):
//  - the chief's status page, loaded twice in headless Debian chromium
//    (--dump-dom: the DOM after the page's script ran), shows every task,
//    and its steps/s chart has more points at the second load;
//  - a screenshot of the page is written to the test's outputs
//    ($TEST_UNDECLARED_OUTPUTS_DIR/status_page.png);
//  - /status.json reports the PS shard's size and the training tasks' steps;
//  - `estuary status` lists the same tasks, from TF_CONFIG and from the
//    page's URL;
//  - SIGTERM to the chief ends the job: every task exits 0.
#include <signal.h>

#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr char kChromium[] = "/usr/bin/chromium";

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

std::string OutputsDir() {
  const char* d = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  return d != nullptr ? d : TmpDir();
}

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

// Runs headless chromium on `url` with `mode` ("--dump-dom" or
// "--screenshot=PATH"); returns its output (the DOM for --dump-dom).
std::string Chromium(const std::string& url, const std::string& mode) {
  auto p = Proc::Start(
      {kChromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--no-first-run", "--hide-scrollbars", "--window-size=1800,1000",
       absl::StrCat("--user-data-dir=", TmpDir(), "/chromium"),
       // Lets the page's script run (and its first poll come back) before
       // the dump; virtual time, so no wall-clock wait.
       "--virtual-time-budget=3000", mode, url},
      {{"HOME", TmpDir()}}, "chromium");
  absl::StatusOr<int> code = p->Wait(absl::Seconds(120));
  EXPECT_TRUE(code.ok() && *code == 0) << p->Output();
  return p->Output();
}

// The tasks with a row in the page's table, and the points of its steps/s
// chart.
struct Page {
  std::set<std::string> tasks;
  int points = -1;
};

Page ParseDom(const std::string& dom) {
  Page page;
  const std::regex row("<tr data-task=\"([a-z]+:[0-9]+)\""),
      chart("<svg id=\"chart-steps\"[^>]*data-points=\"([0-9]+)\"");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), row); it != std::sregex_iterator();
       ++it) {
    page.tasks.insert((*it)[1]);
  }
  std::smatch m;
  if (std::regex_search(dom, m, chart)) page.points = std::stoi(m[1]);
  return page;
}

std::string Job() {
  nlohmann::json cols = nlohmann::json::array(), linear = nlohmann::json::array();
  for (int i = 1; i <= 6; ++i) {
    const std::string key = absl::StrCat("C", i);
    cols.push_back(
        {{"type", "categorical_with_hash_bucket"}, {"key", key}, {"hash_bucket_size", 500}});
    linear.push_back(key);
  }
  nlohmann::json defaults = nlohmann::json::array({0});
  for (int i = 0; i < 13; ++i) defaults.push_back(0.0);
  for (int i = 0; i < 26; ++i) defaults.push_back("");
  auto input = [&](int batch, int epochs) {
    return nlohmann::json{{"format", "csv"},
                          {"files", {TmpDir() + "/clicks/*.csv"}},
                          {"header", true},
                          {"column_defaults", defaults},
                          {"label_key", "label"},
                          {"batch_size", batch},
                          {"num_epochs", epochs}};
  };
  const nlohmann::json job = {
      {"model_dir", TmpDir() + "/model"},
      {"estimator", {{"type", "linear_classifier"}, {"linear_feature_columns", linear}}},
      {"feature_columns", cols},
      {"train_input", input(64, -1)},
      {"eval_input", input(500, 1)},
      {"run_config", {{"save_checkpoints_steps", 200}, {"log_step_count_steps", 100}}},
      // Trains until the test ends it (SIGTERM to the chief).
      {"train_spec", {{"max_steps", 100000000}}},
      {"eval_spec", {{"steps", 2}, {"throttle_secs", 1}}},
      {"distribution", {{"heartbeat_interval_secs", 0.3}, {"heartbeat_timeout_secs", 20}}}};
  return WriteTempFile("status_job.json", job.dump(1));
}

TEST(StatusPageTest, LiveClusterPageInChromiumAndEstuaryStatus) {
  ASSERT_TRUE(Exists(kChromium)) << kChromium
                                 << " is missing: run scripts/setup.sh (Debian chromium)";
  {
    auto gen = Proc::Start({Runfile("cli/estuary"), "gen-data", "clicks", "--rows=4000",
                            "--files=1", "--seed=1", "--out", TmpDir() + "/clicks"});
    absl::StatusOr<int> code = gen->Wait(absl::Minutes(2));
    ASSERT_TRUE(code.ok() && *code == 0) << gen->Output();
  }
  const std::string job = Job();
  TestCluster cluster(1, 1, 1);
  auto ps = cluster.StartTask("ps:0", job);
  auto worker = cluster.StartTask("worker:0", job);
  auto evaluator = cluster.StartTask("evaluator:0", job);
  auto chief = cluster.StartTask("chief:0", job, {"--status_port=0"});

  ASSERT_TRUE(chief->WaitForLine("status page: http://", absl::Seconds(60))) << chief->Output();
  const std::string line = chief->FindLine("status page: http://");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(line, m, std::regex("(http://[^ ]+/)"))) << line;
  const std::string url = m[1];
  // Both trainers have stepped (and so reported) at least once.
  ASSERT_TRUE(chief->WaitForLine("loss = ", absl::Seconds(120))) << chief->Output();
  ASSERT_TRUE(worker->WaitForLine("loss = ", absl::Seconds(120))) << worker->Output();

  const std::set<std::string> all = {"chief:0", "worker:0", "ps:0", "evaluator:0"};
  Page first = ParseDom(Chromium(url, "--dump-dom"));
  EXPECT_EQ(first.tasks, all);
  EXPECT_GE(first.points, 0);
  // The chart grows while the cluster trains: load again until it has more
  // points (a point per trainer every heartbeat), within a deadline.
  Page second;
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  do {
    second = ParseDom(Chromium(url, "--dump-dom"));
  } while (second.points <= first.points && absl::Now() < deadline);
  EXPECT_EQ(second.tasks, all);
  EXPECT_GT(second.points, first.points);

  // The PS reports its shard once the chief has placed the variables, the
  // evaluator its first evaluation (checkpoints every 200 steps).
  ASSERT_TRUE(evaluator->WaitForLine("saving dict for global step", absl::Seconds(120)))
      << evaluator->Output();
  nlohmann::json status;
  for (const absl::Time until = absl::Now() + absl::Seconds(30); absl::Now() < until;) {
    auto p = Proc::Start({Runfile("cli/estuary"), "status", url, "--json"});
    absl::StatusOr<int> code = p->Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok() && *code == 0) << p->Output();
    const std::string out = p->Output();
    status = nlohmann::json::parse(out.substr(out.find('{')));
    bool evaluated = false;
    for (const auto& t : status["tasks"]) {
      if (t["task"]["type"] == "evaluator" && t.contains("report") &&
          t["report"]["last_eval_step"] != "0") {
        evaluated = true;
      }
    }
    if (evaluated) break;
  }
  ASSERT_EQ(status["tasks"].size(), all.size()) << status.dump();
  for (const auto& t : status["tasks"]) {
    SCOPED_TRACE(t.dump());
    EXPECT_EQ(t["state"], "TASK_ALIVE");
    ASSERT_TRUE(t.contains("report"));
    const std::string type = t["task"]["type"];
    if (type == "ps") {
      EXPECT_GT(std::stoll(t["report"]["ps_shard"]["variables"].get<std::string>()), 0);
      EXPECT_GT(std::stoll(t["report"]["ps_shard"]["bytes"].get<std::string>()), 0);
    }
    if (type == "chief" || type == "worker") {
      EXPECT_GT(std::stoll(t["report"]["local_steps"].get<std::string>()), 0);
      EXPECT_GT(t["report"]["steps_per_sec"].get<double>(), 0);
      EXPECT_TRUE(t["report"]["has_loss"].get<bool>());
      // The train loop times its phases (input wait, compute, PS pull/push).
      ASSERT_TRUE(t["report"].contains("phases"));
      EXPECT_GT(t["report"]["phases"]["compute_secs"].get<double>(), 0);
      EXPECT_GT(t["report"]["phases"]["communication_secs"].get<double>(), 0);
    }
    if (type == "evaluator") EXPECT_NE(t["report"]["last_eval_step"], "0");
  }

  // The screenshot, for a person to look at (and the test's outputs).
  const std::string png = OutputsDir() + "/status_page.png";
  Chromium(url, "--screenshot=" + png);
  EXPECT_TRUE(Exists(png)) << png;

  // `estuary status` from the chief's TF_CONFIG (gRPC GetStatus) lists the
  // same tasks.
  {
    auto p = Proc::Start({Runfile("cli/estuary"), "status", cluster.TfConfig("chief:0")});
    absl::StatusOr<int> code = p->Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok() && *code == 0) << p->Output();
    const std::string out = p->Output();
    for (const std::string& task : all) {
      EXPECT_TRUE(std::regex_search(out, std::regex(task + " +ALIVE"))) << out;
    }
    EXPECT_TRUE(absl::StrContains(out, "status page: " + url)) << out;
    std::ofstream(OutputsDir() + "/estuary_status.txt") << out;
  }

  chief->Signal(SIGTERM);
  for (Proc* p : {chief.get(), worker.get(), ps.get(), evaluator.get()}) {
    absl::StatusOr<int> code = p->Wait(absl::Seconds(60));
    ASSERT_TRUE(code.ok()) << p->Output();
    EXPECT_EQ(*code, 0) << p->Output();
  }
}

}  // namespace
}  // namespace estuary::testing
