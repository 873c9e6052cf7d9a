#include "estimator/export/export.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/job_spec.h"
#include "estimator/data/example_builder.h"
#include "estimator/estimator.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using json = nlohmann::json;
namespace ef = export_format;

std::string TempDir() { return std::getenv("TEST_TMPDIR"); }

constexpr char kTitanic[] = "tests/compat/testdata/titanic.csv";

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path) << contents;
}

// A linear classifier on the Titanic columns (the seed guide's), with a
// vocabulary file (an asset) for "Sex".
JobSpec TitanicJob(const std::string& name, const std::string& type = "linear_classifier") {
  const std::string dir = io::JoinPath(TempDir(), name);
  std::filesystem::create_directories(dir);
  WriteFile(io::JoinPath(dir, "sex_vocab.txt"), "male\nfemale\n");
  json csv = {{"format", "csv"},
              {"files", {std::filesystem::absolute(kTitanic).string()}},
              {"header", true},
              {"column_defaults", {0, 0, 0, "", "", 0.0, 0, 0, "", 0.0, "", ""}},
              {"label_key", "Survived"}};
  json train = csv, eval = csv;
  train["batch_size"] = 32;
  train["num_epochs"] = -1;
  eval["batch_size"] = 50;
  json est = {{"type", type}};
  if (type == "dnn_classifier") {
    est["hidden_units"] = {8, 4};
    est["optimizer"] = {{"type", "adam"}, {"learning_rate", 0.01}};
  }
  json j = {
      {"model_dir", io::JoinPath(dir, "model")},
      {"estimator", est},
      {"feature_columns",
       {{{"type", "numeric"}, {"key", "Age"}, {"normalizer", {{"mean", 29.5}, {"stddev", 13.0}}}},
        {{"type", "numeric"}, {"key", "Fare"}},
        {{"type", "bucketized"}, {"source_column", "Age"}, {"boundaries", {5, 18, 35, 60}}},
        {{"type", "categorical_with_vocabulary_file"},
         {"key", "Sex"},
         {"vocabulary_file", "sex_vocab.txt"}},
        {{"type", "categorical_with_vocabulary_list"},
         {"key", "Embarked"},
         {"vocabulary_list", {"C", "Q", "S"}}},
        {{"type", "categorical_with_vocabulary_list"},
         {"key", "Pclass"},
         {"dtype", "int64"},
         {"vocabulary_list", {1, 2, 3}}},
        {{"type", "crossed"}, {"keys", {"Sex", "Pclass"}}, {"hash_bucket_size", 16}}}},
      {"train_input", train},
      {"eval_input", eval},
      {"run_config", {{"tf_random_seed", 42}}},
  };
  if (type == "dnn_classifier") {
    j["feature_columns"].push_back({{"type", "indicator"}, {"categorical_column", "Sex"}});
    j["feature_columns"].push_back(
        {{"type", "embedding"}, {"categorical_column", "Embarked"}, {"dimension", 2}});
  }
  absl::StatusOr<JobSpec> job = ParseJobSpec(j.dump(), io::JoinPath(dir, "job.json"));
  EXPECT_TRUE(job.ok()) << job.status();
  return *job;
}

std::unique_ptr<Estimator> Train(const JobSpec& job, int64_t steps) {
  absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(job);
  EXPECT_TRUE(est.ok()) << est.status();
  absl::StatusOr<InputFn> input = InputFnFromJob(job, "train_input");
  EXPECT_TRUE(input.ok());
  TrainArgs args;
  args.steps = steps;
  absl::Status st = (*est)->Train(*input, args);
  EXPECT_TRUE(st.ok()) << st;
  return *std::move(est);
}

