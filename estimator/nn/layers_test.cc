#include "estimator/nn/layers.h"

#include <cmath>

#include "estimator/nn/grad_check.h"
#include "gtest/gtest.h"

namespace estuary::nn {
namespace {

using testing::Dot;
using testing::MaxRelError;
using testing::NumericGradient;

RowMatrixXf Random(int rows, int cols, uint64_t seed) {
  Rng rng(seed);
  RowMatrixXf m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = 2.0f * Uniform01(&rng) - 1.0f;
  return m;
}

TEST(MatMulTest, ThreadedMatchesEigen) {
  ComputeContext ctx(2);
  const RowMatrixXf a = Random(37, 53, 1), b = Random(53, 29, 2);
  const RowMatrixXf at = a.transpose(), bt = b.transpose();
  const RowMatrixXf want = a * b;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      RowMatrixXf single, threaded;
      MatMul(ta ? at : a, ta, tb ? bt : b, tb, &single, nullptr);
      MatMul(ta ? at : a, ta, tb ? bt : b, tb, &threaded, &ctx);
      EXPECT_LT((single - want).cwiseAbs().maxCoeff(), 1e-4f) << ta << tb;
      EXPECT_LT((threaded - want).cwiseAbs().maxCoeff(), 1e-4f) << ta << tb;
    }
  }
}

TEST(GlorotUniformTest, LimitAndDeterminism) {
  Rng a(42), b(42);
  const RowMatrixXf w = GlorotUniform(200, 100, &a);
  EXPECT_EQ(w, GlorotUniform(200, 100, &b));
  const float limit = std::sqrt(6.0f / 300.0f);
  EXPECT_LE(w.cwiseAbs().maxCoeff(), limit);
  EXPECT_GT(w.cwiseAbs().maxCoeff(), 0.99f * limit);
  const double var = w.array().square().mean();  // U(-l, l) has variance l^2/3
  EXPECT_NEAR(var, limit * limit / 3.0, 0.03 * limit * limit / 3.0);
  EXPECT_NEAR(w.mean(), 0.0, 0.01 * limit);
}

TEST(DenseTest, FiniteDifferences) {
  for (const ComputeContext* ctx : {static_cast<const ComputeContext*>(nullptr),
                                    static_cast<const ComputeContext*>(new ComputeContext(2))}) {
    RowMatrixXf x = Random(4, 3, 3), w = Random(3, 5, 4), b = Random(1, 5, 5);
    const RowMatrixXf r = Random(4, 5, 6);
    auto loss = [&] { return Dot(DenseForward(x, w, b, ctx), r); };
    RowMatrixXf dx, dw, db;
    DenseBackward(x, w, r, &dx, &dw, &db, ctx);
    EXPECT_LT(MaxRelError(dx, NumericGradient(&x, loss)), 1e-3);
    EXPECT_LT(MaxRelError(dw, NumericGradient(&w, loss)), 1e-3);
    EXPECT_LT(MaxRelError(db, NumericGradient(&b, loss)), 1e-3);
    delete ctx;
  }
}

TEST(DropoutTest, InvertedScalingDeterministicAndBackward) {
  const RowMatrixXf x = RowMatrixXf::Ones(100, 100);
  Rng a(7), b(7);
  RowMatrixXf mask_a, mask_b;
  const RowMatrixXf y = DropoutForward(x, 0.3f, &a, &mask_a);
  EXPECT_EQ(y, DropoutForward(x, 0.3f, &b, &mask_b));
  const float scale = 1.0f / 0.7f;
  int kept = 0;
  for (int64_t i = 0; i < y.size(); ++i) {
    ASSERT_TRUE(y.data()[i] == 0.0f || y.data()[i] == scale);
    kept += y.data()[i] != 0.0f;
  }
  EXPECT_NEAR(kept / 10000.0, 0.7, 0.02);
  EXPECT_NEAR(y.mean(), 1.0, 0.03);  // expectation preserved
  const RowMatrixXf dy = Random(100, 100, 8);
  EXPECT_EQ(DropoutBackward(dy, mask_a), dy.cwiseProduct(mask_a));
  RowMatrixXf mask0;
  EXPECT_EQ(DropoutForward(dy, 0.0f, &a, &mask0), dy);
}

