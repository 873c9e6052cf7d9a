// Compares the heads with TF 2.15's tf.estimator heads on the goldens made by
// testdata/make_head_goldens.py (testdata/head_goldens.json): per batch the
// training loss, d loss / d logits, unreduced losses, weights and
// predictions; at the end every eval metric.
#include <cmath>
#include <fstream>
#include <string>

#include "estimator/head/head.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using nlohmann::json;

constexpr double kTol = 1e-5;

void ExpectNear(double want, double got, const std::string& what) {
  EXPECT_NEAR(got, want, kTol * std::max(1.0, std::abs(want))) << what;
}

template <typename T>
void ExpectAllNear(const json& want, const std::vector<T>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ExpectNear(want[i].get<double>(), static_cast<double>(got[i]), what + "[" + std::to_string(i) + "]");
  }
}

std::vector<int64_t> Shape(const json& j) { return j["shape"].get<std::vector<int64_t>>(); }

Tensor LabelsFrom(const json& j) {
  const std::string dtype = j["dtype"];
  if (dtype == "string") return Tensor::Strings(Shape(j), j["values"].get<std::vector<std::string>>());
  if (dtype == "int64") return Tensor::Ints(Shape(j), j["values"].get<std::vector<int64_t>>());
  return Tensor::Floats(Shape(j), j["values"].get<std::vector<float>>());
}

absl::StatusOr<std::unique_ptr<Head>> HeadFrom(const json& config) {
  HeadOptions o;
  o.loss_reduction = config["loss_reduction"] == "sum" ? LossReduction::kSum
                                                       : LossReduction::kSumOverBatchSize;
  if (config["weighted"].get<bool>()) o.weight_column = "w";
  if (config.contains("label_vocabulary")) {
    o.label_vocabulary = config["label_vocabulary"].get<std::vector<std::string>>();
  }
  const std::string kind = config["head"];
  if (kind == "binary") {
    auto h = BinaryClassHead::Create(o);
    if (!h.ok()) return h.status();
    return std::unique_ptr<Head>(std::move(*h));
  }
  if (kind == "multi_class") {
    o.n_classes = config["n_classes"];
    auto h = MultiClassHead::Create(o);
    if (!h.ok()) return h.status();
    return std::unique_ptr<Head>(std::move(*h));
  }
  o.label_dimension = config["label_dimension"];
  auto h = RegressionHead::Create(o);
  if (!h.ok()) return h.status();
  return std::unique_ptr<Head>(std::move(*h));
}

json LoadGoldens() {
  std::ifstream in("estimator/head/testdata/head_goldens.json");
  EXPECT_TRUE(in.good());
  return json::parse(in);
}

TEST(HeadGoldenTest, MatchesTensorFlow) {
  const json goldens = LoadGoldens();
  ASSERT_GE(goldens["cases"].size(), 10u);
  for (const json& c : goldens["cases"]) {
    const std::string name = c["config"]["name"];
    SCOPED_TRACE(name);
    auto head = HeadFrom(c["config"]);
    ASSERT_TRUE(head.ok()) << head.status();
    auto metrics = (*head)->CreateEvalMetrics();
    int b = 0;
    for (const json& batch : c["batches"]) {
      const std::string where = name + " batch " + std::to_string(b++);
      const auto logit_values = batch["logits"]["values"].get<std::vector<float>>();
      const auto shape = Shape(batch["logits"]);
      RowMatrixXf logits = Eigen::Map<const RowMatrixXf>(logit_values.data(), shape[0], shape[1]);
      const Tensor labels = LabelsFrom(batch["labels"]);
      Tensor weights;
      const Tensor* w = nullptr;
      if (batch.contains("weights")) {
        weights = Tensor::Floats(Shape(batch["weights"]), batch["weights"]["values"].get<std::vector<float>>());
        w = &weights;
      }
      auto loss = (*head)->Loss(logits, labels, w);
      ASSERT_TRUE(loss.ok()) << where << ": " << loss.status();
      ExpectNear(batch["training_loss"], loss->training_loss, where + " training_loss");
      std::vector<float> dlogits(loss->dlogits.data(), loss->dlogits.data() + loss->dlogits.size());
      ExpectAllNear(batch["dlogits"], dlogits, where + " dlogits");
      ExpectAllNear(batch["unreduced_loss"], loss->unreduced_loss, where + " unreduced_loss");
      ExpectAllNear(batch["weights_out"], loss->weights, where + " weights");

      if (batch.contains("predictions")) {
        auto preds = (*head)->Predictions(logits);
        ASSERT_TRUE(preds.ok()) << preds.status();
        ASSERT_EQ(preds->size(), batch["predictions"].size()) << where;
        for (const auto& [key, want] : batch["predictions"].items()) {
          auto it = preds->find(key);
          ASSERT_NE(it, preds->end()) << where << " missing prediction " << key;
          const Tensor& got = it->second;
          EXPECT_EQ(got.shape, Shape(want)) << where << " " << key;
          const std::string dtype = want["dtype"];
          if (dtype == "string") {
            EXPECT_EQ(got.dtype, DType::kString) << key;
            EXPECT_EQ(got.strings, want["values"].get<std::vector<std::string>>()) << where << " " << key;
          } else if (dtype == "float32") {
            EXPECT_EQ(got.dtype, DType::kFloat) << key;
            ExpectAllNear(want["values"], got.floats, where + " " + key);
          } else {  // int64 class ids; TF's all_class_ids are int32
            EXPECT_EQ(got.dtype, DType::kInt64) << key;
            EXPECT_EQ(got.ints, want["values"].get<std::vector<int64_t>>()) << where << " " << key;
          }
        }
      }
      ASSERT_TRUE(metrics->Update(logits, labels, w).ok()) << where;
    }
    const auto got = metrics->Result();
    ASSERT_EQ(got.size(), c["metrics"].size()) << name;
    for (const auto& [key, want] : c["metrics"].items()) {
      auto it = got.find(key);
      ASSERT_NE(it, got.end()) << name << " missing metric " << key;
      ExpectNear(want.get<double>(), it->second, name + " metric " + key);
    }
  }
}

}  // namespace
}  // namespace estuary
