// Estimator::Evaluate under eval_distribute (TF's
// RunConfig(eval_distribute=MirroredStrategy())): N replicas, each reading
// its own batch and updating its own metrics on its own thread, merged at
// the end, give the one-replica evaluation of the same batches. Titanic
// (890 rows, eval batch 64: 13 full batches and a ragged one of 58), a
// binary classifier (unweighted: every count-based metric exact; weighted
// by Fare: float sums), a 3-class classifier and a regressor.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/io/env.h"
#include "common/job_spec.h"
#include "estimator/estimator.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using json = nlohmann::json;

std::string TempDir() { return std::getenv("TEST_TMPDIR"); }

constexpr char kTitanic[] = "tests/compat/testdata/titanic.csv";
constexpr int kEvalBatch = 64;  // 13 batches of 64 and one of 58

// Relative tolerance for metrics made of float sums (loss, average_loss,
// prediction/mean, weighted counts): the replicas add the same terms in
// another order. Measured: at most 1.3e-15 relative (the Fare-weighted
// classifier; printed below); the bound leaves room.
constexpr double kSumTolerance = 1e-12;

enum class Kind { kBinary, kBinaryWeighted, kMultiClass, kRegressor };

json TitanicJob(Kind kind, const std::string& model_dir) {
  // Pclass is read as a string so that the 3-class head can take it as a
  // vocabulary label.
  json csv = {{"format", "csv"},
              {"files", {std::filesystem::absolute(kTitanic).string()}},
              {"header", true},
              {"column_defaults", {0, 0, "", "", "", 0.0, 0, 0, "", 0.0, "", ""}}};
  json columns = {
      {{"type", "numeric"}, {"key", "Age"}, {"normalizer", {{"mean", 29.5}, {"stddev", 13.0}}}},
      {{"type", "numeric"}, {"key", "SibSp"}},
      {{"type", "categorical_with_vocabulary_list"},
       {"key", "Sex"},
       {"vocabulary_list", {"male", "female"}}},
      {{"type", "indicator"}, {"categorical_column", "Sex"}},
      {{"type", "categorical_with_vocabulary_list"},
       {"key", "Embarked"},
       {"vocabulary_list", {"C", "Q", "S"}}},
      {{"type", "embedding"}, {"categorical_column", "Embarked"}, {"dimension", 2}}};
  json est = {{"hidden_units", {8, 4}}, {"optimizer", {{"type", "adam"}, {"learning_rate", 0.01}}}};
  switch (kind) {
    case Kind::kBinary:
    case Kind::kBinaryWeighted:
      est["type"] = "dnn_classifier";
      csv["label_key"] = "Survived";
      columns.push_back({{"type", "numeric"}, {"key", "Fare"}});
      if (kind == Kind::kBinaryWeighted) est["weight_column"] = "Fare";
      break;
    case Kind::kMultiClass:
      est["type"] = "dnn_classifier";
      est["n_classes"] = 3;
      est["label_vocabulary"] = {"1", "2", "3"};
      csv["label_key"] = "Pclass";
      columns.push_back({{"type", "numeric"}, {"key", "Fare"}});
      break;
    case Kind::kRegressor:
      est["type"] = "dnn_regressor";
      csv["label_key"] = "Fare";
      break;
  }
  json train = csv, eval = csv;
  train["batch_size"] = 32;
  train["num_epochs"] = -1;
  eval["batch_size"] = kEvalBatch;
  return {{"model_dir", model_dir},
          {"estimator", est},
          {"feature_columns", columns},
          {"train_input", train},
          {"eval_input", eval},
          {"run_config", {{"tf_random_seed", 42}}}};
}

JobSpec Parse(const json& j) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(j.dump(), io::JoinPath(TempDir(), "job.json"));
  EXPECT_TRUE(job.ok()) << job.status();
  return *job;
}

// Evaluates `job`'s latest checkpoint with eval_distribute on `replicas`
// replicas over `steps` steps (nullopt: all of eval_input).
std::map<std::string, double> Evaluate(json j, int replicas, std::optional<int64_t> steps) {
  j["distribution"] = {{"eval_distribute", {{"strategy", "mirrored"}, {"num_replicas", replicas}}}};
  const JobSpec job = Parse(j);
  EXPECT_EQ(job.distribution.eval_distribute.num_replicas, replicas);
  absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(job);
  EXPECT_TRUE(est.ok()) << est.status();
  absl::StatusOr<InputFn> input = InputFnFromJob(job, "eval_input");
  EXPECT_TRUE(input.ok()) << input.status();
  absl::StatusOr<std::map<std::string, double>> m =
      (*est)->Evaluate(*input, steps, absl::StrCat("r", replicas));
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : std::map<std::string, double>{};
}

