#include "serving/serving_api.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "serving/tensor_convert.h"

namespace estuary {
namespace serving {
namespace {

using tensorflow::serving::ModelSpec;

void FillSpec(const ServableHandle& h, const std::string& signature, ModelSpec* out) {
  out->set_name(h.name);
  out->mutable_version()->set_value(h.version);
  out->set_signature_name(signature);
}

std::string SignatureKey(const ModelSpec& spec) {
  return spec.signature_name().empty() ? kDefaultSignature : spec.signature_name();
}

template <typename Map>
std::string Keys(const Map& m) {
  std::vector<std::string> keys;
  for (const auto& kv : m) keys.push_back(kv.first);
  return absl::StrJoin(keys, ",");
}

}  // namespace

const SignatureSpec* FindSignature(const LoadedExport& model, const std::string& key) {
  for (const SignatureSpec& s : model.signatures()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

absl::StatusOr<ServableHandle> ServingApi::Resolve(const ModelSpec& spec) const {
  if (spec.name().empty()) return absl::InvalidArgumentError("Missing ModelSpec");
  std::optional<int64_t> version;
  if (spec.has_version()) version = spec.version().value();
  return manager_->Get(spec.name(), version, spec.version_label());
}

absl::StatusOr<SignatureSpec> ServingApi::GetSignature(const ModelSpec& spec) const {
  absl::StatusOr<ServableHandle> h = Resolve(spec);
  if (!h.ok()) return h.status();
  const std::string key = SignatureKey(spec);
  const SignatureSpec* sig = FindSignature(*h->model, key);
  if (sig == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("Serving signature name: \"", key, "\" not found in signature def"));
  }
  return *sig;
}

absl::StatusOr<std::map<std::string, Tensor>> ServingApi::RunSignature(
    const ServableHandle& handle, const std::string& key,
    std::map<std::string, Tensor> inputs) const {
  if (batcher_ != nullptr) return batcher_->Run(handle.model, key, std::move(inputs));
  if (metrics_ != nullptr && !inputs.empty()) {
    metrics_->batch_size().Observe(static_cast<double>(inputs.begin()->second.batch_size()));
  }
  return handle.model->Run(key, inputs);
}

ServingMetrics::ServingMetrics(TaskMetrics* metrics)
    : metrics_(metrics),
      requests_(prometheus::BuildCounter()
                    .Name("estuary_serving_requests_total")
                    .Help("Serving API calls (gRPC and REST) by method and status code.")
                    .Register(metrics->registry())),
      seconds_(prometheus::BuildHistogram()
                   .Name("estuary_serving_request_seconds")
                   .Help("Latency of the serving API calls.")
                   .Register(metrics->registry())),
      batch_size_(prometheus::BuildHistogram()
                      .Name("estuary_serving_batch_size")
                      .Help("Rows the model ran at once (a batch, or a request without "
                            "batching).")
                      .Register(metrics->registry())
                      .Add(metrics->labels(), SizeBuckets())) {}

void ServingMetrics::Count(const std::string& method, const absl::Status& status,
                           absl::Duration took) {
  seconds_.Add(metrics_->LabelsWith({{"method", method}}), LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(took));
  requests_
      .Add(metrics_->LabelsWith(
          {{"method", method}, {"code", absl::StatusCodeToString(status.code())}}))
      .Increment();
}

absl::Status ServingApi::Measured(const char* method,
                                  const std::function<absl::Status()>& call) const {
  if (metrics_ == nullptr) return call();
  const absl::Time start = absl::Now();
  absl::Status status = call();
  metrics_->Count(method, status, absl::Now() - start);
  return status;
}

absl::Status ServingApi::Predict(const tensorflow::serving::PredictRequest& request,
                                 tensorflow::serving::PredictResponse* response) const {
  return Measured("Predict", [&] { return PredictUnmeasured(request, response); });
}

absl::Status ServingApi::Classify(const tensorflow::serving::ClassificationRequest& request,
                                  tensorflow::serving::ClassificationResponse* response) const {
  return Measured("Classify", [&] { return ClassifyUnmeasured(request, response); });
}

absl::Status ServingApi::Regress(const tensorflow::serving::RegressionRequest& request,
                                 tensorflow::serving::RegressionResponse* response) const {
  return Measured("Regress", [&] { return RegressUnmeasured(request, response); });
}

absl::Status ServingApi::GetModelMetadata(
    const tensorflow::serving::GetModelMetadataRequest& request,
    tensorflow::serving::GetModelMetadataResponse* response) const {
  return Measured("GetModelMetadata",
                  [&] { return GetModelMetadataUnmeasured(request, response); });
}

absl::Status ServingApi::GetModelStatus(
    const tensorflow::serving::GetModelStatusRequest& request,
    tensorflow::serving::GetModelStatusResponse* response) const {
  return Measured("GetModelStatus", [&] { return GetModelStatusUnmeasured(request, response); });
}

absl::Status ServingApi::PredictUnmeasured(const tensorflow::serving::PredictRequest& request,
                                           tensorflow::serving::PredictResponse* response) const {
  absl::StatusOr<ServableHandle> h = Resolve(request.model_spec());
  if (!h.ok()) return h.status();
  const std::string key = SignatureKey(request.model_spec());
  const SignatureSpec* sig = FindSignature(*h->model, key);
  if (sig == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("Serving signature key \"", key, "\" not found."));
  }
  std::map<std::string, Tensor> inputs;
  for (const auto& [alias, proto] : request.inputs()) {
    auto it = sig->inputs.find(alias);
    if (it == sig->inputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input tensor alias not found in signature: ", alias,
                       ". Inputs expected to be in the set {", Keys(sig->inputs), "}."));
    }
    absl::StatusOr<Tensor> t = FromTensorProto(proto);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("input '", alias, "': ", t.status().message()));
    }
    if (t->dtype != it->second.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Expects arg '", alias, "' to be ", DataTypeName(ToTfDataType(it->second.dtype)), " but ",
          DataTypeName(proto.dtype()), " is provided"));
    }
    inputs[alias] = *std::move(t);
  }
  if (inputs.size() != sig->inputs.size()) {
    std::vector<std::string> missing;
    for (const auto& [alias, spec] : sig->inputs) {
      if (!inputs.count(alias)) missing.push_back(alias);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "Request inputs do not match required inputs for model `", h->name,
        "`. Send extra: {}. Missing but required: {", absl::StrJoin(missing, ","), "}."));
  }
  std::set<std::string> filter;
  for (const std::string& alias : request.output_filter()) {
    if (!sig->outputs.count(alias)) {
      return absl::InvalidArgumentError(
          absl::StrCat("output tensor alias not found in signature: ", alias,
                       " Outputs expected to be in the set {", Keys(sig->outputs), "}."));
    }
    if (!filter.insert(alias).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate output tensor alias: ", alias));
    }
  }
  absl::StatusOr<std::map<std::string, Tensor>> out = RunSignature(*h, key, std::move(inputs));
  if (!out.ok()) return out.status();
  for (const auto& [alias, t] : *out) {
    if (!filter.empty() && !filter.count(alias)) continue;
    ToTensorProto(t, &(*response->mutable_outputs())[alias]);
  }
  FillSpec(*h, key, response->mutable_model_spec());
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, Tensor>> ServingApi::RunExamples(
    const ModelSpec& spec, const tensorflow::serving::Input& input, const std::string& method,
    ModelSpec* response_spec) const {
  std::vector<std::string> serialized;
  if (input.has_example_list()) {
    for (const tensorflow::Example& e : input.example_list().examples()) {
      serialized.push_back(e.SerializeAsString());
    }
  } else if (input.has_example_list_with_context()) {
    // TF Serving's merge: context then example, so the example's features
    // win (a later map entry replaces an earlier one when parsed).
    const std::string context = input.example_list_with_context().context().SerializeAsString();
    for (const tensorflow::Example& e : input.example_list_with_context().examples()) {
      serialized.push_back(absl::StrCat(context, e.SerializeAsString()));
    }
  }
  if (serialized.empty()) return absl::InvalidArgumentError("Input is empty.");
  absl::StatusOr<ServableHandle> h = Resolve(spec);
  if (!h.ok()) return h.status();
  const std::string key = SignatureKey(spec);
  const SignatureSpec* sig = FindSignature(*h->model, key);
  const bool classify = method == kClassifyMethod;
  if (sig == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("No signature was found with the name: ", key));
  }
  if (sig->method_name != method) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Expected ", classify ? "classification" : "regression", " signature method_name to be ",
        method, ". Was: ", sig->method_name));
  }
  if (sig->inputs.size() != 1 || sig->inputs.begin()->second.dtype != DType::kString) {
    return absl::InvalidArgumentError(
        absl::StrCat("Expected one input Tensor of dtype DT_STRING in signature ", key));
  }
  const int64_t n = static_cast<int64_t>(serialized.size());
  std::map<std::string, Tensor> inputs;
  inputs[sig->inputs.begin()->first] = Tensor::Strings({n}, std::move(serialized));
  absl::StatusOr<std::map<std::string, Tensor>> out = RunSignature(*h, key, std::move(inputs));
  if (!out.ok()) return out.status();
  FillSpec(*h, key, response_spec);
  return out;
}

