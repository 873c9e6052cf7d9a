#include "estimator/head/metrics.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

TEST(MetricsTest, MeanIsWeightedAndEmptyIsZero) {
  MeanMetric m;
  EXPECT_EQ(m.Result(), 0.0);
  m.Update(1.0, 1.0);
  m.Update(4.0, 3.0);
  EXPECT_DOUBLE_EQ(m.Result(), 13.0 / 4.0);
}

TEST(MetricsTest, PrecisionRecall) {
  PrecisionRecallMetric m;
  m.Update(1, 1);       // tp
  m.Update(0, 1, 2.0);  // fp (weighted)
  m.Update(1, 0);       // fn
  m.Update(0, 0);       // tn
  EXPECT_DOUBLE_EQ(m.Precision(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.Recall(), 0.5);
  EXPECT_EQ(PrecisionRecallMetric().Precision(), 0.0);
}

TEST(MetricsTest, AucPerfectAndInverted) {
  AucMetric roc(AucMetric::Curve::kRoc), pr(AucMetric::Curve::kPr);
  for (float p : {0.9f, 0.8f}) roc.Update(1, p), pr.Update(1, p);
  for (float p : {0.1f, 0.2f}) roc.Update(0, p), pr.Update(0, p);
  EXPECT_NEAR(roc.Result(), 1.0, 1e-9);
  EXPECT_NEAR(pr.Result(), 1.0, 1e-9);

  AucMetric inverted(AucMetric::Curve::kRoc);
  inverted.Update(1, 0.1f);
  inverted.Update(0, 0.9f);
  EXPECT_NEAR(inverted.Result(), 0.0, 1e-9);
}

TEST(MetricsTest, AucTiedPredictionsIsHalf) {
  AucMetric roc(AucMetric::Curve::kRoc);
  roc.Update(1, 0.5f);
  roc.Update(0, 0.5f);
  EXPECT_NEAR(roc.Result(), 0.5, 1e-9);
}

}  // namespace
}  // namespace estuary
