#include "estimator/export/export_format.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/checkpoint.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "estimator/export/onnx_export.h"
#include "estimator/export/saved_model_export.h"
#include "estimator/feature_column_builder.h"

namespace estuary {
namespace export_format {
namespace {

using json = nlohmann::json;
using Kind = FeatureColumnKind;

std::string KeyOf(const data::FeatureSpec& spec) {
  return std::visit([](const auto& f) { return f.key; }, spec);
}

bool SameSpec(const data::FeatureSpec& a, const data::FeatureSpec& b) {
  if (a.index() != b.index()) return false;
  if (const auto* fa = std::get_if<data::FixedLenFeature>(&a)) {
    const auto& fb = std::get<data::FixedLenFeature>(b);
    return fa->dtype == fb.dtype && fa->shape == fb.shape;
  }
  return std::get<data::VarLenFeature>(a).dtype == std::get<data::VarLenFeature>(b).dtype;
}

TensorSpec Spec(DType dtype, std::vector<int64_t> shape) {
  TensorSpec t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  return t;
}

absl::StatusOr<DType> ParseDType(const std::string& name) {
  for (DType t : {DType::kFloat, DType::kInt64, DType::kString}) {
    if (name == DTypeName(t)) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name, "' (float32, int64 or string)"));
}

// Copies `from` to `to` (a new file) through `env`.
absl::Status CopyFile(const io::Env& env, const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(std::string contents, io::ReadWholeFile(env, from));
  return io::WriteFileDurably(env, to, contents);
}

// A relative path without "." / ".." components (an assets.extra
// destination).
bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<data::FeatureSpec>> ServingFeatureSpecs(const JobSpec& job) {
  ASSIGN_OR_RETURN(FeatureColumnSet set, BuildFeatureColumns(job));
  std::map<std::string, data::FeatureSpec> specs;
  std::map<std::string, JsonPath> owner;
  auto add = [&](const FeatureColumnConfig& c, data::FeatureSpec spec) -> absl::Status {
    const std::string key = KeyOf(spec);
    auto [it, inserted] = specs.emplace(key, spec);
    if (!inserted && !SameSpec(it->second, spec)) {
      return c.where.Error(absl::StrCat("feature '", key,
                                        "' is parsed differently by another column (",
                                        owner[key].ToString(), ")"));
    }
    owner.emplace(key, c.where);
    return absl::OkStatus();
  };
  for (const FeatureColumnConfig& c : job.feature_columns) {
    switch (c.kind) {
      case Kind::kNumeric: {
        data::FixedLenFeature f;
        f.key = c.key;
        f.dtype = DType::kFloat;
        f.shape = c.shape;
        if (c.default_value.has_value()) f.default_value = data::FloatDefault(*c.default_value);
        RETURN_IF_ERROR(add(c, f));
        break;
      }
      case Kind::kVocabularyList:
      case Kind::kVocabularyFile:
      case Kind::kHashBucket:
        RETURN_IF_ERROR(add(c, data::VarLenFeature{c.key, c.value_dtype}));
        break;
      case Kind::kIdentity:
        RETURN_IF_ERROR(add(c, data::VarLenFeature{c.key, DType::kInt64}));
        break;
      case Kind::kWeightedCategorical:
        RETURN_IF_ERROR(add(c, data::VarLenFeature{c.weight_feature_key, DType::kFloat}));
        break;
      case Kind::kCrossed:
        for (const std::string& key : c.keys) {
          if (set.Find(key).ok()) continue;  // a column: its entry adds its spec
          RETURN_IF_ERROR(add(c, data::VarLenFeature{key, DType::kString}));
        }
        break;
      case Kind::kBucketized:
      case Kind::kIndicator:
      case Kind::kEmbedding:
        break;  // their source columns add the spec
    }
  }
  std::vector<data::FeatureSpec> out;
  for (auto& [key, spec] : specs) out.push_back(std::move(spec));
  return out;
}

absl::StatusOr<std::vector<SignatureSpec>> HeadSignatures(
    const EstimatorConfig& est, const std::string& receiver,
    const std::vector<data::FeatureSpec>& features) {
  if (receiver != "parsing" && receiver != "raw") {
    return absl::InvalidArgumentError(
        absl::StrCat("receiver: '", receiver, "' is not 'parsing' or 'raw'"));
  }
  if (est.type.family == ModelFamily::kCustom) {
    return est.where.Key("type").Error("custom models cannot be exported from a job file");
  }
  const bool classifier = est.type.classifier;
  const int64_t n = classifier ? est.n_classes : est.label_dimension;
  const bool binary = classifier && n == 2;

  std::map<std::string, TensorSpec> predict_out;
  if (classifier) {
    const int64_t logits_dim = binary ? 1 : n;
    predict_out["logits"] = Spec(DType::kFloat, {-1, logits_dim});
    if (binary) predict_out["logistic"] = Spec(DType::kFloat, {-1, 1});
    predict_out["probabilities"] = Spec(DType::kFloat, {-1, n});
    predict_out["class_ids"] = Spec(DType::kInt64, {-1, 1});
    predict_out["classes"] = Spec(DType::kString, {-1, 1});
    predict_out["all_class_ids"] = Spec(DType::kInt64, {-1, n});
    predict_out["all_classes"] = Spec(DType::kString, {-1, n});
  } else {
    predict_out["predictions"] = Spec(DType::kFloat, {-1, n});
  }

  std::map<std::string, TensorSpec> raw_inputs;
  for (const data::FeatureSpec& f : features) {
    if (const auto* fixed = std::get_if<data::FixedLenFeature>(&f)) {
      std::vector<int64_t> shape = {-1};
      shape.insert(shape.end(), fixed->shape.begin(), fixed->shape.end());
      raw_inputs[fixed->key] = Spec(fixed->dtype, shape);
    } else {
      const auto& var = std::get<data::VarLenFeature>(f);
      raw_inputs[var.key] = Spec(var.dtype, {-1, -1});
    }
  }

  SignatureSpec predict;
  predict.key = kPredictKey;
  predict.method_name = kPredictMethod;
  predict.outputs = predict_out;
  if (receiver == "raw") {
    predict.inputs = raw_inputs;
    SignatureSpec serving = predict;
    serving.key = kServingDefault;
    return std::vector<SignatureSpec>{serving, predict};
  }
  predict.inputs["examples"] = Spec(DType::kString, {-1});

  std::vector<SignatureSpec> out;
  std::optional<SignatureSpec> classify, regress;
  if (classifier) {
    classify.emplace();
    classify->key = kClassifyKey;
    classify->method_name = kClassifyMethod;
    classify->inputs["inputs"] = Spec(DType::kString, {-1});
    classify->outputs["classes"] = Spec(DType::kString, {-1, n});
    classify->outputs["scores"] = Spec(DType::kFloat, {-1, n});
  }
  if (!classifier || binary) {
    regress.emplace();
    regress->key = kRegressKey;
    regress->method_name = kRegressMethod;
    regress->inputs["inputs"] = Spec(DType::kString, {-1});
    regress->outputs["outputs"] = Spec(DType::kFloat, {-1, classifier ? 1 : n});
  }
  SignatureSpec serving = classifier ? *classify : *regress;
  serving.key = kServingDefault;
  out.push_back(serving);
  out.push_back(predict);
  if (classify.has_value()) out.push_back(*classify);
  if (regress.has_value()) out.push_back(*regress);
  return out;
}

std::string PredictionKeyFor(const std::string& method_name, const std::string& output,
                             bool has_logistic) {
  if (method_name == kClassifyMethod) {
    if (output == "classes") return "all_classes";
    if (output == "scores") return "probabilities";
  }
  if (method_name == kRegressMethod && output == "outputs") {
    return has_logistic ? "logistic" : "predictions";
  }
  return output;
}

nlohmann::json SignaturesToJson(const std::vector<SignatureSpec>& signatures) {
  auto tensors = [](const std::map<std::string, TensorSpec>& specs) {
    json out = json::object();
    for (const auto& [name, spec] : specs) {
      out[name] = {{"dtype", DTypeName(spec.dtype)}, {"shape", spec.shape}};
    }
    return out;
  };
  json defs = json::object();
  for (const SignatureSpec& s : signatures) {
    defs[s.key] = {{"method_name", s.method_name},
                   {"inputs", tensors(s.inputs)},
                   {"outputs", tensors(s.outputs)}};
  }
  return {{"signature_def", defs}};
}

absl::StatusOr<std::vector<SignatureSpec>> SignaturesFromJson(const nlohmann::json& doc) {
  if (!doc.is_object() || !doc.contains("signature_def") || !doc["signature_def"].is_object()) {
    return absl::InvalidArgumentError("no 'signature_def' object");
  }
  auto tensors = [](const json& j, const std::string& where,
                    std::map<std::string, TensorSpec>* out) -> absl::Status {
    if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
    for (const auto& [name, t] : j.items()) {
      if (!t.is_object() || !t.contains("dtype") || !t["dtype"].is_string() ||
          !t.contains("shape") || !t["shape"].is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".", name, ": needs a dtype string and a shape array"));
      }
      TensorSpec spec;
      absl::StatusOr<DType> dtype = ParseDType(t["dtype"].get<std::string>());
      if (!dtype.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".", name, ": ", dtype.status().message()));
      }
      spec.dtype = *dtype;
      for (const json& d : t["shape"]) {
        if (!d.is_number_integer()) {
          return absl::InvalidArgumentError(absl::StrCat(where, ".", name, ": bad shape"));
        }
        spec.shape.push_back(d.get<int64_t>());
      }
      (*out)[name] = std::move(spec);
    }
    return absl::OkStatus();
  };
  std::vector<SignatureSpec> out;
  for (const auto& [key, def] : doc["signature_def"].items()) {
    const std::string where = absl::StrCat("signature '", key, "'");
    if (!def.is_object() || !def.contains("method_name") || !def["method_name"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": no method_name"));
    }
    SignatureSpec s;
    s.key = key;
    s.method_name = def["method_name"].get<std::string>();
    RETURN_IF_ERROR(tensors(def.value("inputs", json::object()), where + " inputs", &s.inputs));
    RETURN_IF_ERROR(
        tensors(def.value("outputs", json::object()), where + " outputs", &s.outputs));
    out.push_back(std::move(s));
  }
  return out;
}

