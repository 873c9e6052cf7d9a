#include "estimator/head/head.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

RowMatrixXf Logits(int rows, int cols, std::vector<float> v) {
  return Eigen::Map<RowMatrixXf>(v.data(), rows, cols);
}

TEST(HeadTest, ParseLossReduction) {
  EXPECT_EQ(*ParseLossReduction("sum"), LossReduction::kSum);
  EXPECT_EQ(*ParseLossReduction("sum_over_batch_size"), LossReduction::kSumOverBatchSize);
  EXPECT_FALSE(ParseLossReduction("mean").ok());
}

TEST(HeadTest, CreateClassifierHeadPicksByNClasses) {
  HeadOptions o;
  auto binary = CreateClassifierHead(o);
  ASSERT_TRUE(binary.ok());
  EXPECT_EQ((*binary)->logits_dimension(), 1);
  o.n_classes = 5;
  auto multi = CreateClassifierHead(o);
  ASSERT_TRUE(multi.ok());
  EXPECT_EQ((*multi)->logits_dimension(), 5);
  o.n_classes = 1;
  EXPECT_FALSE(CreateClassifierHead(o).ok());
}

TEST(HeadTest, SumOverBatchSizeCountsZeroWeightRows) {
  auto head = *RegressionHead::Create(HeadOptions{});
  const Tensor labels = Tensor::Floats({2}, {0, 0});
  const Tensor weights = Tensor::Floats({2}, {1, 0});
  auto loss = head->Loss(Logits(2, 1, {2, 5}), labels, &weights);
  ASSERT_TRUE(loss.ok()) << loss.status();
  EXPECT_DOUBLE_EQ(loss->training_loss, 4.0 / 2);  // not / sum(weights)
  EXPECT_FLOAT_EQ(loss->dlogits(0, 0), 2 * 2 * 1 / 2.0f);
  EXPECT_FLOAT_EQ(loss->dlogits(1, 0), 0.0f);
}

TEST(HeadTest, EmptyBatchHasZeroLoss) {
  auto head = *BinaryClassHead::Create(HeadOptions{});
  auto loss = head->Loss(RowMatrixXf(0, 1), Tensor::Ints({0}, {}), nullptr);
  ASSERT_TRUE(loss.ok()) << loss.status();
  EXPECT_EQ(loss->training_loss, 0.0);
}

TEST(HeadTest, UnknownVocabularyLabelIsNamed) {
  HeadOptions o;
  o.label_vocabulary = {"neg", "pos"};
  auto head = *BinaryClassHead::Create(o);
  auto loss = head->Loss(Logits(2, 1, {1, 2}), Tensor::Strings({2}, {"pos", "maybe"}), nullptr);
  ASSERT_FALSE(loss.ok());
  EXPECT_NE(loss.status().message().find("'maybe'"), std::string::npos) << loss.status();
  EXPECT_FALSE(head->Loss(Logits(1, 1, {1}), Tensor::Ints({1}, {1}), nullptr).ok());
}

TEST(HeadTest, LabelRangesAreValidated) {
  auto binary = *BinaryClassHead::Create(HeadOptions{});
  EXPECT_FALSE(binary->Loss(Logits(1, 1, {1}), Tensor::Ints({1}, {2}), nullptr).ok());
  EXPECT_FALSE(binary->Loss(Logits(1, 1, {1}), Tensor::Floats({1}, {-0.5f}), nullptr).ok());
  EXPECT_TRUE(binary->Loss(Logits(1, 1, {1}), Tensor::Floats({1, 1}, {0.25f}), nullptr).ok());
  EXPECT_FALSE(binary->Loss(Logits(1, 1, {1}), Tensor::Strings({1}, {"1"}), nullptr).ok());

  HeadOptions o;
  o.n_classes = 3;
  auto multi = *MultiClassHead::Create(o);
  EXPECT_FALSE(multi->Loss(Logits(1, 3, {1, 2, 3}), Tensor::Ints({1}, {3}), nullptr).ok());
  EXPECT_FALSE(multi->Loss(Logits(1, 3, {1, 2, 3}), Tensor::Ints({1}, {-1}), nullptr).ok());
  EXPECT_FALSE(multi->Loss(Logits(1, 3, {1, 2, 3}), Tensor::Floats({1}, {1.5f}), nullptr).ok());
  EXPECT_TRUE(multi->Loss(Logits(1, 3, {1, 2, 3}), Tensor::Floats({1}, {2.0f}), nullptr).ok());
}

TEST(HeadTest, ShapesAreValidated) {
  HeadOptions o;
  o.n_classes = 3;
  auto multi = *MultiClassHead::Create(o);
  EXPECT_FALSE(multi->Loss(Logits(1, 2, {1, 2}), Tensor::Ints({1}, {0}), nullptr).ok());
  EXPECT_FALSE(multi->Loss(Logits(1, 3, {1, 2, 3}), Tensor::Ints({2}, {0, 1}), nullptr).ok());
  const Tensor bad_weights = Tensor::Floats({1, 3}, {1, 1, 1});
  EXPECT_FALSE(multi->Loss(Logits(1, 3, {1, 2, 3}), Tensor::Ints({1}, {0}), &bad_weights).ok());
  const Tensor string_weights = Tensor::Strings({1}, {"x"});
  EXPECT_FALSE(multi->Loss(Logits(1, 3, {1, 2, 3}), Tensor::Ints({1}, {0}), &string_weights).ok());

  o.label_dimension = 3;
  auto regression = *RegressionHead::Create(o);
  const Tensor per_logit = Tensor::Ints({1, 3}, {1, 2, 3});
  auto loss = regression->Loss(Logits(1, 3, {1, 1, 1}), Tensor::Floats({1, 3}, {0, 0, 0}), &per_logit);
  ASSERT_TRUE(loss.ok()) << loss.status();
  EXPECT_DOUBLE_EQ(loss->training_loss, (1 + 2 + 3) / 3.0);
}

TEST(HeadTest, FindWeights) {
  HeadOptions o;
  auto unweighted = *BinaryClassHead::Create(o);
  FeatureMap features;
  EXPECT_EQ(*unweighted->FindWeights(features), nullptr);
  o.weight_column = "w";
  auto weighted = *BinaryClassHead::Create(o);
  EXPECT_FALSE(weighted->FindWeights(features).ok());
  features["w"] = Tensor::Floats({1}, {2});
  auto w = weighted->FindWeights(features);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->floats[0], 2.0f);
  features["w"] = SparseTensor{};
  EXPECT_FALSE(weighted->FindWeights(features).ok());
}

TEST(HeadTest, BinaryTieGoesToClassZero) {
  HeadOptions o;
  o.label_vocabulary = {"no", "yes"};
  auto head = *BinaryClassHead::Create(o);
  auto preds = head->Predictions(Logits(2, 1, {0, 0.5f}));
  ASSERT_TRUE(preds.ok());
  EXPECT_EQ(preds->at("class_ids").ints, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(preds->at("classes").strings, (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(preds->at("all_classes").strings,
            (std::vector<std::string>{"no", "yes", "no", "yes"}));
}

}  // namespace
}  // namespace estuary
