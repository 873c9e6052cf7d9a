// ONNX export (ExportOptions::format "onnx"): the job's model from its
// transformed feature inputs to logits and predictions as an ONNX
// ModelProto (IR version 8, opset 17; estimator/export/onnx.proto is the
// subset of onnx/onnx.proto written), plus the transformation spec (what
// turns raw features into those inputs: vocabularies, hash buckets,
// normalizers, bucket boundaries) as JSON beside it.
//
// Graph inputs (batch dimension "batch"):
//   dense       float [batch, D]: the dense values of every dense column
//               the model reads directly (numeric after its normalizer,
//               bucketized one-hot, indicator counts), sorted by column
//               name and concatenated; absent when D = 0.
//   <name>_ids  int64 [batch, L]: the ids of categorical column <name>
//               (read by the linear part, or by an embedding column), one
//               row per example, padded with -1 (ids outside
//               [0, num_buckets) are dropped as Estuary drops them).
// Graph: each ids input -> Gather over its table with a zero row appended
// (so the padding -1 reads zeros) -> ReduceSum over the ids (sum; mean and
// sqrtn divide by the count of real ids, at least 1); the linear part sums
// those, dense MatMul and its bias; the DNN concatenates dense and the
// embeddings (its first kernel's rows permuted to match) through
// MatMul/Add/activation (batch norm folded into Mul/Add) to the logits
// layer. Outputs: logits; binary classifiers logistic (Sigmoid),
// probabilities ([1-p, p]), class_ids (logit > 0); multi-class
// probabilities (Softmax) and class_ids (ArgMax); regressors predictions.
//
// transform.json: {"inputs": {NAME: {"dtype", "shape", and "columns"
// (dense: name, offset, width) or "column" + "num_buckets" (ids)}},
// "feature_columns": the job's columns (vocabulary files inlined as
// "vocabulary"), "hashing": how hash buckets and crosses hash}. OnnxFeeds
// is its reference implementation.
#ifndef ESTUARY_ESTIMATOR_EXPORT_ONNX_EXPORT_H_
#define ESTUARY_ESTIMATOR_EXPORT_ONNX_EXPORT_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/job_spec.h"
#include "common/tensor.h"
#include "common/variables.h"

namespace estuary {
namespace export_format {

inline constexpr char kOnnxModelFile[] = "model.onnx";
inline constexpr char kOnnxTransformFile[] = "transform.json";
inline constexpr int64_t kOnnxIrVersion = 8;
inline constexpr int64_t kOnnxOpset = 17;

// Writes model.onnx and transform.json into directory `dir`. `vars` are the
// model's variables (as LoadModel gives them). InvalidArgument naming the
// estimator type or column the graph cannot express (baseline and custom
// models, weighted categorical columns, embedding max_norm); the file
// system's errors.
absl::Status WriteOnnxModel(const JobSpec& job, const Variables& vars, const std::string& dir,
                            const io::Env& env);

// The graph inputs for a batch of raw features (what transform.json
// describes). InvalidArgument from the feature columns.
absl::StatusOr<std::map<std::string, Tensor>> OnnxFeeds(const JobSpec& job,
                                                        const FeatureMap& features);

}  // namespace export_format
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_EXPORT_ONNX_EXPORT_H_
