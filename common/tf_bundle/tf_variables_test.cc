#include "common/tf_bundle/tf_variables.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary::tf_bundle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(TfVariablesTest, NamesAndShapes) {
  EXPECT_EQ(*TfVariableName("dnn/hiddenlayer_0/kernel"), "dnn/hiddenlayer_0/kernel");
  EXPECT_EQ(*TfVariableName("dnn/logits/bias/adam/m"), "training/Adam/dnn/logits/bias/m");
  EXPECT_EQ(*TfVariableName("linear/linear_model/sex/weights/ftrl/linear"),
            "training/Ftrl/linear/linear_model/sex/weights/linear");
  EXPECT_EQ(*TfVariableName("a/momentum/momentum"), "training/SGD/a/momentum");
  EXPECT_FALSE(TfVariableName("a/ftrl/updates").has_value());
  EXPECT_THAT(TfShape("dnn/logits/bias", 1, 4), ElementsAre(4));
  EXPECT_THAT(TfShape("dnn/logits/bias/adagrad/accumulator", 1, 4), ElementsAre(4));
  EXPECT_THAT(TfShape("linear/linear_model/bias_weights", 1, 1), ElementsAre(1));
  EXPECT_THAT(TfShape("linear/linear_model/age/weights", 1, 1), ElementsAre(1, 1));
  EXPECT_THAT(TfShape("dnn/logits/kernel", 8, 1), ElementsAre(8, 1));
}

TEST(TfVariablesTest, RoundTripWithoutTheOptimizersOwnVariables) {
  Variables vars;
  vars.floats["dnn/logits/bias"] = RowMatrixXf::Constant(1, 3, 0.5f);
  vars.floats["dnn/logits/bias/adam/m"] = RowMatrixXf::Constant(1, 3, 0.25f);
  vars.floats["dnn/logits/kernel"] = RowMatrixXf::Constant(2, 3, 1.f);
  vars.ints["global_step"] = 7;
  vars.ints["dnn/logits/kernel/adam/updates"] = 7;
  OptimizerConfig adam;
  adam.type = "adam";
  adam.learning_rate = 0.01;
  absl::StatusOr<std::map<std::string, Tensor>> tf =
      ToTfTensors(vars, TfOptimizerVariables(adam, std::nullopt));
  ASSERT_TRUE(tf.ok()) << tf.status();
  std::vector<std::string> names;
  for (const auto& [name, t] : *tf) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("dnn/logits/bias", "dnn/logits/kernel", "global_step",
                                 "training/Adam/beta_1", "training/Adam/beta_2",
                                 "training/Adam/decay", "training/Adam/dnn/logits/bias/m",
                                 "training/Adam/learning_rate"));
  EXPECT_THAT(tf->at("dnn/logits/bias").shape, ElementsAre(3));
  EXPECT_THAT(tf->at("training/Adam/learning_rate").floats, ElementsAre(0.01f));
  absl::StatusOr<Variables> back = FromTfTensors(*tf, "x.index");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->floats.size(), 3u);
  EXPECT_EQ(back->floats.at("dnn/logits/bias/adam/m"), vars.floats.at("dnn/logits/bias/adam/m"));
  EXPECT_EQ(back->floats.at("dnn/logits/bias").rows(), 1);
  EXPECT_EQ(back->ints.size(), 1u);
  EXPECT_EQ(back->ints.at("global_step"), 7);
}

TEST(TfVariablesTest, IterOfASecondOptimizerAndBadTensors) {
  OptimizerConfig ftrl;
  ftrl.type = "ftrl";
  std::map<std::string, Tensor> v = TfOptimizerVariables(ftrl, 12);
  EXPECT_THAT(v.at("training/Ftrl/iter").ints, ElementsAre(12));
  EXPECT_EQ(v.count("training/Ftrl/learning_rate_power"), 1u);
  absl::StatusOr<Variables> back = FromTfTensors(v, "x.index");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->size(), 0u);
  absl::Status bad =
      FromTfTensors({{"t", Tensor::Floats({1, 1, 1}, {1})}}, "m/model.ckpt-1.index").status();
  EXPECT_THAT(bad.message(), HasSubstr("m/model.ckpt-1.index: tensor 't': rank 3"));
  bad = FromTfTensors({{"s", Tensor::Strings({1}, {"x"})}}, "i").status();
  EXPECT_THAT(bad.message(), HasSubstr("i: tensor 's': dtype string is not supported"));
}

}  // namespace
}  // namespace estuary::tf_bundle
