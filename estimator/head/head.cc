#include "estimator/head/head.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "estimator/head/metrics.h"

namespace estuary {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status CheckLogits(const RowMatrixXf& logits, int dimension) {
  if (logits.cols() != dimension) {
    return absl::InvalidArgumentError(absl::StrCat(
        "logits shape must be [batch, ", dimension, "], got [", logits.rows(), ", ",
        logits.cols(), "]"));
  }
  return absl::OkStatus();
}

// Labels must be [batch] (when dimension is 1) or [batch, dimension].
absl::Status CheckLabelShape(const Tensor& labels, int64_t batch, int dimension) {
  const auto& s = labels.shape;
  const bool ok = (s.size() == 1 && dimension == 1 && s[0] == batch) ||
                  (s.size() == 2 && s[0] == batch && s[1] == dimension);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "labels shape must be [batch, ", dimension, "]", dimension == 1 ? " or [batch]" : "",
        " with batch ", batch, " (the logits' batch), got ", ShapeString(s)));
  }
  return absl::OkStatus();
}

// Weights broadcast to [batch, dimension] (row-major); all ones without
// weights. Accepts [batch], [batch, 1] and, if allow_per_logit,
// [batch, dimension].
absl::StatusOr<std::vector<float>> BroadcastWeights(const Tensor* weights, int64_t batch,
                                                    int dimension, bool allow_per_logit) {
  const size_t n = static_cast<size_t>(batch * dimension);
  if (weights == nullptr) return std::vector<float>(n, 1.0f);
  if (weights->dtype == DType::kString) {
    return absl::InvalidArgumentError("weights: weight column should be castable to float, got string");
  }
  const auto& s = weights->shape;
  int per_row = 0;
  if ((s.size() == 1 && s[0] == batch) || (s.size() == 2 && s[0] == batch && s[1] == 1)) {
    per_row = 1;
  } else if (allow_per_logit && s.size() == 2 && s[0] == batch && s[1] == dimension) {
    per_row = dimension;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "weights shape must be [batch] or [batch, 1]",
        allow_per_logit ? absl::StrCat(" or [batch, ", dimension, "]") : "", " with batch ", batch,
        ", got ", ShapeString(s)));
  }
  auto value = [&](int64_t i) -> float {
    return weights->dtype == DType::kFloat ? weights->floats[i]
                                           : static_cast<float>(weights->ints[i]);
  };
  std::vector<float> out(n);
  for (int64_t r = 0; r < batch; ++r) {
    for (int d = 0; d < dimension; ++d) {
      out[r * dimension + d] = per_row == 1 ? value(r) : value(r * dimension + d);
    }
  }
  return out;
}

double Divisor(LossReduction reduction, size_t num_elements) {
  return reduction == LossReduction::kSum ? 1.0 : static_cast<double>(num_elements);
}

absl::StatusOr<int64_t> VocabularyId(const std::vector<std::string>& vocab,
                                     const std::string& label, int64_t row) {
  auto it = std::find(vocab.begin(), vocab.end(), label);
  if (it == vocab.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "labels: '", label, "' (row ", row, ") is not in label_vocabulary [",
        absl::StrJoin(vocab, ", "), "]"));
  }
  return static_cast<int64_t>(it - vocab.begin());
}

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

Tensor Repeat(std::vector<int64_t> shape, const std::vector<std::string>& row, int64_t batch) {
  std::vector<std::string> v;
  v.reserve(batch * row.size());
  for (int64_t r = 0; r < batch; ++r) v.insert(v.end(), row.begin(), row.end());
  return Tensor::Strings(std::move(shape), std::move(v));
}

std::vector<std::string> ClassNames(const HeadOptions& o, int n) {
  if (!o.label_vocabulary.empty()) return o.label_vocabulary;
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(absl::StrCat(i));
  return names;
}