absl::Status ServingApi::ClassifyUnmeasured(
    const tensorflow::serving::ClassificationRequest& request,
    tensorflow::serving::ClassificationResponse* response) const {
  absl::StatusOr<std::map<std::string, Tensor>> out =
      RunExamples(request.model_spec(), request.input(), kClassifyMethod,
                  response->mutable_model_spec());
  if (!out.ok()) return out.status();
  const Tensor* classes = out->count("classes") ? &out->at("classes") : nullptr;
  const Tensor* scores = out->count("scores") ? &out->at("scores") : nullptr;
  if (classes == nullptr && scores == nullptr) {
    return absl::InvalidArgumentError(
        "Expected classification signature outputs to contain classes or scores");
  }
  const Tensor& shape_of = scores ? *scores : *classes;
  if (shape_of.shape.size() != 2 ||
      (classes && scores && classes->shape != scores->shape) ||
      (classes && classes->dtype != DType::kString) || (scores && scores->dtype != DType::kFloat)) {
    return absl::InvalidArgumentError(
        "Expected classes (DT_STRING) and scores (DT_FLOAT) of shape [batch_size, num_classes]");
  }
  const int64_t n = shape_of.shape[0];
  const int64_t k = shape_of.shape[1];
  auto* result = response->mutable_result();
  for (int64_t i = 0; i < n; ++i) {
    auto* c = result->add_classifications();
    for (int64_t j = 0; j < k; ++j) {
      auto* cls = c->add_classes();
      if (classes) cls->set_label(classes->strings[i * k + j]);
      if (scores) cls->set_score(scores->floats[i * k + j]);
    }
  }
  return absl::OkStatus();
}

