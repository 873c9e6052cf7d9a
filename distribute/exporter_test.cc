#include "distribute/exporter.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "estimator/export/export_format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using json = nlohmann::json;

JobSpec Job(const std::string& name, const json& exporters) {
  json j = {{"model_dir", absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name)},
            {"eval_spec", {{"exporters", exporters}}}};
  absl::StatusOr<JobSpec> job = ParseJobSpec(j.dump(), "job.json");
  EXPECT_TRUE(job.ok()) << job.status();
  return *job;
}

// Exports as empty numbered directories, and records which checkpoints.
struct FakeExport {
  int64_t next = 1000;
  std::vector<std::string> prefixes;
  ExportFn fn() {
    return [this](const std::string& prefix, const std::string& base) {
      prefixes.push_back(prefix);
      const std::string dir = absl::StrCat(base, "/", next++);
      std::filesystem::create_directories(dir);
      return absl::StatusOr<std::string>(dir);
    };
  }
};

std::map<std::string, double> Metrics(int64_t step, double loss, double accuracy = 0) {
  return {{"global_step", static_cast<double>(step)}, {"loss", loss}, {"accuracy", accuracy}};
}

std::vector<int64_t> Versions(const JobSpec& job, const std::string& name) {
  return *export_format::ListVersions(io::Env::Default(),
                                      absl::StrCat(job.model_dir, "/export/", name));
}

TEST(ExporterTest, LatestExportsEachStepOnceAndKeepsTheNewest) {
  JobSpec job = Job("latest", {{{"type", "latest"}, {"exports_to_keep", 3}}});
  FakeExport fake;
  Exporters exporters(job, fake.fn());
  for (int64_t step = 1; step <= 5; ++step) {
    ASSERT_TRUE(exporters.AfterEvaluation(absl::StrCat("ckpt-", step), Metrics(step, 1), false).ok());
  }
  ASSERT_TRUE(exporters.AfterEvaluation("ckpt-5", Metrics(5, 1), true).ok());  // again: no export
  EXPECT_EQ(fake.prefixes.size(), 5u);
  EXPECT_EQ(Versions(job, "latest"), (std::vector<int64_t>{1002, 1003, 1004}));
}

TEST(ExporterTest, BestExportsOnlyImprovementsAcrossRestarts) {
  JobSpec job = Job("best", {{{"type", "best"}, {"name", "best_loss"}}});
  FakeExport fake;
  {
    Exporters exporters(job, fake.fn());
    for (auto [step, loss] : std::vector<std::pair<int64_t, double>>{
             {1, 0.5}, {2, 0.6}, {3, 0.4}, {4, 0.4}}) {
      ASSERT_TRUE(exporters.AfterEvaluation(absl::StrCat("ckpt-", step), Metrics(step, loss), false).ok());
    }
    EXPECT_EQ(fake.prefixes, (std::vector<std::string>{"ckpt-1", "ckpt-3"}));
  }
  const std::string state =
      absl::StrCat(job.model_dir, "/export/best_loss/", kBestExporterStateFile);
  json j = json::parse(*io::ReadWholeFile(io::Env::Default(), state));
  EXPECT_EQ(j["value"].get<double>(), 0.4);
  EXPECT_EQ(j["global_step"].get<int64_t>(), 3);
  // A restarted evaluator remembers the best (TF #47396).
  Exporters restarted(job, fake.fn());
  ASSERT_TRUE(restarted.AfterEvaluation("ckpt-5", Metrics(5, 0.45), false).ok());
  EXPECT_EQ(fake.prefixes.size(), 2u);
  ASSERT_TRUE(restarted.AfterEvaluation("ckpt-6", Metrics(6, 0.3), false).ok());
  EXPECT_EQ(fake.prefixes.back(), "ckpt-6");
  // The state file is not an export.
  EXPECT_EQ(Versions(job, "best_loss").size(), 3u);
}

TEST(ExporterTest, BestByAHigherMetric) {
  JobSpec job =
      Job("best_acc", {{{"type", "best"}, {"metric", "accuracy"}, {"compare", "greater"}}});
  FakeExport fake;
  Exporters exporters(job, fake.fn());
  ASSERT_TRUE(exporters.AfterEvaluation("a", Metrics(1, 0, 0.7), false).ok());
  ASSERT_TRUE(exporters.AfterEvaluation("b", Metrics(2, 0, 0.6), false).ok());
  ASSERT_TRUE(exporters.AfterEvaluation("c", Metrics(3, 0, 0.8), false).ok());
  EXPECT_EQ(fake.prefixes, (std::vector<std::string>{"a", "c"}));
}

TEST(ExporterTest, FinalExportsOnce) {
  JobSpec job = Job("final", {{{"type", "final"}}});
  FakeExport fake;
  Exporters exporters(job, fake.fn());
  ASSERT_TRUE(exporters.AfterEvaluation("a", Metrics(1, 1), false).ok());
  ASSERT_TRUE(exporters.AfterEvaluation("b", Metrics(2, 1), true).ok());
  ASSERT_TRUE(exporters.AfterEvaluation("b", Metrics(2, 1), true).ok());
  EXPECT_EQ(fake.prefixes, std::vector<std::string>{"b"});
}

TEST(ExporterTest, Errors) {
  JobSpec job = Job("errors", {{{"type", "best"}, {"metric", "auc_typo"}}});
  FakeExport fake;
  Exporters exporters(job, fake.fn());
  absl::Status st = exporters.AfterEvaluation("a", Metrics(1, 1), false);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(st.message(), "$.eval_spec.exporters[0].metric")) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "auc_typo")) << st;

  auto parse = [](const json& exporters) {
    json j = {{"model_dir", "/tmp/x"}, {"eval_spec", {{"exporters", exporters}}}};
    return ParseJobSpec(j.dump(), "job.json").status();
  };
  EXPECT_TRUE(absl::StrContains(parse({{{"name", "x"}}}).message(), "type")) << parse({{{"name", "x"}}});
  EXPECT_TRUE(absl::StrContains(parse({{{"type", "latest"}}, {{"type", "latest"}}}).message(),
                                "duplicate exporter name"));
  EXPECT_FALSE(parse({{{"type", "latest"}, {"metric", "loss"}}}).ok());
  EXPECT_FALSE(parse({{{"type", "oldest"}}}).ok());
  EXPECT_FALSE(parse({{{"type", "latest"}, {"exports_to_keep", 0}}}).ok());
}

}  // namespace
}  // namespace estuary