// Classifier predictions shared by both heads: class_ids, classes,
// all_class_ids, all_classes.
void AddClassPredictions(const std::vector<int64_t>& ids, const std::vector<std::string>& names,
                         std::map<std::string, Tensor>* out) {
  const int64_t batch = static_cast<int64_t>(ids.size());
  const int64_t n = static_cast<int64_t>(names.size());
  std::vector<std::string> classes;
  classes.reserve(batch);
  for (int64_t id : ids) classes.push_back(names[id]);
  std::vector<int64_t> all_ids;
  all_ids.reserve(batch * n);
  for (int64_t r = 0; r < batch; ++r) {
    for (int64_t i = 0; i < n; ++i) all_ids.push_back(i);
  }
  (*out)["class_ids"] = Tensor::Ints({batch, 1}, ids);
  (*out)["classes"] = Tensor::Strings({batch, 1}, std::move(classes));
  (*out)["all_class_ids"] = Tensor::Ints({batch, n}, std::move(all_ids));
  (*out)["all_classes"] = Repeat({batch, n}, names, batch);
}

Tensor MatrixTensor(const RowMatrixXf& m) {
  return Tensor::Floats({m.rows(), m.cols()},
                        std::vector<float>(m.data(), m.data() + m.size()));
}

// ---- Eval metrics -------------------------------------------------------

absl::Status MergeMismatch(const char* self) {
  return absl::InvalidArgumentError(
      absl::StrCat("can not merge another head's eval metrics into ", self));
}

class BinaryEvalMetrics : public EvalMetrics {
 public:
  explicit BinaryEvalMetrics(const BinaryClassHead* head) : head_(head) {}

  absl::Status Update(const RowMatrixXf& logits, const Tensor& labels,
                      const Tensor* weights) override {
    ASSIGN_OR_RETURN(HeadLoss loss, head_->Loss(logits, labels, weights));
    ASSIGN_OR_RETURN(std::vector<float> y, head_->ProcessLabels(labels, logits.rows()));
    loss_.Update(loss.training_loss);
    for (int64_t r = 0; r < logits.rows(); ++r) {
      const double w = loss.weights[r];
      const float logistic = static_cast<float>(Sigmoid(logits(r, 0)));
      const float class_id = logits(r, 0) > 0.0f ? 1.0f : 0.0f;
      average_loss_.Update(loss.unreduced_loss[r], w);
      accuracy_.Update(y[r] == class_id ? 1.0 : 0.0, w);
      precision_recall_.Update(y[r], class_id, w);
      prediction_mean_.Update(logistic, w);
      label_mean_.Update(y[r], w);
      auc_.Update(y[r], logistic, w);
      auc_pr_.Update(y[r], logistic, w);
    }
    return absl::OkStatus();
  }

  std::map<std::string, double> Result() const override {
    const double c = label_mean_.count(), t = label_mean_.total();
    const double baseline = c == 0.0 ? 0.0 : std::max(t, c - t) / c;
    return {{"loss", loss_.Result()},
            {"average_loss", average_loss_.Result()},
            {"accuracy", accuracy_.Result()},
            {"precision", precision_recall_.Precision()},
            {"recall", precision_recall_.Recall()},
            {"prediction/mean", prediction_mean_.Result()},
            {"label/mean", label_mean_.Result()},
            {"accuracy_baseline", baseline},
            {"auc", auc_.Result()},
            {"auc_precision_recall", auc_pr_.Result()}};
  }

  absl::Status Merge(const EvalMetrics& other) override {
    const auto* o = dynamic_cast<const BinaryEvalMetrics*>(&other);
    if (o == nullptr) return MergeMismatch("BinaryEvalMetrics");
    loss_.Merge(o->loss_);
    average_loss_.Merge(o->average_loss_);
    accuracy_.Merge(o->accuracy_);
    prediction_mean_.Merge(o->prediction_mean_);
    label_mean_.Merge(o->label_mean_);
    precision_recall_.Merge(o->precision_recall_);
    auc_.Merge(o->auc_);
    auc_pr_.Merge(o->auc_pr_);
    return absl::OkStatus();
  }

 private:
  const BinaryClassHead* head_;
  MeanMetric loss_, average_loss_, accuracy_, prediction_mean_, label_mean_;
  PrecisionRecallMetric precision_recall_;
  AucMetric auc_{AucMetric::Curve::kRoc};
  AucMetric auc_pr_{AucMetric::Curve::kPr};
};

class MultiClassEvalMetrics : public EvalMetrics {
 public:
  explicit MultiClassEvalMetrics(const MultiClassHead* head) : head_(head) {}