absl::Status RemoveTree(const io::Env& env, const std::string& path) {
  ASSIGN_OR_RETURN(io::FileInfo info, env.Stat(path));
  if (!info.is_directory) return env.DeleteFile(path);
  ASSIGN_OR_RETURN(std::vector<std::string> children, env.GetChildren(path));
  for (const std::string& child : children) {
    RETURN_IF_ERROR(RemoveTree(env, io::JoinPath(path, child)));
  }
  std::error_code ec;
  if (!std::filesystem::remove(path, ec) || ec) {
    return absl::InternalError(absl::StrCat("cannot remove directory '", path, "': ",
                                            ec ? ec.message() : "not removed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ListVersions(const io::Env& env, const std::string& base) {
  std::vector<int64_t> out;
  if (!env.FileExists(base)) return out;
  ASSIGN_OR_RETURN(std::vector<std::string> children, env.GetChildren(base));
  for (const std::string& name : children) {
    int64_t v = 0;
    if (name.empty() || name[0] == '.' || !absl::SimpleAtoi(name, &v) || v < 0) continue;
    if (absl::StrCat(v) != name) continue;  // "007", "+7"
    absl::StatusOr<io::FileInfo> info = env.Stat(io::JoinPath(base, name));
    if (info.ok() && info->is_directory) out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::string> PublishExportDir(const io::Env& env, const std::string& base,
                                             const std::string& tmp, int64_t timestamp) {
  // Another exporter may take a name between the check and the rename (the
  // rename then fails: the target is a non-empty directory): try the next.
  constexpr int kAttempts = 100;
  absl::Status last;
  for (int i = 0; i < kAttempts; ++i, ++timestamp) {
    const std::string dir = io::JoinPath(base, absl::StrCat(timestamp));
    if (env.FileExists(dir)) continue;
    last = env.RenameFile(tmp, dir);
    if (last.ok()) {
      RETURN_IF_ERROR(env.SyncDir(base));
      return dir;
    }
    if (!env.FileExists(dir)) break;  // not a lost race
  }
  RemoveTree(env, tmp).IgnoreError();
  return last.ok() ? absl::InternalError(absl::StrCat("no free export name under '", base, "'"))
                   : last;
}

absl::StatusOr<std::string> WriteExport(const JobSpec& job, const Variables& vars,
                                        const std::string& checkpoint,
                                        const ExportOptions& options) {
  const io::Env& env = options.env != nullptr ? *options.env : io::Env::Default();
  if (options.export_dir_base.empty()) {
    return absl::InvalidArgumentError("export_dir_base is required");
  }
  if (options.format != "estuary" && options.format != "onnx" &&
      options.format != "saved_model") {
    return absl::InvalidArgumentError(absl::StrCat(
        "format: '", options.format, "' is not 'estuary', 'onnx' or 'saved_model'"));
  }
  if (!job.estimator.has_value()) {
    return JsonPath(job.source).Key("estimator").Error("is required to export");
  }
  if (!job.document.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(job.source, ": the job was not parsed from a file (no document to export)"));
  }
  for (const auto& [dest, src] : options.assets_extra) {
    if (!IsSafeRelativePath(dest)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "assets_extra: destination '", dest, "' must be a relative path inside assets.extra/"));
    }
  }
  ASSIGN_OR_RETURN(std::vector<data::FeatureSpec> features, ServingFeatureSpecs(job));
  ASSIGN_OR_RETURN(std::vector<SignatureSpec> signatures,
                   HeadSignatures(*job.estimator, options.receiver, features));
  auto step_it = vars.ints.find("global_step");
  const int64_t step = step_it == vars.ints.end() ? 0 : step_it->second;

  const std::string& base = options.export_dir_base;
  RETURN_IF_ERROR(env.MakeDirs(base));
  const int64_t timestamp = absl::ToUnixSeconds(absl::Now());
  const std::string tmp =
      io::JoinPath(base, absl::StrCat(".tmp-", timestamp, "-", static_cast<int64_t>(::getpid())));
  if (env.FileExists(tmp)) RETURN_IF_ERROR(RemoveTree(env, tmp));  // a crashed run's
  RETURN_IF_ERROR(env.MakeDirs(tmp));
  auto written = [&]() -> absl::Status {
    json meta = {{"format", options.format},
                 {"format_version", kFormatVersion},
                 {"receiver", options.receiver},
                 {"global_step", step},
                 {"checkpoint", checkpoint}};
    if (options.format == "onnx") {
      RETURN_IF_ERROR(WriteOnnxModel(job, vars, tmp, env));
    } else if (options.format == "saved_model") {
      RETURN_IF_ERROR(WriteSavedModel(job, vars, options.receiver, tmp, env));
      meta["saved_model"] = kSavedModelFile;
    } else {
      // The job's sections, with vocabulary files moved into assets/.
      json model = {{"estimator", job.document["estimator"]},
                    {"feature_columns", job.document.value("feature_columns", json::array())}};
      model["estimator"].erase("warm_start_from");
      std::map<std::string, std::string> assets;  // asset name -> source
      for (size_t i = 0; i < job.feature_columns.size(); ++i) {
        const FeatureColumnConfig& c = job.feature_columns[i];
        if (c.kind != Kind::kVocabularyFile) continue;
        std::string name = io::BaseName(c.vocabulary_file);
        if (auto it = assets.find(name); it != assets.end() && it->second != c.vocabulary_file) {
          name = absl::StrCat(i, "_", name);
        }
        assets[name] = c.vocabulary_file;
        model["feature_columns"][i]["vocabulary_file"] = absl::StrCat(kAssetsDir, "/", name);
      }
      if (!assets.empty()) RETURN_IF_ERROR(env.MakeDirs(io::JoinPath(tmp, kAssetsDir)));
      for (const auto& [name, src] : assets) {
        RETURN_IF_ERROR(CopyFile(env, src, io::JoinPath(io::JoinPath(tmp, kAssetsDir), name)));
      }
      RETURN_IF_ERROR(
          io::WriteFileDurably(env, io::JoinPath(tmp, kModelFile), model.dump(2) + "\n"));
      RETURN_IF_ERROR(io::WriteFileDurably(env, io::JoinPath(tmp, kSignaturesFile),
                                           SignaturesToJson(signatures).dump(2) + "\n"));
      checkpoint::SaveOptions save;
      save.keep_checkpoint_max = 0;
      save.env = &env;
      ASSIGN_OR_RETURN(std::string prefix,
                       checkpoint::Save(io::JoinPath(tmp, kVariablesDir), step, vars, save));
      meta["variables"] = absl::StrCat(kVariablesDir, "/", io::BaseName(prefix));
    }
    for (const auto& [dest, src] : options.assets_extra) {
      const std::string to = io::JoinPath(io::JoinPath(tmp, kAssetsExtraDir), dest);
      RETURN_IF_ERROR(env.MakeDirs(io::DirName(to)));
      RETURN_IF_ERROR(CopyFile(env, src, to));
    }
    // Written last: a directory without it is not an export.
    RETURN_IF_ERROR(io::WriteFileDurably(env, io::JoinPath(tmp, kMetaFile), meta.dump(2) + "\n"));
    return env.SyncDir(tmp);
  }();
  if (!written.ok()) {
    RemoveTree(env, tmp).IgnoreError();
    return written;
  }
  ASSIGN_OR_RETURN(std::string dir, PublishExportDir(env, base, tmp, timestamp));
  spdlog::info("exported model ({}) from global_step {} to {}", options.format, step, dir);
  return dir;
}

}  // namespace export_format
}  // namespace estuary