TEST(BatchNormTest, TrainingFiniteDifferences) {
  RowMatrixXf x = Random(6, 3, 9);
  x.col(1) *= 3.0f;
  const RowMatrixXf r = Random(6, 3, 10);
  const BatchNorm bn;
  RowMatrixXf gamma = Random(1, 3, 11).array() + 1.5f;
  RowMatrixXf beta = Random(1, 3, 12);
  const RowMatrixXf mean = RowMatrixXf::Zero(1, 3), var = RowMatrixXf::Ones(1, 3);
  auto loss = [&] {
    BatchNorm::Cache c;
    return Dot(bn.Forward(x, gamma, beta, mean, var, true, &c), r);
  };
  BatchNorm::Cache cache;
  bn.Forward(x, gamma, beta, mean, var, true, &cache);
  RowMatrixXf dx, dgamma, dbeta;
  bn.Backward(cache, gamma, r, &dx, &dgamma, &dbeta);
  EXPECT_LT(MaxRelError(dx, NumericGradient(&x, loss, 1e-3f)), 5e-3);
  EXPECT_LT(MaxRelError(dgamma, NumericGradient(&gamma, loss, 1e-3f)), 5e-3);
  EXPECT_LT(MaxRelError(dbeta, NumericGradient(&beta, loss, 1e-3f)), 5e-3);
}

TEST(BatchNormTest, MovingStatisticsAndInference) {
  RowMatrixXf x(4, 2);
  x << 1, 10, 2, 20, 3, 30, 6, 40;
  const BatchNorm bn;
  const RowMatrixXf gamma = RowMatrixXf::Ones(1, 2), beta = RowMatrixXf::Zero(1, 2);
  const RowMatrixXf mean0 = RowMatrixXf::Zero(1, 2), var0 = RowMatrixXf::Ones(1, 2);
  BatchNorm::Cache cache;
  const RowMatrixXf y = bn.Forward(x, gamma, beta, mean0, var0, true, &cache);
  // Biased batch variance, momentum 0.999; the inputs are left alone.
  const RowMatrixXf mean = cache.new_moving_mean, var = cache.new_moving_variance;
  EXPECT_NEAR(mean(0, 0), 0.001 * 3.0, 1e-7);
  EXPECT_NEAR(var(0, 0), 0.999 + 0.001 * 3.5, 1e-6);
  EXPECT_NEAR(var(0, 1), 0.999 + 0.001 * 125.0, 1e-5);
  EXPECT_TRUE(mean0.isZero());
  EXPECT_NEAR(y(0, 0), (1 - 3) / std::sqrt(3.5 + 1e-3), 1e-5);
  // Inference uses the moving statistics; backward is then a scaling.
  const RowMatrixXf yi = bn.Forward(x, gamma, beta, mean, var, false, &cache);
  EXPECT_EQ(cache.new_moving_mean.size(), 0);
  EXPECT_NEAR(yi(0, 0), (1 - mean(0, 0)) / std::sqrt(var(0, 0) + 1e-3), 1e-5);
  RowMatrixXf xi = x;
  const RowMatrixXf r = Random(4, 2, 13);
  RowMatrixXf dx, dg, db;
  bn.Backward(cache, gamma, r, &dx, &dg, &db);
  auto loss = [&] {
    BatchNorm::Cache c;
    return Dot(bn.Forward(xi, gamma, beta, mean, var, false, &c), r);
  };
  EXPECT_LT(MaxRelError(dx, NumericGradient(&xi, loss, 1e-2f)), 1e-3);
}

}  // namespace
}  // namespace estuary::nn