  absl::Status Update(const RowMatrixXf& logits, const Tensor& labels,
                      const Tensor* weights) override {
    ASSIGN_OR_RETURN(HeadLoss loss, head_->Loss(logits, labels, weights));
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, head_->ProcessLabels(labels, logits.rows()));
    loss_.Update(loss.training_loss);
    for (int64_t r = 0; r < logits.rows(); ++r) {
      Eigen::Index argmax = 0;
      logits.row(r).maxCoeff(&argmax);
      average_loss_.Update(loss.unreduced_loss[r], loss.weights[r]);
      accuracy_.Update(argmax == ids[r] ? 1.0 : 0.0, loss.weights[r]);
    }
    return absl::OkStatus();
  }

  std::map<std::string, double> Result() const override {
    return {{"loss", loss_.Result()},
            {"average_loss", average_loss_.Result()},
            {"accuracy", accuracy_.Result()}};
  }

  absl::Status Merge(const EvalMetrics& other) override {
    const auto* o = dynamic_cast<const MultiClassEvalMetrics*>(&other);
    if (o == nullptr) return MergeMismatch("MultiClassEvalMetrics");
    loss_.Merge(o->loss_);
    average_loss_.Merge(o->average_loss_);
    accuracy_.Merge(o->accuracy_);
    return absl::OkStatus();
  }

 private:
  const MultiClassHead* head_;
  MeanMetric loss_, average_loss_, accuracy_;
};

class RegressionEvalMetrics : public EvalMetrics {
 public:
  explicit RegressionEvalMetrics(const RegressionHead* head) : head_(head) {}

  absl::Status Update(const RowMatrixXf& logits, const Tensor& labels,
                      const Tensor* weights) override {
    ASSIGN_OR_RETURN(HeadLoss loss, head_->Loss(logits, labels, weights));
    ASSIGN_OR_RETURN(std::vector<float> y, head_->ProcessLabels(labels, logits.rows()));
    loss_.Update(loss.training_loss);
    for (size_t i = 0; i < y.size(); ++i) {
      const double w = loss.weights[i];
      average_loss_.Update(loss.unreduced_loss[i], w);
      prediction_mean_.Update(logits.data()[i], w);
      label_mean_.Update(y[i], w);
    }
    return absl::OkStatus();
  }

  std::map<std::string, double> Result() const override {
    return {{"loss", loss_.Result()},
            {"average_loss", average_loss_.Result()},
            {"prediction/mean", prediction_mean_.Result()},
            {"label/mean", label_mean_.Result()}};
  }

  absl::Status Merge(const EvalMetrics& other) override {
    const auto* o = dynamic_cast<const RegressionEvalMetrics*>(&other);
    if (o == nullptr) return MergeMismatch("RegressionEvalMetrics");
    loss_.Merge(o->loss_);
    average_loss_.Merge(o->average_loss_);
    prediction_mean_.Merge(o->prediction_mean_);
    label_mean_.Merge(o->label_mean_);
    return absl::OkStatus();
  }

 private:
  const RegressionHead* head_;
  MeanMetric loss_, average_loss_, prediction_mean_, label_mean_;
};

}  // namespace

absl::StatusOr<LossReduction> ParseLossReduction(absl::string_view name) {
  if (name == "sum_over_batch_size") return LossReduction::kSumOverBatchSize;
  if (name == "sum") return LossReduction::kSum;
  return absl::InvalidArgumentError(absl::StrCat(
      "loss_reduction: expected \"sum_over_batch_size\" or \"sum\", got \"", name, "\""));
}

absl::StatusOr<const Tensor*> Head::FindWeights(const FeatureMap& features) const {
  if (options_.weight_column.empty()) return nullptr;
  auto it = features.find(options_.weight_column);
  if (it == features.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weight_column '", options_.weight_column, "' is not among the features"));
  }
  const Tensor* t = std::get_if<Tensor>(&it->second);
  if (t == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weight_column '", options_.weight_column, "' must be a dense tensor, got a sparse one"));
  }
  return t;
}

// ---- BinaryClassHead ----------------------------------------------------

