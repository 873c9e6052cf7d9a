#include "estimator/nn/activation.h"

#include <fstream>

#include "estimator/nn/grad_check.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary::nn {
namespace {

constexpr Activation kAll[] = {Activation::kRelu,  Activation::kTanh,     Activation::kSigmoid,
                               Activation::kElu,   Activation::kSelu,     Activation::kSoftplus,
                               Activation::kLinear};

RowMatrixXf Row(const nlohmann::json& j) {
  RowMatrixXf m(1, j.size());
  for (size_t i = 0; i < j.size(); ++i) m(0, i) = j[i].get<float>();
  return m;
}

// Goldens from TF 2.15 (testdata/make_nn_goldens.py): y and dy/dz on
// linspace(-3, 3, 13), which includes z == 0.
TEST(ActivationTest, MatchesTensorFlow) {
  std::ifstream in("estimator/nn/testdata/nn_goldens.json");
  ASSERT_TRUE(in);
  const nlohmann::json g = nlohmann::json::parse(in);
  const RowMatrixXf z = Row(g["z"]);
  for (Activation a : kAll) {
    const auto& want = g["activations"][ActivationName(a)];
    const RowMatrixXf y = Activate(a, z);
    const RowMatrixXf dz = ActivationBackward(a, z, y, RowMatrixXf::Ones(1, z.cols()));
    const RowMatrixXf wy = Row(want["y"]), wd = Row(want["dy_dz"]);
    for (int i = 0; i < z.cols(); ++i) {
      EXPECT_NEAR(y(0, i), wy(0, i), 2e-6 * std::max(1.0f, std::abs(wy(0, i))))
          << ActivationName(a) << " z=" << z(0, i);
      EXPECT_NEAR(dz(0, i), wd(0, i), 2e-6 * std::max(1.0f, std::abs(wd(0, i))))
          << ActivationName(a) << "' z=" << z(0, i);
    }
  }
}

TEST(ActivationTest, FiniteDifferences) {
  RowMatrixXf z(2, 4);
  z << -2.1f, -0.7f, -0.3f, 0.2f, 0.45f, 0.9f, 1.7f, 3.2f;
  RowMatrixXf r(2, 4);
  r << 0.3f, -1.1f, 0.8f, 0.5f, -0.4f, 0.9f, -0.2f, 1.3f;
  for (Activation a : kAll) {
    const RowMatrixXf y = Activate(a, z);
    const RowMatrixXf analytic = ActivationBackward(a, z, y, r);
    const RowMatrixXf numeric =
        testing::NumericGradient(&z, [&] { return testing::Dot(Activate(a, z), r); }, 1e-3f);
    EXPECT_LT(testing::MaxRelError(analytic, numeric), 2e-3) << ActivationName(a);
  }
}

TEST(ActivationTest, Parse) {
  for (Activation a : kAll) {
    auto p = ParseActivation(ActivationName(a));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, a);
  }
  EXPECT_EQ(*ParseActivation("tf.nn.relu"), Activation::kRelu);
  EXPECT_FALSE(ParseActivation("gelu").ok());
}

}  // namespace
}  // namespace estuary::nn
