// `estuary train_and_evaluate` with eval_spec.exporters (latest, best,
// final) and `estuary export` as real processes on the Titanic passenger
// list; the exports load with LoadedExport and run.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "distribute/exporter.h"
#include "estimator/export/export.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

using json = nlohmann::json;

std::string TitanicJob(const std::string& model_dir) {
  json csv = {{"format", "csv"},
              {"files", {Runfile("tests/compat/testdata/titanic.csv")}},
              {"header", true},
              {"column_defaults", {0, 0, 0, "", "", 0.0, 0, 0, "", 0.0, "", ""}},
              {"label_key", "Survived"}};
  json train = csv, eval = csv;
  train["batch_size"] = 32;
  train["num_epochs"] = -1;
  eval["batch_size"] = 100;
  json job = {
      {"model_dir", model_dir},
      {"estimator", {{"type", "linear_classifier"}}},
      {"feature_columns",
       {{{"type", "numeric"}, {"key", "Fare"}, {"normalizer", {{"mean", 32}, {"stddev", 50}}}},
        {{"type", "categorical_with_vocabulary_list"},
         {"key", "Sex"},
         {"vocabulary_list", {"male", "female"}}},
        {{"type", "categorical_with_vocabulary_list"},
         {"key", "Pclass"},
         {"dtype", "int64"},
         {"vocabulary_list", {1, 2, 3}}}}},
      {"train_input", train},
      {"eval_input", eval},
      {"run_config", {{"tf_random_seed", 1}, {"save_checkpoints_steps", 10}}},
      {"train_spec", {{"max_steps", 50}}},
      {"eval_spec",
       {{"steps", 2},
        {"throttle_secs", 0},
        {"exporters",
         {{{"type", "latest"}, {"exports_to_keep", 2}},
          {{"type", "best"}, {"name", "best"}},
          {{"type", "final"}, {"name", "serving"}}}}}},
  };
  return WriteTempFile("titanic_export.json", job.dump(2));
}

std::vector<int64_t> Versions(const std::string& base) {
  return *export_format::ListVersions(io::Env::Default(), base);
}

TEST(ExportProcessTest, TrainAndEvaluateRunsTheExportersAndExportPrintsTheDirectory) {
  const std::string model_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/titanic_model");
  const std::string job = TitanicJob(model_dir);
  auto train = Proc::Start({Runfile("cli/estuary"), "train_and_evaluate", job});
  absl::StatusOr<int> code = train->Wait(absl::Minutes(5));
  ASSERT_TRUE(code.ok()) << train->Output();
  ASSERT_EQ(*code, 0) << train->Output();
  // Five checkpoints (10..50) evaluated: latest keeps the newest two, final
  // exported once, best at least once with its state beside.
  EXPECT_EQ(Versions(model_dir + "/export/latest").size(), 2u) << train->Output();
  EXPECT_EQ(Versions(model_dir + "/export/serving").size(), 1u) << train->Output();
  EXPECT_GE(Versions(model_dir + "/export/best").size(), 1u) << train->Output();
  std::ifstream state(model_dir + "/export/best/" + kBestExporterStateFile);
  const json best = json::parse(state);
  EXPECT_EQ(best["metric"], "loss");
  const std::string final_dir =
      absl::StrCat(model_dir, "/export/serving/", Versions(model_dir + "/export/serving")[0]);
  absl::StatusOr<std::unique_ptr<LoadedExport>> loaded = LoadedExport::Load(final_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::ifstream meta(final_dir + "/export.json");
  EXPECT_EQ(json::parse(meta)["global_step"], 50);

  // `estuary export`: the new directory is the last stdout line.
  const std::string base = absl::StrCat(std::getenv("TEST_TMPDIR"), "/cli_exports");
  const std::string extra = WriteTempFile("extra.txt", "x");
  auto exp = Proc::Start({Runfile("cli/estuary"), "export", job, "--export_dir_base", base,
                          "--checkpoint", model_dir + "/model.ckpt-40", "--assets_extra",
                          "a/extra.txt=" + extra});
  code = exp->Wait(absl::Minutes(2));
  ASSERT_TRUE(code.ok()) << exp->Output();
  ASSERT_EQ(*code, 0) << exp->Output();
  ASSERT_EQ(Versions(base).size(), 1u);
  const std::string dir = absl::StrCat(base, "/", Versions(base)[0]);
  EXPECT_NE(exp->FindLine(dir), "") << exp->Output();
  std::istringstream out(exp->Output());
  bool exact = false;
  for (std::string line; std::getline(out, line);) exact |= line == dir;
  EXPECT_TRUE(exact) << exp->Output();
  EXPECT_TRUE(std::filesystem::exists(dir + "/assets.extra/a/extra.txt"));
  std::ifstream meta2(dir + "/export.json");
  EXPECT_EQ(json::parse(meta2)["global_step"], 40);
  loaded = LoadedExport::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->signatures().size(), 4u);

  // Bad input: exit 2 with one line naming the problem.
  auto bad = Proc::Start({Runfile("cli/estuary"), "export", job, "--receiver", "nope"});
  code = bad->Wait(absl::Minutes(2));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2) << bad->Output();
  EXPECT_NE(bad->FindLine("receiver"), "") << bad->Output();
  auto help = Proc::Start({Runfile("cli/estuary"), "export", "--help"});
  code = help->Wait(absl::Minutes(1));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(help->FindLine("--export_dir_base"), "") << help->Output();
}

}  // namespace
}  // namespace estuary::testing