// The first eval batch's raw features and the same rows as serialized
// tf.train.Examples (a missing string, "" in the CSV, is left out).
struct Rows {
  FeatureMap features;
  std::vector<std::string> serialized;
};
Rows FirstBatch(const JobSpec& job) {
  Rows rows;
  std::unique_ptr<Pipeline> p = *(*InputFnFromJob(job, "eval_input"))();
  std::optional<Batch> batch = *p->Next();
  rows.features = batch->features;
  for (int64_t r = 0; r < batch->batch_size; ++r) {
    data::ExampleBuilder b;
    for (const auto& [key, value] : batch->features) {
      const Tensor& t = std::get<Tensor>(value);
      if (t.dtype == DType::kFloat) b.Floats(key, {t.floats[r]});
      if (t.dtype == DType::kInt64) b.Int64s(key, {t.ints[r]});
      if (t.dtype == DType::kString && !t.strings[r].empty()) b.Bytes(key, {t.strings[r]});
    }
    rows.serialized.push_back(b.Serialize());
  }
  return rows;
}

// Estimator::Predict on the first eval batch: one map per example.
std::vector<std::map<std::string, Tensor>> PredictFirstBatch(Estimator* est, const JobSpec& job) {
  std::vector<std::map<std::string, Tensor>> out;
  absl::StatusOr<InputFn> input = InputFnFromJob(job, "eval_input");
  int64_t n = 0;
  absl::Status st = est->Predict(*input, [&](const std::map<std::string, Tensor>& one) {
    if (n++ < 50) out.push_back(one);
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
  return out;
}

// Row r of a batch output equals the per-example prediction.
void ExpectRowEq(const Tensor& batch, int64_t r, const Tensor& one, const std::string& what) {
  ASSERT_EQ(batch.dtype, one.dtype) << what;
  const int64_t n = batch.row_size();
  ASSERT_EQ(n, one.num_elements()) << what;
  for (int64_t i = 0; i < n; ++i) {
    if (one.dtype == DType::kFloat) {
      EXPECT_NEAR(batch.floats[r * n + i], one.floats[i], 1e-6) << what << " row " << r;
    } else if (one.dtype == DType::kInt64) {
      EXPECT_EQ(batch.ints[r * n + i], one.ints[i]) << what << " row " << r;
    } else {
      EXPECT_EQ(batch.strings[r * n + i], one.strings[i]) << what << " row " << r;
    }
  }
}

std::map<std::string, Tensor> Examples(const std::string& key,
                                       const std::vector<std::string>& serialized) {
  return {{key, Tensor::Strings({static_cast<int64_t>(serialized.size())}, serialized)}};
}

TEST(ExportTest, ParsingExportRunsLikePredict) {
  JobSpec job = TitanicJob("parsing");
  std::unique_ptr<Estimator> est = Train(job, 60);
  const std::string extra = io::JoinPath(TempDir(), "parsing/notes.txt");
  WriteFile(extra, "hello");
  ExportOptions options;
  options.assets_extra["docs/notes.txt"] = extra;
  absl::StatusOr<std::string> dir = ExportModel(job, options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(io::DirName(*dir), io::JoinPath(job.model_dir, "export"));
  EXPECT_TRUE(io::Env::Default().FileExists(io::JoinPath(*dir, "assets/sex_vocab.txt")));
  EXPECT_EQ(*io::ReadWholeFile(io::Env::Default(), io::JoinPath(*dir, "assets.extra/docs/notes.txt")),
            "hello");

  absl::StatusOr<std::unique_ptr<LoadedExport>> loaded = LoadedExport::Load(*dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(absl::StrCat((*loaded)->version()), io::BaseName(*dir));
  std::map<std::string, const SignatureSpec*> sigs;
  for (const SignatureSpec& s : (*loaded)->signatures()) sigs[s.key] = &s;
  ASSERT_EQ(sigs.size(), 4u);
  EXPECT_EQ(sigs["serving_default"]->method_name, ef::kClassifyMethod);
  EXPECT_EQ(sigs["predict"]->method_name, ef::kPredictMethod);
  EXPECT_EQ(sigs["predict"]->inputs.count("examples"), 1u);
  EXPECT_EQ(sigs["classification"]->inputs.count("inputs"), 1u);
  EXPECT_EQ(sigs["regression"]->outputs.count("outputs"), 1u);

  Rows rows = FirstBatch(job);
  std::vector<std::map<std::string, Tensor>> want = PredictFirstBatch(est.get(), job);
  ASSERT_EQ(want.size(), rows.serialized.size());
  absl::StatusOr<std::map<std::string, Tensor>> got =
      (*loaded)->Run("predict", Examples("examples", rows.serialized));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 7u);  // class_ids classes all_class_ids all_classes logits logistic probabilities
  for (const auto& [key, t] : *got) {
    for (size_t r = 0; r < want.size(); ++r) ExpectRowEq(t, r, want[r].at(key), key);
  }
  got = (*loaded)->Run("serving_default", Examples("inputs", rows.serialized));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  for (size_t r = 0; r < want.size(); ++r) {
    ExpectRowEq(got->at("classes"), r, want[r].at("all_classes"), "classes");
    ExpectRowEq(got->at("scores"), r, want[r].at("probabilities"), "scores");
  }
  got = (*loaded)->Run("regression", Examples("inputs", rows.serialized));
  ASSERT_TRUE(got.ok()) << got.status();
  for (size_t r = 0; r < want.size(); ++r) {
    ExpectRowEq(got->at("outputs"), r, want[r].at("logistic"), "outputs");
  }

  // Bad requests.
  EXPECT_EQ((*loaded)->Run("nope", Examples("inputs", rows.serialized)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ((*loaded)->Run("predict", Examples("inputs", rows.serialized)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*loaded)->Run("predict", {}).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status garbage = (*loaded)->Run("predict", Examples("examples", {"\xff\xff garbage"})).status();
  EXPECT_EQ(garbage.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(garbage.message(), "examples")) << garbage;
  std::map<std::string, Tensor> floats = {{"examples", Tensor::Floats({1}, {1.0f})}};
  EXPECT_EQ((*loaded)->Run("predict", floats).status().code(), absl::StatusCode::kInvalidArgument);

  // Estimator::ExportSavedModel writes the same thing under the next name.
  absl::StatusOr<std::string> again = est->ExportSavedModel(io::DirName(*dir));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(*again, *dir);
  absl::StatusOr<std::unique_ptr<LoadedExport>> loaded2 = LoadedExport::Load(*again);
  ASSERT_TRUE(loaded2.ok()) << loaded2.status();
  EXPECT_GT((*loaded2)->version(), (*loaded)->version());
  got = (*loaded2)->Run("predict", Examples("examples", rows.serialized));
  ASSERT_TRUE(got.ok()) << got.status();
  for (size_t r = 0; r < want.size(); ++r) ExpectRowEq(got->at("logits"), r, want[r].at("logits"), "logits");
}

TEST(ExportTest, DnnExportRunsLikePredict) {
  JobSpec job = TitanicJob("dnn", "dnn_classifier");
  std::unique_ptr<Estimator> est = Train(job, 40);
  absl::StatusOr<std::string> dir = ExportModel(job, {});
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<LoadedExport>> loaded = LoadedExport::Load(*dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Rows rows = FirstBatch(job);
  std::vector<std::map<std::string, Tensor>> want = PredictFirstBatch(est.get(), job);
  absl::StatusOr<std::map<std::string, Tensor>> got =
      (*loaded)->Run("predict", Examples("examples", rows.serialized));
  ASSERT_TRUE(got.ok()) << got.status();
  for (const auto& [key, t] : *got) {
    for (size_t r = 0; r < want.size(); ++r) ExpectRowEq(t, r, want[r].at(key), key);
  }
}

TEST(ExportTest, RawReceiver) {
  JobSpec job = TitanicJob("raw");
  std::unique_ptr<Estimator> est = Train(job, 30);
  ExportOptions options;
  options.receiver = "raw";
  absl::StatusOr<std::string> dir = ExportModel(job, options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<LoadedExport>> loaded = LoadedExport::Load(*dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ((*loaded)->signatures().size(), 2u);
  for (const SignatureSpec& s : (*loaded)->signatures()) {
    EXPECT_EQ(s.method_name, ef::kPredictMethod) << s.key;
    EXPECT_EQ(s.inputs.size(), 5u) << s.key;  // Age Embarked Fare Pclass Sex
  }
  Rows rows = FirstBatch(job);
  std::map<std::string, Tensor> inputs;
  for (const auto& [key, value] : rows.features) {
    if (key == "Age" || key == "Fare" || key == "Sex" || key == "Embarked" || key == "Pclass") {
      inputs[key] = std::get<Tensor>(value);
    }
  }
  std::vector<std::map<std::string, Tensor>> want = PredictFirstBatch(est.get(), job);
  absl::StatusOr<std::map<std::string, Tensor>> got = (*loaded)->Run("serving_default", inputs);
  ASSERT_TRUE(got.ok()) << got.status();
  for (const auto& [key, t] : *got) {
    for (size_t r = 0; r < want.size(); ++r) ExpectRowEq(t, r, want[r].at(key), key);
  }
  inputs["Age"] = Tensor::Ints({static_cast<int64_t>(rows.serialized.size())},
                               std::vector<int64_t>(rows.serialized.size(), 3));
  absl::Status wrong = (*loaded)->Run("predict", inputs).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(wrong.message(), "Age")) << wrong;
}

TEST(ExportTest, PartialExportsAreNeverLoaded) {
  JobSpec job = TitanicJob("atomic");
  Train(job, 5);
  const std::string base = io::JoinPath(TempDir(), "atomic/exports");
  ExportOptions options;
  options.export_dir_base = base;
  absl::StatusOr<std::string> dir = ExportModel(job, options);
  ASSERT_TRUE(dir.ok()) << dir.status();
  // A crashed exporter's leftovers: a temporary directory (complete or not).
  const std::string tmp = io::JoinPath(base, ".tmp-99999999999-1");
  std::filesystem::copy(*dir, tmp, std::filesystem::copy_options::recursive);
  EXPECT_EQ(*ef::ListVersions(io::Env::Default(), base),
            std::vector<int64_t>{(*LoadedExport::Load(*dir))->version()});
  EXPECT_EQ(LoadedExport::Load(tmp).status().code(), absl::StatusCode::kNotFound);
  // No export.json: not an export.
  const std::string no_meta = io::JoinPath(base, "99999999998");
  std::filesystem::copy(*dir, no_meta, std::filesystem::copy_options::recursive);
  std::filesystem::remove(io::JoinPath(no_meta, ef::kMetaFile));
  EXPECT_EQ(LoadedExport::Load(no_meta).status().code(), absl::StatusCode::kNotFound);
  // A truncated variables file: DataLoss naming it.
  const std::string cut = io::JoinPath(base, "99999999997");
  std::filesystem::copy(*dir, cut, std::filesystem::copy_options::recursive);
  std::string data_file;
  for (const auto& e : std::filesystem::directory_iterator(io::JoinPath(cut, "variables"))) {
    if (absl::StrContains(e.path().string(), ".data-")) data_file = e.path().string();
  }
  ASSERT_FALSE(data_file.empty());
  std::filesystem::resize_file(data_file, std::filesystem::file_size(data_file) / 2);
  absl::Status st = LoadedExport::Load(cut).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), io::BaseName(data_file))) << st;
  // The next export takes a fresh name; temporary directories are gone.
  absl::StatusOr<std::string> next = ExportModel(job, options);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(*next, *dir);
  for (const auto& e : std::filesystem::directory_iterator(base)) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == ".tmp-99999999999-1" || name[0] != '.') << name;
  }
}

TEST(ExportTest, Errors) {
  JobSpec job = TitanicJob("errors");
  EXPECT_EQ(ExportModel(job, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  Train(job, 2);
  ExportOptions options;
  options.receiver = "bogus";
  EXPECT_EQ(ExportModel(job, options).status().code(), absl::StatusCode::kInvalidArgument);
  options = {};
  options.assets_extra["../escape"] = kTitanic;
  EXPECT_EQ(ExportModel(job, options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadedExport::Load(io::JoinPath(TempDir(), "errors/nothing/123")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace estuary
