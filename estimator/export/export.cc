#include "estimator/export/export.h"

#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "estimator/estimator.h"
#include "estimator/strategy.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using json = nlohmann::json;
namespace ef = export_format;

// A file of the export as JSON: NotFound / the Env's errors as they are,
// DataLoss naming the file when it does not parse.
absl::StatusOr<json> ReadJson(const io::Env& env, const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(env, path));
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::DataLossError(absl::StrCat(path, ": not valid JSON"));
  return doc;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

class LoadedExportImpl : public LoadedExport {
 public:
  LoadedExportImpl(int64_t version, bool parsing, std::unique_ptr<Estimator> estimator,
                   Variables vars, data::ExampleParserSpec parse_spec,
                   std::vector<SignatureSpec> signatures)
      : version_(version),
        parsing_(parsing),
        estimator_(std::move(estimator)),
        vars_(std::move(vars)),
        parse_spec_(std::move(parse_spec)),
        signatures_(std::move(signatures)) {}

  int64_t version() const override { return version_; }
  const std::vector<SignatureSpec>& signatures() const override { return signatures_; }

  absl::StatusOr<std::map<std::string, Tensor>> Run(
      const std::string& key, const std::map<std::string, Tensor>& inputs) const override {
    const SignatureSpec* sig = nullptr;
    std::vector<std::string> have;
    for (const SignatureSpec& s : signatures_) {
      if (s.key == key) sig = &s;
      have.push_back(s.key);
    }
    if (sig == nullptr) {
      return absl::NotFoundError(absl::StrCat("no signature '", key, "' in this export (have: ",
                                              absl::StrJoin(have, ", "), ")"));
    }
    ASSIGN_OR_RETURN(FeatureMap features, Features(*sig, inputs));
    std::mt19937_64 rng(1);
    std::unique_ptr<Model::ForwardState> state;
    ASSIGN_OR_RETURN(RowMatrixXf logits,
                     estimator_->model().Forward(features, vars_, false, &rng, &state));
    ASSIGN_OR_RETURN(auto predictions, estimator_->head().Predictions(logits));
    const bool has_logistic = predictions.count("logistic") > 0;
    std::map<std::string, Tensor> out;
    for (const auto& [name, spec] : sig->outputs) {
      const std::string from = ef::PredictionKeyFor(sig->method_name, name, has_logistic);
      auto it = predictions.find(from);
      if (it == predictions.end()) {
        return absl::InternalError(absl::StrCat("signature '", key, "' output '", name,
                                                "': the head has no prediction '", from, "'"));
      }
      out[name] = it->second;
    }
    return out;
  }

 private:
  // The features a batch of `inputs` gives: parsed Examples (parsing
  // receiver) or the tensors themselves (raw receiver).
  absl::StatusOr<FeatureMap> Features(const SignatureSpec& sig,
                                      const std::map<std::string, Tensor>& inputs) const {
    for (const auto& [name, t] : inputs) {
      if (sig.inputs.count(name) == 0) {
        std::vector<std::string> want;
        for (const auto& [n, s] : sig.inputs) want.push_back(n);
        return absl::InvalidArgumentError(absl::StrCat("input '", name,
                                                       "' is not an input of signature '", sig.key,
                                                       "' (inputs: ", absl::StrJoin(want, ", "),
                                                       ")"));
      }
    }
    int64_t batch = -1;
    std::string batch_from;
    for (const auto& [name, spec] : sig.inputs) {
      auto it = inputs.find(name);
      if (it == inputs.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("missing input '", name, "' of signature '", sig.key, "'"));
      }
      const Tensor& t = it->second;
      if (t.dtype != spec.dtype) {
        return absl::InvalidArgumentError(absl::StrCat("input '", name, "': expected ",
                                                       DTypeName(spec.dtype), ", got ",
                                                       DTypeName(t.dtype)));
      }
      if (t.shape.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", name, "': a batch needs rank >= 1, got a scalar"));
      }
      const size_t values = t.dtype == DType::kFloat   ? t.floats.size()
                            : t.dtype == DType::kInt64 ? t.ints.size()
                                                       : t.strings.size();
      if (t.num_elements() != static_cast<int64_t>(values)) {
        return absl::InvalidArgumentError(absl::StrCat("input '", name, "': shape ",
                                                       ShapeString(t.shape), " needs ",
                                                       t.num_elements(), " values, got ", values));
      }
      if (!ShapeFits(t.shape, spec.shape)) {
        return absl::InvalidArgumentError(absl::StrCat("input '", name, "': shape ",
                                                       ShapeString(t.shape), " does not match ",
                                                       ShapeString(spec.shape)));
      }
      if (batch >= 0 && t.shape[0] != batch) {
        return absl::InvalidArgumentError(absl::StrCat("input '", name, "': batch size ",
                                                       t.shape[0], " differs from input '",
                                                       batch_from, "''s ", batch));
      }
      batch = t.shape[0];
      batch_from = name;
    }
    if (!parsing_) {
      FeatureMap features;
      for (const auto& [name, t] : inputs) features[name] = t;
      return features;
    }
    const auto& [name, serialized] = *inputs.begin();
    absl::StatusOr<FeatureMap> parsed = data::ParseExamples(parse_spec_, serialized.strings);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", name, "': ", parsed.status().message()));
    }
    return parsed;
  }

  // A fed shape fits a signature's: same rank, -1 matches any size; a
  // [batch] tensor also feeds [-1, 1] and [-1, -1] (one value per row).
  static bool ShapeFits(const std::vector<int64_t>& fed, const std::vector<int64_t>& want) {
    if (fed.size() == 1 && want.size() == 2 && (want[1] == 1 || want[1] == -1)) return true;
    if (fed.size() != want.size()) return false;
    for (size_t i = 0; i < fed.size(); ++i) {
      if (want[i] != -1 && fed[i] != want[i]) return false;
    }
    return true;
  }

  const int64_t version_;
  const bool parsing_;
  const std::unique_ptr<Estimator> estimator_;  // model and head; never trained
  const Variables vars_;
  const data::ExampleParserSpec parse_spec_;
  const std::vector<SignatureSpec> signatures_;
};

}  // namespace

