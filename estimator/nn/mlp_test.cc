#include "estimator/nn/mlp.h"

#include <fstream>

#include "estimator/nn/grad_check.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary::nn {
namespace {

using testing::Dot;
using testing::MaxRelError;
using testing::NumericGradient;

RowMatrixXf FromJson(const nlohmann::json& j) {
  if (!j[0].is_array()) {  // rank 1 -> [1, n]
    RowMatrixXf m(1, j.size());
    for (size_t i = 0; i < j.size(); ++i) m(0, i) = j[i].get<float>();
    return m;
  }
  RowMatrixXf m(j.size(), j[0].size());
  for (size_t r = 0; r < j.size(); ++r)
    for (size_t c = 0; c < j[r].size(); ++c) m(r, c) = j[r][c].get<float>();
  return m;
}

void ExpectNear(const RowMatrixXf& got, const nlohmann::json& want, const std::string& what) {
  const RowMatrixXf w = FromJson(want);
  ASSERT_EQ(got.rows(), w.rows()) << what;
  ASSERT_EQ(got.cols(), w.cols()) << what;
  for (int64_t i = 0; i < w.size(); ++i) {
    EXPECT_NEAR(got.data()[i], w.data()[i], 1e-5 * std::max(1.0f, std::abs(w.data()[i])))
        << what << " [" << i << "]";
  }
}

// TF 2.15 goldens (testdata/make_nn_goldens.py): Dense(4, act) ->
// [BatchNormalization(momentum=0.999), training] -> Dense(2) with given
// weights; loss = sum(logits * r); gradients from tf.GradientTape.
TEST(MlpTest, MatchesTensorFlowGradientTape) {
  std::ifstream in("estimator/nn/testdata/nn_goldens.json");
  ASSERT_TRUE(in);
  const nlohmann::json g = nlohmann::json::parse(in);
  for (const auto& tc : g["mlp"]) {
    MlpConfig config;
    config.hidden_units = {4};
    config.activation = *ParseActivation(tc["activation"].get<std::string>());
    config.batch_norm = tc["batch_norm"].get<bool>();
    config.logits_dimension = 2;
    auto mlp = Mlp::Create(config, 3);
    ASSERT_TRUE(mlp.ok()) << mlp.status();
    VariableMap vars;
    (*mlp)->InitVariables(1, &vars);
    vars.at("dnn/hiddenlayer_0/kernel") = FromJson(g["w0"]);
    vars.at("dnn/hiddenlayer_0/bias") = FromJson(g["b0"]);
    vars.at("dnn/logits/kernel") = FromJson(g["w1"]);
    vars.at("dnn/logits/bias") = FromJson(g["b1"]);
    if (config.batch_norm) {
      vars.at("dnn/hiddenlayer_0/batchnorm_0/gamma") = FromJson(g["gamma"]);
      vars.at("dnn/hiddenlayer_0/batchnorm_0/beta") = FromJson(g["beta"]);
    }
    const std::string what = tc["activation"].get<std::string>() + (config.batch_norm ? "+bn" : "");
    MlpState state;
    auto logits = (*mlp)->Forward(vars, FromJson(g["x"]), /*training=*/true, nullptr, &state);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ExpectNear(*logits, tc["logits"], what + " logits");
    auto grads = (*mlp)->Backward(vars, state, FromJson(g["r"]));
    ASSERT_TRUE(grads.ok()) << grads.status();
    ASSERT_EQ(grads->by_name.size(), tc["grads"].size()) << what;
    for (const auto& [name, want] : tc["grads"].items()) {
      ASSERT_EQ(grads->by_name.count(name), 1u) << what << " " << name;
      ExpectNear(grads->by_name.at(name), want, what + " d" + name);
    }
    ExpectNear(grads->dx, tc["dx"], what + " dx");
    if (config.batch_norm) {
      // The new moving statistics come back with the gradients; the
      // variables Forward read are untouched until the caller assigns them.
      ASSERT_EQ(grads->moving.size(), 2u);
      EXPECT_TRUE(vars.at("dnn/hiddenlayer_0/batchnorm_0/moving_mean").isZero());
      for (auto& [name, v] : grads->moving) vars.at(name) = v;
      ExpectNear(vars.at("dnn/hiddenlayer_0/batchnorm_0/moving_mean"), tc["moving_mean"],
                 what + " moving_mean");
      ExpectNear(vars.at("dnn/hiddenlayer_0/batchnorm_0/moving_variance"),
                 tc["moving_variance"], what + " moving_variance");
      MlpState inference_state;
      auto inference = (*mlp)->Forward(vars, FromJson(g["x"]), /*training=*/false, nullptr,
                                       &inference_state);
      ASSERT_TRUE(inference.ok());
      ExpectNear(*inference, tc["inference_logits"], what + " inference logits");
    }
  }
}

TEST(MlpTest, VariableNamesAndShapes) {
  MlpConfig config;
  config.hidden_units = {5, 3};
  config.batch_norm = true;
  config.logits_dimension = 4;
  auto mlp = Mlp::Create(config, 7);
  ASSERT_TRUE(mlp.ok());
  const std::vector<std::string> want = {
      "dnn/hiddenlayer_0/kernel", "dnn/hiddenlayer_0/bias",
      "dnn/hiddenlayer_0/batchnorm_0/gamma", "dnn/hiddenlayer_0/batchnorm_0/beta",
      "dnn/hiddenlayer_1/kernel", "dnn/hiddenlayer_1/bias",
      "dnn/hiddenlayer_1/batchnorm_1/gamma", "dnn/hiddenlayer_1/batchnorm_1/beta",
      "dnn/logits/kernel", "dnn/logits/bias"};
  EXPECT_EQ((*mlp)->trainable_variable_names(), want);
  VariableMap v;
  (*mlp)->InitVariables(9, &v);
  EXPECT_EQ(v.size(), 14u);
  EXPECT_EQ((*mlp)->variable_names().size(), 14u);
  EXPECT_EQ(v.at("dnn/hiddenlayer_0/kernel").rows(), 7);
  EXPECT_EQ(v.at("dnn/hiddenlayer_1/kernel").cols(), 3);
  EXPECT_EQ(v.at("dnn/logits/kernel").cols(), 4);
  EXPECT_TRUE(v.at("dnn/logits/bias").isZero());
  EXPECT_TRUE(v.at("dnn/hiddenlayer_1/batchnorm_1/moving_variance").isOnes());
  // Same seed, same weights.
  VariableMap again;
  (*mlp)->InitVariables(9, &again);
  EXPECT_EQ(again.at("dnn/logits/kernel"), v.at("dnn/logits/kernel"));
}

// Every trainable variable and the input, through dropout + batch norm.
TEST(MlpTest, FiniteDifferencesAllParameters) {
  for (Activation act : {Activation::kTanh, Activation::kSelu, Activation::kSoftplus}) {
    MlpConfig config;
    config.hidden_units = {5, 4};
    config.activation = act;
    config.dropout = 0.25f;
    config.batch_norm = true;
    config.logits_dimension = 3;
    auto made = Mlp::Create(config, 3);
    ASSERT_TRUE(made.ok());
    const Mlp& mlp = **made;
    VariableMap vars;
    mlp.InitVariables(5, &vars);
    Rng xr(17);
    RowMatrixXf x(6, 3), r(6, 3);
    for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = 2 * Uniform01(&xr) - 1;
    for (int64_t i = 0; i < r.size(); ++i) r.data()[i] = 2 * Uniform01(&xr) - 1;
    auto loss = [&] {
      Rng rng(3);  // same dropout masks every time
      MlpState s;
      return Dot(*mlp.Forward(vars, x, true, &rng, &s), r);
    };
    Rng rng(3);
    MlpState state;
    ASSERT_TRUE(mlp.Forward(vars, x, true, &rng, &state).ok());
    auto grads = mlp.Backward(vars, state, r);
    ASSERT_TRUE(grads.ok());
    for (const std::string& name : mlp.trainable_variable_names()) {
      RowMatrixXf* p = &vars.at(name);
      EXPECT_LT(MaxRelError(grads->by_name.at(name), NumericGradient(p, loss, 1e-3f)), 1e-2)
          << ActivationName(act) << " " << name;
    }
    EXPECT_LT(MaxRelError(grads->dx, NumericGradient(&x, loss, 1e-3f)), 1e-2);
  }
}

TEST(MlpTest, Errors) {
  MlpConfig config;
  config.hidden_units = {0};
  EXPECT_FALSE(Mlp::Create(config, 3).ok());
  config.hidden_units = {2};
  config.dropout = 1.0f;
  EXPECT_FALSE(Mlp::Create(config, 3).ok());
  config.dropout = 0.5f;
  auto mlp = Mlp::Create(config, 3);
  ASSERT_TRUE(mlp.ok());
  VariableMap vars;
  (*mlp)->InitVariables(1, &vars);
  MlpState state;
  EXPECT_EQ((*mlp)->Backward(vars, state, RowMatrixXf::Zero(1, 1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*mlp)->Forward(vars, RowMatrixXf::Zero(2, 4), false, nullptr, &state).ok());
  EXPECT_FALSE((*mlp)->Forward(vars, RowMatrixXf::Zero(2, 3), true, nullptr, &state).ok());
  ASSERT_TRUE((*mlp)->Forward(vars, RowMatrixXf::Zero(2, 3), false, nullptr, &state).ok());
  EXPECT_FALSE((*mlp)->Backward(vars, state, RowMatrixXf::Zero(3, 1)).ok());
  // Variables come from the caller: a missing or misshapen one is an error.
  VariableMap missing = vars;
  missing.erase("dnn/logits/bias");
  EXPECT_EQ((*mlp)->Forward(missing, RowMatrixXf::Zero(2, 3), false, nullptr, &state)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  VariableMap misshapen = vars;
  misshapen.at("dnn/hiddenlayer_0/kernel") = RowMatrixXf::Zero(4, 2);
  EXPECT_FALSE((*mlp)->Forward(misshapen, RowMatrixXf::Zero(2, 3), false, nullptr, &state).ok());
}

}  // namespace
}  // namespace estuary::nn
