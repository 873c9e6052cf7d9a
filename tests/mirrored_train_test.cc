// `estuary train JOB.json` with distribution.strategy mirrored /
// central_storage as a real process: 2 replicas of per-replica batch B
// write the same final checkpoint (variables within 1e-5 * (1 + |v|), see
// distribute/collective_strategy_test for why the floats differ at all;
// optimizer slots too) and log the same losses as one_device with batch
// 2B; a bad num_replicas_per_worker is a one-line error naming the field.
// `estuary evaluate` with distribution.eval_distribute on 3 replicas logs
// so and prints the metrics of the one-replica evaluation.
#include <cmath>
#include <map>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/process_harness.h"

namespace estuary::testing {
namespace {

constexpr int kRows = 640;  // 40 steps of 16

std::string WriteData() {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::string text = "x0,x1,id,label\n";
  for (int r = 0; r < kRows; ++r) {
    const float x0 = u(rng), x1 = u(rng);
    const int64_t id = static_cast<int64_t>(rng() % 30);
    absl::StrAppend(&text, x0, ",", x1, ",", id, ",",
                    x0 - x1 + (id % 3 == 0 ? 0.5f : -0.2f) > 0 ? 1 : 0, "\n");
  }
  return WriteTempFile("train.csv", text);
}

// A wide-and-deep job (identity column: sparse rows in both parts).
std::string WriteJob(const std::string& name, const std::string& data,
                     const std::string& strategy, int64_t batch, nlohmann::json replicas,
                     const nlohmann::json& eval_distribute = nullptr,
                     const std::string& model_name = "") {
  const std::string model_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                                             model_name.empty() ? name : model_name, "_model");
  nlohmann::json job = {
      {"model_dir", model_dir},
      {"estimator",
       {{"type", "dnn_linear_combined_classifier"},
        {"hidden_units", {8}},
        {"linear_feature_columns", {"id"}},
        {"dnn_feature_columns", {"x0", "x1", "id_embedding"}}}},
      {"feature_columns",
       {{{"type", "numeric"}, {"key", "x0"}},
        {{"type", "numeric"}, {"key", "x1"}},
        {{"type", "categorical_with_identity"}, {"key", "id"}, {"num_buckets", 30}},
        {{"type", "embedding"}, {"categorical_column", "id"}, {"dimension", 3}}}},
      {"train_input",
       {{"format", "csv"},
        {"files", {data}},
        {"header", true},
        {"column_defaults", {0.0, 0.0, 0, 0.0}},
        {"label_key", "label"},
        {"batch_size", batch}}},
      {"run_config", {{"tf_random_seed", 42}, {"log_step_count_steps", 10}}},
      {"distribution", {{"strategy", strategy}, {"num_replicas_per_worker", replicas}}}};
  // 640 rows in batches of 50: 12 and a ragged one of 40.
  job["eval_input"] = job["train_input"];
  job["eval_input"]["batch_size"] = 50;
  if (!eval_distribute.is_null()) job["distribution"]["eval_distribute"] = eval_distribute;
  return WriteTempFile(name + ".json", job.dump(1));
}

struct Trained {
  std::string output;
  Variables vars;
  std::vector<double> losses;  // of the "loss = ..., step = N" lines
};

Trained Train(const std::string& job) {
  Trained t;
  auto p = Proc::Start({Runfile("cli/estuary"), "train", job});
  absl::StatusOr<int> code = p->Wait(absl::Minutes(5));
  t.output = p->Output();
  EXPECT_TRUE(code.ok()) << t.output;
  EXPECT_EQ(code.value_or(-1), 0) << t.output;
  for (const std::string& line : p->StderrLines()) {
    const size_t at = line.find("loss = ");
    if (at != std::string::npos && line.find(", step = ") != std::string::npos) {
      t.losses.push_back(std::stod(line.substr(at + 7)));
    }
  }
  return t;
}

Variables Checkpoint(const std::string& name) {
  absl::StatusOr<checkpoint::RestoredCheckpoint> ckpt = checkpoint::RestoreLatest(
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name, "_model"));
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  if (!ckpt.ok()) return {};
  EXPECT_EQ(ckpt->step, kRows / 16);
  return ckpt->vars;
}