absl::Status ServingApi::RegressUnmeasured(
    const tensorflow::serving::RegressionRequest& request,
    tensorflow::serving::RegressionResponse* response) const {
  absl::StatusOr<std::map<std::string, Tensor>> out = RunExamples(
      request.model_spec(), request.input(), kRegressMethod, response->mutable_model_spec());
  if (!out.ok()) return out.status();
  auto it = out->find("outputs");
  if (it == out->end()) {
    return absl::InvalidArgumentError("Expected regression signature outputs to contain outputs");
  }
  const Tensor& t = it->second;
  if (t.dtype != DType::kFloat || t.shape.empty() || t.shape.size() > 2 ||
      (t.shape.size() == 2 && t.shape[1] != 1)) {
    return absl::InvalidArgumentError(
        "Expected output Tensor shape to be either [batch_size] or [batch_size, 1]");
  }
  for (float v : t.floats) response->mutable_result()->add_regressions()->set_value(v);
  return absl::OkStatus();
}

absl::Status ServingApi::GetModelMetadataUnmeasured(
    const tensorflow::serving::GetModelMetadataRequest& request,
    tensorflow::serving::GetModelMetadataResponse* response) const {
  if (request.metadata_field().empty()) {
    return absl::InvalidArgumentError(
        "GetModelMetadataRequest must specify at least one metadata_field");
  }
  for (const std::string& field : request.metadata_field()) {
    if (field != "signature_def") {
      return absl::InvalidArgumentError(absl::StrCat("Metadata field ", field, " is not supported"));
    }
  }
  absl::StatusOr<ServableHandle> h = Resolve(request.model_spec());
  if (!h.ok()) return h.status();
  tensorflow::serving::SignatureDefMap map;
  for (const SignatureSpec& s : h->model->signatures()) {
    (*map.mutable_signature_def())[s.key] = ToSignatureDef(s);
  }
  (*response->mutable_metadata())["signature_def"].PackFrom(map);
  response->mutable_model_spec()->set_name(h->name);
  response->mutable_model_spec()->mutable_version()->set_value(h->version);
  return absl::OkStatus();
}

absl::Status ServingApi::GetModelStatusUnmeasured(
    const tensorflow::serving::GetModelStatusRequest& request,
    tensorflow::serving::GetModelStatusResponse* response) const {
  const ModelSpec& spec = request.model_spec();
  if (spec.name().empty()) return absl::InvalidArgumentError("Missing model name in request.");
  std::optional<int64_t> version;
  if (spec.has_version()) version = spec.version().value();
  absl::StatusOr<std::vector<VersionStatus>> st = manager_->GetStatus(spec.name(), version);
  if (!st.ok()) return st.status();
  for (const VersionStatus& v : *st) {
    auto* out = response->add_model_version_status();
    out->set_version(v.version);
    out->set_state(static_cast<tensorflow::serving::ModelVersionStatus::State>(v.state));
    out->mutable_status()->set_error_code(static_cast<tensorflow::error::Code>(v.status.code()));
    out->mutable_status()->set_error_message(std::string(v.status.message()));
  }
  return absl::OkStatus();
}

}  // namespace serving
}  // namespace estuary