absl::StatusOr<std::string> ExportModel(const JobSpec& job, const ExportOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Estimator> est, EstimatorFromJob(job));
  const std::string base = options.export_dir_base.empty()
                               ? io::JoinPath(job.model_dir, "export")
                               : options.export_dir_base;
  return est->ExportSavedModel(base, options);
}

absl::StatusOr<std::unique_ptr<LoadedExport>> LoadedExport::Load(const std::string& export_dir,
                                                                 io::Env* env_or_null) {
  const io::Env& env = env_or_null != nullptr ? *env_or_null : io::Env::Default();
  const std::string name = io::BaseName(export_dir);
  if (!name.empty() && name[0] == '.') {
    return absl::NotFoundError(absl::StrCat(
        "'", export_dir, "' is a temporary (partially written) export, not an export"));
  }
  int64_t version = 0;
  if (!absl::SimpleAtoi(name, &version) || version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", export_dir, "': an export directory is named by its timestamp"));
  }
  if (!env.FileExists(export_dir)) {
    return absl::NotFoundError(absl::StrCat("no export at '", export_dir, "'"));
  }
  const std::string meta_path = io::JoinPath(export_dir, ef::kMetaFile);
  if (!env.FileExists(meta_path)) {
    return absl::NotFoundError(absl::StrCat("'", export_dir, "' is not a complete export (no ",
                                            ef::kMetaFile, ")"));
  }
  ASSIGN_OR_RETURN(json meta, ReadJson(env, meta_path));
  const std::string format = meta.value("format", "");
  if (format == "onnx") {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", export_dir, "' is an ONNX export: run model.onnx with an ONNX runtime"));
  }
  if (format == "saved_model") {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", export_dir, "' is a TensorFlow SavedModel: serve it with TF Serving or load it with "
        "tf.saved_model.load"));
  }
  if (format != "estuary" || meta.value("format_version", 0) != ef::kFormatVersion ||
      !meta.contains("variables") || !meta["variables"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        meta_path, ": not an Estuary export of format version ", ef::kFormatVersion));
  }
  const bool parsing = meta.value("receiver", "parsing") == "parsing";

  const std::string model_path = io::JoinPath(export_dir, ef::kModelFile);
  ASSIGN_OR_RETURN(json model, ReadJson(env, model_path));
  json doc = {{"model_dir", export_dir},
              {"estimator", model.value("estimator", json())},
              {"feature_columns", model.value("feature_columns", json::array())}};
  // Relative vocabulary files (assets/...) resolve against the export.
  ASSIGN_OR_RETURN(JobSpec job, ParseJobSpec(doc.dump(), model_path));
  ASSIGN_OR_RETURN(std::unique_ptr<Estimator> est, EstimatorFromJob(job));

  ASSIGN_OR_RETURN(json sig_doc, ReadJson(env, io::JoinPath(export_dir, ef::kSignaturesFile)));
  absl::StatusOr<std::vector<SignatureSpec>> signatures = ef::SignaturesFromJson(sig_doc);
  if (!signatures.ok()) {
    return absl::DataLossError(absl::StrCat(io::JoinPath(export_dir, ef::kSignaturesFile), ": ",
                                            signatures.status().message()));
  }
  ASSIGN_OR_RETURN(std::vector<data::FeatureSpec> features, ef::ServingFeatureSpecs(job));
  ASSIGN_OR_RETURN(data::ExampleParserSpec parse_spec,
                   data::ExampleParserSpec::Create(std::move(features)));

  ModelCheckpointOptions load;
  load.model_dir = io::JoinPath(export_dir, ef::kVariablesDir);
  load.checkpoint_path = io::JoinPath(export_dir, meta["variables"].get<std::string>());
  load.init_if_missing = false;
  ASSIGN_OR_RETURN(LoadedModel loaded, LoadModel(est->model(), load));
  spdlog::info("loaded export {} (global_step {}, {} signatures)", export_dir,
               loaded.global_step, signatures->size());
  return std::unique_ptr<LoadedExport>(
      new LoadedExportImpl(version, parsing, std::move(est), std::move(loaded.vars),
                           std::move(parse_spec), *std::move(signatures)));
}

}  // namespace estuary
