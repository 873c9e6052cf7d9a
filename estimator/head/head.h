// Heads: the loss, gradient, predictions and eval metrics that sit on top of
// a model's logits, with tf.estimator's (TF 2.15) exact semantics:
//
//   BinaryClassHead   sigmoid cross-entropy, logits_dimension 1
//                     (tf.estimator.BinaryClassHead)
//   MultiClassHead    sparse softmax cross-entropy, logits_dimension n_classes
//                     (tf.estimator.MultiClassHead)
//   RegressionHead    squared error, logits_dimension label_dimension
//                     (tf.estimator.RegressionHead)
//
// Shared contract (verified against TF 2.15, see testdata/make_head_goldens.py):
//  - logits are [batch, logits_dimension] (row-major float).
//  - labels are [batch] or [batch, 1] for classifiers, [batch, label_dimension]
//    (or [batch] when label_dimension is 1) for regression.
//  - weights (from the `weight_column` feature; nullptr means 1) are float or
//    int64, [batch] or [batch, 1]; RegressionHead also accepts
//    [batch, label_dimension] (per-logit weights).
//  - training loss = sum(weight * unreduced_loss) / N, where N is the number
//    of unreduced loss elements (batch * label_dimension) for
//    SUM_OVER_BATCH_SIZE (zero-weight rows still count; 0 for an empty batch)
//    and 1 for SUM. This is the `loss` tf.estimator logs and writes as a
//    summary while training (no regularization here).
//  - Eval metrics (CreateEvalMetrics) use TF's keys: `loss` is the unweighted
//    mean over batches of the per-batch training loss (tf.estimator adds
//    tf.compat.v1.metrics.mean(loss)); `average_loss` is the weighted mean
//    of the unreduced losses; see each head for the rest.
//
// Heads are immutable after construction and thread-safe; an EvalMetrics is
// thread-compatible (one evaluation loop owns it).
#ifndef ESTUARY_ESTIMATOR_HEAD_HEAD_H_
#define ESTUARY_ESTIMATOR_HEAD_HEAD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tensor.h"

namespace estuary {

enum class LossReduction { kSumOverBatchSize, kSum };

// "sum_over_batch_size" (TF's default) or "sum", as in the job file.
absl::StatusOr<LossReduction> ParseLossReduction(absl::string_view name);

struct HeadOptions {
  // Feature holding per-example weights; empty: every weight is 1.
  std::string weight_column;
  // Classifiers only: string labels -> ids by position. Empty: labels are
  // already ids (int64, or float for the binary head).
  std::vector<std::string> label_vocabulary;
  LossReduction loss_reduction = LossReduction::kSumOverBatchSize;
  int n_classes = 2;        // MultiClassHead (> 2)
  int label_dimension = 1;  // RegressionHead (>= 1)
};

struct HeadLoss {
  // The reduced weighted loss of the batch (tf.estimator's `loss`).
  double training_loss = 0.0;
  // d training_loss / d logits, [batch, logits_dimension].
  RowMatrixXf dlogits;
  // Per element before weighting and reduction: [batch] for classifiers,
  // [batch * label_dimension] (row-major) for regression.
  std::vector<float> unreduced_loss;
  // The weights broadcast to unreduced_loss's shape.
  std::vector<float> weights;
};

class EvalMetrics;

class Head {
 public:
  virtual ~Head() = default;

  virtual int logits_dimension() const = 0;
  const HeadOptions& options() const { return options_; }

  // The weight tensor for a batch: nullptr when there is no weight_column;
  // InvalidArgument when the feature is missing or sparse. The pointer
  // aliases `features`.
  absl::StatusOr<const Tensor*> FindWeights(const FeatureMap& features) const;

  // Loss and gradient for one batch. InvalidArgument for shape mismatches,
  // unknown vocabulary labels (named), labels out of range, non-numeric
  // weights.
  virtual absl::StatusOr<HeadLoss> Loss(const RowMatrixXf& logits, const Tensor& labels,
                                        const Tensor* weights) const = 0;

  // Predictions keyed exactly as TF's head.predictions(logits).
  virtual absl::StatusOr<std::map<std::string, Tensor>> Predictions(
      const RowMatrixXf& logits) const = 0;

  // A fresh set of streaming eval metrics for this head.
  virtual std::unique_ptr<EvalMetrics> CreateEvalMetrics() const = 0;

 protected:
  explicit Head(HeadOptions options) : options_(std::move(options)) {}