absl::StatusOr<std::unique_ptr<BinaryClassHead>> BinaryClassHead::Create(HeadOptions options) {
  if (!options.label_vocabulary.empty() && options.label_vocabulary.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label_vocabulary: a binary classifier needs 2 entries, got ",
        options.label_vocabulary.size()));
  }
  options.n_classes = 2;
  options.label_dimension = 1;
  return std::unique_ptr<BinaryClassHead>(new BinaryClassHead(std::move(options)));
}

absl::StatusOr<std::vector<float>> BinaryClassHead::ProcessLabels(const Tensor& labels,
                                                                  int64_t batch) const {
  RETURN_IF_ERROR(CheckLabelShape(labels, batch, 1));
  const auto& vocab = options().label_vocabulary;
  std::vector<float> y(batch);
  if (!vocab.empty()) {
    if (labels.dtype != DType::kString) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels: dtype should be string when label_vocabulary is given, got ",
          DTypeName(labels.dtype)));
    }
    for (int64_t r = 0; r < batch; ++r) {
      ASSIGN_OR_RETURN(int64_t id, VocabularyId(vocab, labels.strings[r], r));
      y[r] = static_cast<float>(id);
    }
    return y;
  }
  if (labels.dtype == DType::kString) {
    return absl::InvalidArgumentError(
        "labels: string labels need a label_vocabulary (labels must otherwise be 0/1 numbers)");
  }
  for (int64_t r = 0; r < batch; ++r) {
    const float v = labels.dtype == DType::kFloat ? labels.floats[r]
                                                  : static_cast<float>(labels.ints[r]);
    if (!(v >= 0.0f && v <= 1.0f)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels: label ", v, " (row ", r, ") is out of range: binary labels must be in [0, 1]"));
    }
    y[r] = v;
  }
  return y;
}

absl::StatusOr<HeadLoss> BinaryClassHead::Loss(const RowMatrixXf& logits, const Tensor& labels,
                                               const Tensor* weights) const {
  RETURN_IF_ERROR(CheckLogits(logits, 1));
  const int64_t batch = logits.rows();
  ASSIGN_OR_RETURN(std::vector<float> y, ProcessLabels(labels, batch));
  HeadLoss out;
  ASSIGN_OR_RETURN(out.weights, BroadcastWeights(weights, batch, 1, false));
  out.unreduced_loss.resize(batch);
  out.dlogits.resize(batch, 1);
  const double divisor = Divisor(options().loss_reduction, batch);
  double sum = 0.0;
  for (int64_t r = 0; r < batch; ++r) {
    const double x = logits(r, 0), z = y[r];
    // tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x z + log(1 + e^-|x|).
    const double l = std::max(x, 0.0) - x * z + std::log1p(std::exp(-std::abs(x)));
    out.unreduced_loss[r] = static_cast<float>(l);
    sum += l * out.weights[r];
    out.dlogits(r, 0) = batch == 0 ? 0.0f
                                   : static_cast<float>((Sigmoid(x) - z) * out.weights[r] / divisor);
  }
  out.training_loss = batch == 0 ? 0.0 : sum / divisor;
  return out;
}

absl::StatusOr<std::map<std::string, Tensor>> BinaryClassHead::Predictions(
    const RowMatrixXf& logits) const {
  RETURN_IF_ERROR(CheckLogits(logits, 1));
  const int64_t batch = logits.rows();
  std::map<std::string, Tensor> out;
  std::vector<float> logistic(batch), probabilities(2 * batch);
  std::vector<int64_t> ids(batch);
  for (int64_t r = 0; r < batch; ++r) {
    const double x = logits(r, 0);
    logistic[r] = static_cast<float>(Sigmoid(x));
    // softmax([0, x]), as TF computes probabilities from two-class logits.
    const double m = std::max(0.0, x);
    const double e0 = std::exp(-m), e1 = std::exp(x - m);
    probabilities[2 * r] = static_cast<float>(e0 / (e0 + e1));
    probabilities[2 * r + 1] = static_cast<float>(e1 / (e0 + e1));
    ids[r] = x > 0.0 ? 1 : 0;  // argmax of [0, x]: ties go to class 0
  }
  out["logits"] = MatrixTensor(logits);
  out["logistic"] = Tensor::Floats({batch, 1}, std::move(logistic));
  out["probabilities"] = Tensor::Floats({batch, 2}, std::move(probabilities));
  AddClassPredictions(ids, ClassNames(options(), 2), &out);
  return out;
}

