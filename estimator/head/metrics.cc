#include "estimator/head/metrics.h"

#include <algorithm>
#include <cmath>

namespace estuary {
namespace {

double DivNoNan(double a, double b) { return b == 0.0 ? 0.0 : a / b; }

}  // namespace

void PrecisionRecallMetric::Update(float label, float prediction, double weight) {
  const bool label_pos = label != 0.0f;
  const bool pred_pos = prediction > threshold_;
  if (label_pos && pred_pos) tp_ += weight;
  if (!label_pos && pred_pos) fp_ += weight;
  if (label_pos && !pred_pos) fn_ += weight;
}

double PrecisionRecallMetric::Precision() const { return DivNoNan(tp_, tp_ + fp_); }
double PrecisionRecallMetric::Recall() const { return DivNoNan(tp_, tp_ + fn_); }

void PrecisionRecallMetric::Merge(const PrecisionRecallMetric& other) {
  tp_ += other.tp_;
  fp_ += other.fp_;
  fn_ += other.fn_;
}

void AucMetric::Merge(const AucMetric& other) {
  for (int i = 0; i < num_thresholds_ && i < other.num_thresholds_; ++i) {
    tp_bucket_[i] += other.tp_bucket_[i];
    fp_bucket_[i] += other.fp_bucket_[i];
  }
  total_pos_ += other.total_pos_;
  total_neg_ += other.total_neg_;
}

AucMetric::AucMetric(Curve curve, int num_thresholds)
    : curve_(curve),
      num_thresholds_(num_thresholds),
      tp_bucket_(num_thresholds, 0.0),
      fp_bucket_(num_thresholds, 0.0) {}

void AucMetric::Update(float label, float prediction, double weight) {
  const float p = std::min(std::max(prediction, 0.0f), 1.0f);
  // float32 arithmetic as in Keras: ceil(y_pred * (num_thresholds - 1)) - 1,
  // then relu (the first threshold is -epsilon).
  const float scaled = p * static_cast<float>(num_thresholds_ - 1);
  int bucket = static_cast<int>(std::ceil(scaled)) - 1;
  bucket = std::max(bucket, 0);
  if (label != 0.0f) {
    tp_bucket_[bucket] += weight;
    total_pos_ += weight;
  } else {
    fp_bucket_[bucket] += weight;
    total_neg_ += weight;
  }
}

double AucMetric::Result() const {
  const int n = num_thresholds_;
  std::vector<double> tp(n), fp(n), tn(n), fn(n);
  double tp_acc = 0.0, fp_acc = 0.0;
  for (int i = n - 1; i >= 0; --i) {
    tp_acc += tp_bucket_[i];
    fp_acc += fp_bucket_[i];
    tp[i] = tp_acc;
    fp[i] = fp_acc;
    tn[i] = total_neg_ - fp_acc;
    fn[i] = total_pos_ - tp_acc;
  }
  double auc = 0.0;
  if (curve_ == Curve::kRoc) {
    for (int i = 0; i + 1 < n; ++i) {
      const double x0 = DivNoNan(fp[i], fp[i] + tn[i]);
      const double x1 = DivNoNan(fp[i + 1], fp[i + 1] + tn[i + 1]);
      const double y0 = DivNoNan(tp[i], tp[i] + fn[i]);
      const double y1 = DivNoNan(tp[i + 1], tp[i + 1] + fn[i + 1]);
      auc += (x0 - x1) * (y0 + y1) / 2.0;
    }
    return auc;
  }
  // Keras AUC.interpolate_pr_auc.
  for (int i = 0; i + 1 < n; ++i) {
    const double dtp = tp[i] - tp[i + 1];
    const double p0 = tp[i] + fp[i];
    const double p1 = tp[i + 1] + fp[i + 1];
    const double dp = p0 - p1;
    const double prec_slope = DivNoNan(dtp, std::max(dp, 0.0));
    const double intercept = tp[i + 1] - prec_slope * p1;
    const double safe_p_ratio =
        (p0 > 0.0 && p1 > 0.0) ? DivNoNan(p0, std::max(p1, 0.0)) : 1.0;
    auc += DivNoNan(prec_slope * (dtp + intercept * std::log(safe_p_ratio)),
                    std::max(tp[i + 1] + fn[i + 1], 0.0));
  }
  return auc;
}

}  // namespace estuary