TEST(MirroredTrainTest, TwoReplicasOfBatchBWriteTheCheckpointOfOneDeviceWithBatch2B) {
  const std::string data = WriteData();
  Trained one = Train(WriteJob("one", data, "one_device", 16, 1));
  const Variables want = Checkpoint("one");
  ASSERT_FALSE(want.floats.empty());
  for (const char* strategy : {"mirrored", "central_storage"}) {
    SCOPED_TRACE(strategy);
    Trained sync = Train(WriteJob(strategy, data, strategy, 8, 2));
    EXPECT_NE(sync.output.find(absl::StrCat("strategy ", strategy,
                                            ": 2 replicas in sync in this process, per-replica "
                                            "batch 8, global batch 16")),
              std::string::npos)
        << sync.output;
    EXPECT_NE(sync.output.find("loss for final step: global_step = 40"), std::string::npos)
        << sync.output;
    ASSERT_EQ(sync.losses.size(), one.losses.size());
    for (size_t i = 0; i < one.losses.size(); ++i) {
      EXPECT_NEAR(sync.losses[i], one.losses[i], 1e-5) << i;  // as logged (7 digits)
    }
    const Variables got = Checkpoint(strategy);
    ASSERT_EQ(got.floats.size(), want.floats.size());  // variables and slots
    for (const auto& [name, v] : want.floats) {
      ASSERT_EQ(got.floats.count(name), 1u) << name;
      const RowMatrixXf& w = got.floats.at(name);
      ASSERT_EQ(v.size(), w.size()) << name;
      for (int64_t i = 0; i < v.size(); ++i) {
        ASSERT_NEAR(v.data()[i], w.data()[i], 1e-5 * (1 + std::abs(v.data()[i])))
            << name << "[" << i << "]";
      }
    }
  }
}

TEST(MirroredTrainTest, ZeroReplicasIsAOneLineErrorNamingTheField) {
  const std::string job = WriteJob("zero", WriteData(), "mirrored", 8, 0);
  auto p = Proc::Start({Runfile("cli/estuary"), "train", job});
  absl::StatusOr<int> code = p->Wait(absl::Minutes(1));
  ASSERT_TRUE(code.ok()) << p->Output();
  EXPECT_EQ(*code, 2) << p->Output();
  EXPECT_NE(p->Output().find("$.distribution.num_replicas_per_worker"), std::string::npos)
      << p->Output();
}

// "key = value" pairs of the last "saving dict for global step" line.
std::map<std::string, double> EvalMetrics(Proc& p) {
  std::map<std::string, double> out;
  const std::string line = p.FindLine("saving dict for global step ");
  std::string rest = line.substr(line.find(": ", line.find("global step")) + 2);
  for (size_t at = 0; at < rest.size();) {
    size_t end = rest.find(", ", at);
    if (end == std::string::npos) end = rest.size();
    const std::string pair = rest.substr(at, end - at);
    const size_t eq = pair.find(" = ");
    if (eq != std::string::npos) out[pair.substr(0, eq)] = std::stod(pair.substr(eq + 3));
    at = end + 2;
  }
  return out;
}

std::map<std::string, double> RunEvaluate(const std::string& job, const std::string& must_log) {
  auto p = Proc::Start({Runfile("cli/estuary"), "evaluate", job});
  absl::StatusOr<int> code = p->Wait(absl::Minutes(2));
  EXPECT_TRUE(code.ok() && *code == 0) << p->Output();
  EXPECT_TRUE(p->HasLine(must_log)) << p->Output();
  return EvalMetrics(*p);
}

TEST(MirroredTrainTest, EvalDistributeEvaluatesOnReplicasWithTheOneReplicaMetrics) {
  const std::string data = WriteData();
  Train(WriteJob("eval_train", data, "mirrored", 8, 2));
  const std::map<std::string, double> one =
      RunEvaluate(WriteJob("eval_one", data, "mirrored", 8, 2,
                           {{"strategy", "one_device"}}, "eval_train"),
                  "(13 steps, 13 batches, 1 replica)");
  const std::map<std::string, double> three =
      RunEvaluate(WriteJob("eval_three", data, "mirrored", 8, 2,
                           {{"strategy", "mirrored"}, {"num_replicas", 3}}, "eval_train"),
                  "starting evaluation at global_step 40 on 3 replicas");
  ASSERT_GE(one.size(), 10u);
  ASSERT_EQ(three.size(), one.size());
  for (const auto& [key, value] : one) {
    // As printed (7 significant digits); counts are exact.
    EXPECT_NEAR(three.at(key), value, 1e-6 * (1 + std::abs(value))) << key;
  }
  EXPECT_EQ(three.at("accuracy"), one.at("accuracy"));
  EXPECT_EQ(three.at("auc"), one.at("auc"));
  EXPECT_EQ(one.at("global_step"), 40);
}

}  // namespace
}  // namespace estuary::testing