std::unique_ptr<EvalMetrics> BinaryClassHead::CreateEvalMetrics() const {
  return std::make_unique<BinaryEvalMetrics>(this);
}

// ---- MultiClassHead -----------------------------------------------------

absl::StatusOr<std::unique_ptr<MultiClassHead>> MultiClassHead::Create(HeadOptions options) {
  if (options.n_classes <= 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_classes must be > 2 for MultiClassHead, got ", options.n_classes));
  }
  if (!options.label_vocabulary.empty() &&
      static_cast<int>(options.label_vocabulary.size()) != options.n_classes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label_vocabulary: has ", options.label_vocabulary.size(), " entries but n_classes is ",
        options.n_classes));
  }
  options.label_dimension = 1;
  return std::unique_ptr<MultiClassHead>(new MultiClassHead(std::move(options)));
}

absl::StatusOr<std::vector<int64_t>> MultiClassHead::ProcessLabels(const Tensor& labels,
                                                                   int64_t batch) const {
  RETURN_IF_ERROR(CheckLabelShape(labels, batch, 1));
  const auto& vocab = options().label_vocabulary;
  const int n = options().n_classes;
  std::vector<int64_t> ids(batch);
  if (!vocab.empty()) {
    if (labels.dtype != DType::kString) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels: dtype should be string when label_vocabulary is given, got ",
          DTypeName(labels.dtype)));
    }
    for (int64_t r = 0; r < batch; ++r) {
      ASSIGN_OR_RETURN(ids[r], VocabularyId(vocab, labels.strings[r], r));
    }
    return ids;
  }
  if (labels.dtype == DType::kString) {
    return absl::InvalidArgumentError(
        "labels: string labels need a label_vocabulary (labels must otherwise be class ids)");
  }
  for (int64_t r = 0; r < batch; ++r) {
    if (labels.dtype == DType::kFloat) {
      const float v = labels.floats[r];
      if (v != std::floor(v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "labels: label ", v, " (row ", r, ") is not an integer class id"));
      }
      if (!(v >= 0.0f && v < static_cast<float>(n))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "labels: label ", v, " (row ", r, ") is out of range [0, ", n, ")"));
      }
      ids[r] = static_cast<int64_t>(v);
    } else {
      ids[r] = labels.ints[r];
    }
    if (ids[r] < 0 || ids[r] >= n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "labels: label ", ids[r], " (row ", r, ") is out of range [0, ", n, ")"));
    }
  }
  return ids;
}

absl::StatusOr<HeadLoss> MultiClassHead::Loss(const RowMatrixXf& logits, const Tensor& labels,
                                              const Tensor* weights) const {
  const int n = options().n_classes;
  RETURN_IF_ERROR(CheckLogits(logits, n));
  const int64_t batch = logits.rows();
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, ProcessLabels(labels, batch));
  HeadLoss out;
  ASSIGN_OR_RETURN(out.weights, BroadcastWeights(weights, batch, 1, false));
  out.unreduced_loss.resize(batch);
  out.dlogits.resize(batch, n);
  const double divisor = Divisor(options().loss_reduction, batch);
  double sum = 0.0;
  std::vector<double> e(n);
  for (int64_t r = 0; r < batch; ++r) {
    const double m = logits.row(r).maxCoeff();
    double z = 0.0;
    for (int k = 0; k < n; ++k) z += (e[k] = std::exp(logits(r, k) - m));
    // Sparse softmax cross-entropy: logsumexp(x) - x[label].
    const double l = m + std::log(z) - logits(r, ids[r]);
    out.unreduced_loss[r] = static_cast<float>(l);
    sum += l * out.weights[r];
    const double scale = out.weights[r] / divisor;
    for (int k = 0; k < n; ++k) {
      out.dlogits(r, k) = static_cast<float>((e[k] / z - (k == ids[r] ? 1.0 : 0.0)) * scale);
    }
  }
  out.training_loss = batch == 0 ? 0.0 : sum / divisor;
  return out;
}