// The metrics whose state is counts (exact under any merge order) when the
// examples are unweighted.
bool IsCount(Kind kind, const std::string& key) {
  if (kind != Kind::kBinary && kind != Kind::kMultiClass) return false;
  return key == "accuracy" || key == "precision" || key == "recall" || key == "label/mean" ||
         key == "accuracy_baseline" || key == "auc" || key == "auc_precision_recall" ||
         key == "global_step";
}

void ExpectSame(Kind kind, const std::map<std::string, double>& one,
                const std::map<std::string, double>& many, double* worst) {
  ASSERT_EQ(one.size(), many.size());
  for (const auto& [key, want] : one) {
    ASSERT_EQ(many.count(key), 1u) << key;
    const double got = many.at(key);
    if (IsCount(kind, key)) {
      EXPECT_EQ(got, want) << key;
    } else {
      const double rel = std::abs(got - want) / std::max(std::abs(want), 1e-300);
      *worst = std::max(*worst, want == 0 ? std::abs(got) : rel);
      EXPECT_LE(rel, kSumTolerance) << key << ": " << got << " vs " << want;
    }
  }
}

class EvalDistributeTest : public ::testing::TestWithParam<Kind> {};

TEST_P(EvalDistributeTest, ReplicasGiveTheOneReplicaMetrics) {
  const Kind kind = GetParam();
  const json j = TitanicJob(kind, io::JoinPath(TempDir(), absl::StrCat("model_", int(kind))));
  {
    const JobSpec job = Parse(j);
    absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(job);
    ASSERT_TRUE(est.ok()) << est.status();
    TrainArgs args;
    args.max_steps = 40;
    ASSERT_TRUE((*est)->Train(*InputFnFromJob(job, "train_input"), args).ok());
  }
  // All of the input: 14 batches, the last one ragged (58 rows); with 3
  // replicas the last step has 2 batches, with 4 it has 2.
  const std::map<std::string, double> one = Evaluate(j, 1, std::nullopt);
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(one.at("global_step"), 40);
  double worst = 0;
  for (int n : {2, 3, 4}) {
    SCOPED_TRACE(absl::StrCat(n, " replicas, whole input"));
    ExpectSame(kind, one, Evaluate(j, n, std::nullopt), &worst);
  }
  // `steps` counts global steps: 2 steps of 3 replicas = 6 batches of one.
  const std::map<std::string, double> six = Evaluate(j, 1, 6);
  SCOPED_TRACE("2 steps of 3 replicas");
  ExpectSame(kind, six, Evaluate(j, 3, 2), &worst);
  // ... and differ from 2 batches (the step count is not a batch count).
  const std::map<std::string, double> two = Evaluate(j, 1, 2);
  EXPECT_NE(two.at("average_loss"), six.at("average_loss"));
  std::printf("eval_distribute %d: worst relative difference of a float-sum metric: %.3g\n",
              int(kind), worst);
}

INSTANTIATE_TEST_SUITE_P(Heads, EvalDistributeTest,
                         ::testing::Values(Kind::kBinary, Kind::kBinaryWeighted, Kind::kMultiClass,
                                           Kind::kRegressor));

// The replicas' metrics merge as counts: a head's EvalMetrics refuses
// another head's.
TEST(EvalDistributeMergeTest, AnotherHeadsMetricsAreRefused) {
  HeadOptions binary_options;
  binary_options.n_classes = 2;
  HeadOptions regression_options;
  std::unique_ptr<Head> binary = *CreateClassifierHead(binary_options);
  std::unique_ptr<Head> regression = *RegressionHead::Create(regression_options);
  std::unique_ptr<EvalMetrics> a = binary->CreateEvalMetrics();
  std::unique_ptr<EvalMetrics> b = regression->CreateEvalMetrics();
  EXPECT_TRUE(absl::IsInvalidArgument(a->Merge(*b)));
  EXPECT_TRUE(a->Merge(*binary->CreateEvalMetrics()).ok());
}

}  // namespace
}  // namespace estuary