 private:
  HeadOptions options_;
};

// Streaming evaluation: Update once per batch, Result at the end.
class EvalMetrics {
 public:
  virtual ~EvalMetrics() = default;
  virtual absl::Status Update(const RowMatrixXf& logits, const Tensor& labels,
                              const Tensor* weights) = 0;
  // Metric key -> value (no "global_step"; the Estimator adds it).
  virtual std::map<std::string, double> Result() const = 0;
  // Adds the state of `other` (another replica's metrics, made by the same
  // head's CreateEvalMetrics) to this one, so that Result() is that of one
  // EvalMetrics updated with both replicas' batches (counts exactly; float
  // sums up to the order of additions). InvalidArgument when `other` is of
  // another head.
  virtual absl::Status Merge(const EvalMetrics& other) = 0;
};

// Labels: float in [0, 1] (soft labels allowed, as TF), int64 in {0, 1}, or
// strings from a two-entry label_vocabulary.
// Predictions: logits, logistic [batch,1]; probabilities [batch,2]
// (softmax of [0, logit]); class_ids int64 [batch,1] (1 iff logit > 0);
// classes string [batch,1] (vocabulary entry or "0"/"1"); all_class_ids
// int64 [batch,2]; all_classes string [batch,2].
// Metrics: loss, average_loss, accuracy, precision, recall (Keras, of
// class_ids at threshold 0.5), prediction/mean (of logistic), label/mean,
// accuracy_baseline (max(label_mean, 1 - label_mean)), auc,
// auc_precision_recall (Keras AUC, 200 thresholds, interpolation).
class BinaryClassHead : public Head {
 public:
  static absl::StatusOr<std::unique_ptr<BinaryClassHead>> Create(HeadOptions options);
  int logits_dimension() const override { return 1; }
  absl::StatusOr<HeadLoss> Loss(const RowMatrixXf& logits, const Tensor& labels,
                                const Tensor* weights) const override;
  absl::StatusOr<std::map<std::string, Tensor>> Predictions(
      const RowMatrixXf& logits) const override;
  std::unique_ptr<EvalMetrics> CreateEvalMetrics() const override;

  // Labels as floats in [0, 1], one per row (validated, vocabulary applied).
  absl::StatusOr<std::vector<float>> ProcessLabels(const Tensor& labels, int64_t batch) const;

 private:
  using Head::Head;
};

// Labels: int64 ids in [0, n_classes) (integral floats are accepted too,
// where TF requires an integer dtype), or strings from label_vocabulary
// (n_classes entries).
// Predictions: logits, probabilities (softmax) [batch,n]; class_ids int64
// [batch,1] (first argmax); classes string [batch,1]; all_class_ids int64
// [batch,n]; all_classes string [batch,n].
// Metrics: loss, average_loss, accuracy.
class MultiClassHead : public Head {
 public:
  static absl::StatusOr<std::unique_ptr<MultiClassHead>> Create(HeadOptions options);
  int logits_dimension() const override { return options().n_classes; }
  absl::StatusOr<HeadLoss> Loss(const RowMatrixXf& logits, const Tensor& labels,
                                const Tensor* weights) const override;
  absl::StatusOr<std::map<std::string, Tensor>> Predictions(
      const RowMatrixXf& logits) const override;
  std::unique_ptr<EvalMetrics> CreateEvalMetrics() const override;

  absl::StatusOr<std::vector<int64_t>> ProcessLabels(const Tensor& labels, int64_t batch) const;

 private:
  using Head::Head;
};

// Labels: float or int64, [batch, label_dimension]. Unreduced loss is
// (logit - label)^2 per element.
// Predictions: predictions [batch, label_dimension] (the logits; TF's
// RegressionHead without inverse_link_fn has only this key).
// Metrics: loss, average_loss, prediction/mean, label/mean (weights
// broadcast to every element).
class RegressionHead : public Head {
 public:
  static absl::StatusOr<std::unique_ptr<RegressionHead>> Create(HeadOptions options);
  int logits_dimension() const override { return options().label_dimension; }
  absl::StatusOr<HeadLoss> Loss(const RowMatrixXf& logits, const Tensor& labels,
                                const Tensor* weights) const override;
  absl::StatusOr<std::map<std::string, Tensor>> Predictions(
      const RowMatrixXf& logits) const override;
  std::unique_ptr<EvalMetrics> CreateEvalMetrics() const override;

  absl::StatusOr<std::vector<float>> ProcessLabels(const Tensor& labels, int64_t batch) const;

 private:
  using Head::Head;
};

// The canned classifiers' choice: BinaryClassHead when n_classes == 2,
// MultiClassHead when n_classes > 2.
absl::StatusOr<std::unique_ptr<Head>> CreateClassifierHead(HeadOptions options);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_HEAD_HEAD_H_
