// The export format (docs/ARCHITECTURE.md "Export format"): the options,
// the signatures TF's heads export, the serving parse spec of a job's
// feature columns, and the writer. The loader (export.h) and the
// Estimator (Estimator::ExportSavedModel) share this code; it depends on
// no Estimator, so both can.
//
// An export "<base>/<timestamp>/" holds:
//   export.json       {"format": "estuary", "format_version": 1,
//                      "receiver": "parsing"|"raw", "global_step": N,
//                      "checkpoint": "<the source checkpoint's prefix>",
//                      "variables": "variables/model.ckpt-N"}  (written last)
//   model.json        {"estimator": {...}, "feature_columns": [...]}: the
//                     job's sections, vocabulary_file rewritten to assets/
//   signatures.json   {"signature_def": {KEY: {"method_name": ...,
//                      "inputs": {NAME: {"dtype": "string", "shape": [-1]}},
//                      "outputs": {...}}}}
//   variables/        the model's variables and global_step as one
//                     common/checkpoint checkpoint (one shard + manifest)
//   assets/           vocabulary files
//   assets.extra/     ExportOptions::assets_extra
// An ONNX export ("onnx") holds export.json, model.onnx and
// transform.json instead (estimator/export/onnx_export.h); a SavedModel
// export ("saved_model") export.json, saved_model.pb, variables/ (a TF
// tensor bundle) and assets/ (estimator/export/saved_model_export.h).
//
// Thread-safe: the functions keep no state.
#ifndef ESTUARY_ESTIMATOR_EXPORT_EXPORT_FORMAT_H_
#define ESTUARY_ESTIMATOR_EXPORT_EXPORT_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/job_spec.h"
#include "common/tensor.h"
#include "common/variables.h"
#include "estimator/data/example_parser.h"
#include "nlohmann/json.hpp"

namespace estuary {

struct ExportOptions {
  std::string export_dir_base;  // empty: <model_dir>/export
  std::string checkpoint_path;  // empty: the latest in model_dir
  // "parsing": the serving input is a batch of serialized tf.train.Example
  // (build_parsing_serving_input_receiver_fn: input key "examples" for
  // predict, "inputs" for classify/regress); "raw": one tensor per raw
  // feature (build_raw_serving_input_receiver_fn).
  std::string receiver = "parsing";
  std::string format = "estuary";  // estuary | onnx | saved_model
  // Extra files: destination path inside the export's assets.extra/ ->
  // source path (tf.estimator's assets_extra).
  std::map<std::string, std::string> assets_extra;
  io::Env* env = nullptr;  // null: io::Env::Default()
};

// One input or output of a signature. shape: -1 for unknown (the batch).
struct TensorSpec {
  DType dtype = DType::kFloat;
  std::vector<int64_t> shape;
};

// A signature as TF's SignatureDef describes it.
struct SignatureSpec {
  std::string key;          // "serving_default", "predict", ...
  std::string method_name;  // "tensorflow/serving/predict" | "/classify" | "/regress"
  std::map<std::string, TensorSpec> inputs;
  std::map<std::string, TensorSpec> outputs;
};

namespace export_format {

inline constexpr char kMetaFile[] = "export.json";
inline constexpr char kModelFile[] = "model.json";
inline constexpr char kSignaturesFile[] = "signatures.json";
inline constexpr char kVariablesDir[] = "variables";
inline constexpr char kAssetsDir[] = "assets";
inline constexpr char kAssetsExtraDir[] = "assets.extra";
inline constexpr int kFormatVersion = 1;

// TF's signature keys and method names (signature_constants.py).
inline constexpr char kServingDefault[] = "serving_default";
inline constexpr char kPredictKey[] = "predict";
inline constexpr char kClassifyKey[] = "classification";
inline constexpr char kRegressKey[] = "regression";
inline constexpr char kPredictMethod[] = "tensorflow/serving/predict";
inline constexpr char kClassifyMethod[] = "tensorflow/serving/classify";
inline constexpr char kRegressMethod[] = "tensorflow/serving/regress";

// tf.feature_column.make_parse_example_spec of the job's columns: numeric
// -> FixedLenFeature(float32, shape, default); vocabulary / hash bucket ->
// VarLenFeature(dtype); identity -> VarLenFeature(int64); weighted ->
// VarLenFeature(float32) for the weight key; a crossed column's raw keys
// -> VarLenFeature(string). Ordered by key. InvalidArgument naming the
// column when two columns want one key with different specs.
absl::StatusOr<std::vector<data::FeatureSpec>> ServingFeatureSpecs(const JobSpec& job);

// The signatures tf.estimator exports for the job's head:
//   binary classifier: serving_default = classification (inputs "inputs"),
//     classification (classes, scores), regression (outputs = logistic),
//     predict (inputs "examples"; the head's prediction keys)
//   multi-class: serving_default = classification, classification, predict
//   regressor: serving_default = regression (outputs), regression, predict
// With the raw receiver only predict and serving_default = predict exist
// (TF drops classify/regress signatures whose input is not one string
// tensor), their inputs the raw features. InvalidArgument for an unknown
// receiver or a job without an estimator section.
absl::StatusOr<std::vector<SignatureSpec>> HeadSignatures(
    const EstimatorConfig& est, const std::string& receiver,
    const std::vector<data::FeatureSpec>& features);

// The head prediction key that fills output `output` of a signature with
// method `method_name` (classify: classes -> all_classes, scores ->
// probabilities; regress: outputs -> logistic or predictions; predict: the
// same key). `has_logistic`: the head is a binary classifier.
std::string PredictionKeyFor(const std::string& method_name, const std::string& output,
                             bool has_logistic);

nlohmann::json SignaturesToJson(const std::vector<SignatureSpec>& signatures);
// InvalidArgument naming the signature / tensor on a malformed document.
absl::StatusOr<std::vector<SignatureSpec>> SignaturesFromJson(const nlohmann::json& doc);

// Writes an export of `vars` (the model's variables and global_step, as
// LoadModel gives them) for `job` under options.export_dir_base (required
// here) and returns its directory. `checkpoint` is recorded as the source.
// The export is built in "<base>/.tmp-<timestamp>-<pid>" and renamed to
// "<base>/<timestamp>", timestamp the current second or the next free
// integer. InvalidArgument for bad options (receiver, format, an
// assets_extra destination outside assets.extra/) or a job this format
// cannot describe (no `document`, a custom model); the file system's
// errors naming the file.
absl::StatusOr<std::string> WriteExport(const JobSpec& job, const Variables& vars,
                                        const std::string& checkpoint,
                                        const ExportOptions& options);

// Makes "<base>/<timestamp>" from a complete temporary directory `tmp`
// (renaming it, taking the next free integer when the name is taken) and
// returns it. For writers of other formats.
absl::StatusOr<std::string> PublishExportDir(const io::Env& env, const std::string& base,
                                             const std::string& tmp, int64_t timestamp);

// Removes `path` and everything under it (files through `env`, emptied
// directories through the local file system). NotFound if absent.
absl::Status RemoveTree(const io::Env& env, const std::string& path);

// The timestamped versions under `base` (numeric names only; dot-names and
// others skipped), ascending. Empty when `base` does not exist.
absl::StatusOr<std::vector<int64_t>> ListVersions(const io::Env& env, const std::string& base);

}  // namespace export_format
}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_EXPORT_EXPORT_FORMAT_H_