absl::StatusOr<std::map<std::string, Tensor>> MultiClassHead::Predictions(
    const RowMatrixXf& logits) const {
  const int n = options().n_classes;
  RETURN_IF_ERROR(CheckLogits(logits, n));
  const int64_t batch = logits.rows();
  std::vector<float> probabilities(batch * n);
  std::vector<int64_t> ids(batch);
  for (int64_t r = 0; r < batch; ++r) {
    Eigen::Index argmax = 0;
    const double m = logits.row(r).maxCoeff(&argmax);  // first maximum, as tf.argmax
    ids[r] = argmax;
    double z = 0.0;
    for (int k = 0; k < n; ++k) z += std::exp(logits(r, k) - m);
    for (int k = 0; k < n; ++k) {
      probabilities[r * n + k] = static_cast<float>(std::exp(logits(r, k) - m) / z);
    }
  }
  std::map<std::string, Tensor> out;
  out["logits"] = MatrixTensor(logits);
  out["probabilities"] = Tensor::Floats({batch, n}, std::move(probabilities));
  AddClassPredictions(ids, ClassNames(options(), n), &out);
  return out;
}

std::unique_ptr<EvalMetrics> MultiClassHead::CreateEvalMetrics() const {
  return std::make_unique<MultiClassEvalMetrics>(this);
}

// ---- RegressionHead -----------------------------------------------------

absl::StatusOr<std::unique_ptr<RegressionHead>> RegressionHead::Create(HeadOptions options) {
  if (options.label_dimension < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("label_dimension must be >= 1, got ", options.label_dimension));
  }
  if (!options.label_vocabulary.empty()) {
    return absl::InvalidArgumentError("label_vocabulary: not supported by a regression head");
  }
  return std::unique_ptr<RegressionHead>(new RegressionHead(std::move(options)));
}

absl::StatusOr<std::vector<float>> RegressionHead::ProcessLabels(const Tensor& labels,
                                                                 int64_t batch) const {
  const int d = options().label_dimension;
  RETURN_IF_ERROR(CheckLabelShape(labels, batch, d));
  if (labels.dtype == DType::kString) {
    return absl::InvalidArgumentError("labels: a regression head needs numeric labels, got string");
  }
  if (labels.dtype == DType::kFloat) return labels.floats;
  std::vector<float> y(labels.ints.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(labels.ints[i]);
  return y;
}

absl::StatusOr<HeadLoss> RegressionHead::Loss(const RowMatrixXf& logits, const Tensor& labels,
                                              const Tensor* weights) const {
  const int d = options().label_dimension;
  RETURN_IF_ERROR(CheckLogits(logits, d));
  const int64_t batch = logits.rows();
  ASSIGN_OR_RETURN(std::vector<float> y, ProcessLabels(labels, batch));
  HeadLoss out;
  ASSIGN_OR_RETURN(out.weights, BroadcastWeights(weights, batch, d, true));
  const size_t n = y.size();
  out.unreduced_loss.resize(n);
  out.dlogits.resize(batch, d);
  const double divisor = Divisor(options().loss_reduction, n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double diff = static_cast<double>(logits.data()[i]) - y[i];
    out.unreduced_loss[i] = static_cast<float>(diff * diff);
    sum += diff * diff * out.weights[i];
    out.dlogits.data()[i] = static_cast<float>(2.0 * diff * out.weights[i] / divisor);
  }
  out.training_loss = n == 0 ? 0.0 : sum / divisor;
  return out;
}

absl::StatusOr<std::map<std::string, Tensor>> RegressionHead::Predictions(
    const RowMatrixXf& logits) const {
  RETURN_IF_ERROR(CheckLogits(logits, options().label_dimension));
  return std::map<std::string, Tensor>{{"predictions", MatrixTensor(logits)}};
}

std::unique_ptr<EvalMetrics> RegressionHead::CreateEvalMetrics() const {
  return std::make_unique<RegressionEvalMetrics>(this);
}

absl::StatusOr<std::unique_ptr<Head>> CreateClassifierHead(HeadOptions options) {
  if (options.n_classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_classes must be >= 2, got ", options.n_classes));
  }
  if (options.n_classes == 2) {
    ASSIGN_OR_RETURN(auto head, BinaryClassHead::Create(std::move(options)));
    return std::unique_ptr<Head>(std::move(head));
  }
  ASSIGN_OR_RETURN(auto head, MultiClassHead::Create(std::move(options)));
  return std::unique_ptr<Head>(std::move(head));
}

}  // namespace estuary
