// Streaming metric accumulators with tf.keras.metrics (TF 2.15) semantics, as
// the tf.estimator heads use them. Each is updated batch by batch and read at
// the end of an evaluation; Result() never fails (an empty metric reads 0,
// like Keras' divide_no_nan).
//
// Value types; thread-compatible (no internal locking: one evaluation loop
// owns its accumulators). Merge adds another accumulator's state (a
// replica's, under eval_distribute) as TF sums SyncOnRead metric variables
// across replicas: counts add exactly; sums of floats differ from one
// accumulator over all updates only by the order of additions.
#ifndef ESTUARY_ESTIMATOR_HEAD_METRICS_H_
#define ESTUARY_ESTIMATOR_HEAD_METRICS_H_

#include <cstdint>
#include <vector>

namespace estuary {

// tf.keras.metrics.Mean: total += sum(value * weight), count += sum(weight);
// result = total / count (0 when count is 0).
class MeanMetric {
 public:
  void Update(double value, double weight = 1.0) {
    total_ += value * weight;
    count_ += weight;
  }
  double Result() const { return count_ == 0.0 ? 0.0 : total_ / count_; }
  void Merge(const MeanMetric& other) {
    total_ += other.total_;
    count_ += other.count_;
  }
  double total() const { return total_; }
  double count() const { return count_; }

 private:
  double total_ = 0.0;
  double count_ = 0.0;
};

// tf.keras.metrics.Precision / Recall with one threshold (default 0.5): a
// label is positive when it is non-zero (Keras casts y_true to bool), a
// prediction when it is strictly greater than the threshold. Counts are
// weighted.
class PrecisionRecallMetric {
 public:
  explicit PrecisionRecallMetric(float threshold = 0.5f) : threshold_(threshold) {}
  void Update(float label, float prediction, double weight = 1.0);
  double Precision() const;  // tp / (tp + fp)
  double Recall() const;     // tp / (tp + fn)
  // `other` must have the same threshold.
  void Merge(const PrecisionRecallMetric& other);

 private:
  float threshold_;
  double tp_ = 0.0, fp_ = 0.0, fn_ = 0.0;
};

// tf.keras.metrics.AUC(num_thresholds=200, curve=ROC|PR,
// summation_method='interpolation'), the metric behind the binary head's
// `auc` and `auc_precision_recall`. Thresholds are
// [-1e-7, 1/(n-1), ..., (n-2)/(n-1), 1+1e-7], evenly distributed, so Keras'
// bucketed update applies: predictions are clipped to [0, 1], bucket =
// max(ceil(p * (n-1)) - 1, 0) in float32, and the confusion counts at
// threshold i are the reverse cumulative sums of the weighted bucket counts.
// Result: ROC = trapezoidal sum over (FPR, TPR); PR = Keras'
// interpolate_pr_auc (Davis & Goadrich interpolation).
class AucMetric {
 public:
  enum class Curve { kRoc, kPr };
  explicit AucMetric(Curve curve, int num_thresholds = 200);
  // A label is positive when it is non-zero.
  void Update(float label, float prediction, double weight = 1.0);
  double Result() const;
  // `other` must have the same curve and num_thresholds.
  void Merge(const AucMetric& other);

 private:
  Curve curve_;
  int num_thresholds_;
  std::vector<double> tp_bucket_, fp_bucket_;
  double total_pos_ = 0.0, total_neg_ = 0.0;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_HEAD_METRICS_H_
