// A LoadedExport test double for serving/'s tests: a tiny "model" whose
// numbers are easy to check, with TF's signature shapes.
//   serving_default, classification (classify): "inputs" = serialized
//     Examples [n] -> "classes" [n,2] ("0","1"), "scores" [n,2] (1-p, p)
//   regression (regress): "inputs" -> "outputs" [n,1] = p
//   predict: "examples" -> "logistic" [n,1] = p, "class_ids" int64 [n,1]
//   raw (predict): "x" float [n], "k" int64 [n] -> "y" [n] = x + k + bias,
//     "id_bytes" string [n] = the bytes {0xff, k}
// where p = sigmoid(x + bias), x = the first value of the Example's float
// feature "x" (0 if absent). An unparsable Example is InvalidArgument
// ("Could not parse example input"). Thread-safe; counts rows per Run and
// can hold every Run until a gate opens (drain tests).
#ifndef ESTUARY_SERVING_FAKE_EXPORT_H_
#define ESTUARY_SERVING_FAKE_EXPORT_H_

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "estimator/export/export.h"
#include "proto/example.pb.h"

namespace estuary {
namespace serving {

class FakeExport : public LoadedExport {
 public:
  // `entered` (if set) is notified when a Run starts; Run then waits for
  // `gate` (if set).
  explicit FakeExport(int64_t version, float bias = 0, absl::Notification* gate = nullptr,
                      absl::Notification* entered = nullptr)
      : version_(version), bias_(bias), gate_(gate), entered_(entered) {
    const TensorSpec strings{DType::kString, {-1}};
    const TensorSpec classes{DType::kString, {-1, 2}};
    const TensorSpec scores{DType::kFloat, {-1, 2}};
    const TensorSpec col{DType::kFloat, {-1, 1}};
    for (const char* key : {"serving_default", "classification"}) {
      sigs_.push_back({key, "tensorflow/serving/classify", {{"inputs", strings}},
                       {{"classes", classes}, {"scores", scores}}});
    }
    sigs_.push_back({"regression", "tensorflow/serving/regress", {{"inputs", strings}},
                     {{"outputs", col}}});
    sigs_.push_back({"predict", "tensorflow/serving/predict", {{"examples", strings}},
                     {{"logistic", col}, {"class_ids", TensorSpec{DType::kInt64, {-1, 1}}}}});
    sigs_.push_back({"raw", "tensorflow/serving/predict",
                     {{"x", TensorSpec{DType::kFloat, {-1}}}, {"k", TensorSpec{DType::kInt64, {-1}}}},
                     {{"y", TensorSpec{DType::kFloat, {-1}}},
                      {"id_bytes", TensorSpec{DType::kString, {-1}}}}});
  }

  int64_t version() const override { return version_; }
  const std::vector<SignatureSpec>& signatures() const override { return sigs_; }

  absl::StatusOr<std::map<std::string, Tensor>> Run(
      const std::string& key, const std::map<std::string, Tensor>& inputs) const override {
    if (entered_ != nullptr && !entered_once_.exchange(true)) entered_->Notify();
    if (gate_ != nullptr) gate_->WaitForNotification();
    const SignatureSpec* sig = nullptr;
    for (const SignatureSpec& s : sigs_) {
      if (s.key == key) sig = &s;
    }
    if (sig == nullptr) return absl::NotFoundError(absl::StrCat("no signature ", key));
    if (inputs.size() != sig->inputs.size()) {
      return absl::InvalidArgumentError("wrong number of inputs");
    }
    for (const auto& [name, t] : inputs) {
      auto it = sig->inputs.find(name);
      if (it == sig->inputs.end()) return absl::InvalidArgumentError(absl::StrCat("extra ", name));
      if (it->second.dtype != t.dtype) return absl::InvalidArgumentError(absl::StrCat("dtype ", name));
    }
    std::map<std::string, Tensor> out;
    if (key == "raw") {
      const Tensor& x = inputs.at("x");
      const Tensor& k = inputs.at("k");
      const int64_t n = x.batch_size();
      if (k.batch_size() != n) return absl::InvalidArgumentError("batch sizes differ");
      Count(n);
      std::vector<float> y;
      std::vector<std::string> ids;
      for (int64_t i = 0; i < n; ++i) {
        y.push_back(x.floats[i] + static_cast<float>(k.ints[i]) + bias_);
        ids.push_back(std::string({'\xff', static_cast<char>(k.ints[i])}));
      }
      out["y"] = Tensor::Floats({n}, y);
      out["id_bytes"] = Tensor::Strings({n}, ids);
      return out;
    }
    const Tensor& in = inputs.begin()->second;
    const int64_t n = in.batch_size();
    Count(n);
    std::vector<float> p;
    for (const std::string& s : in.strings) {
      tensorflow::Example e;
      if (!e.ParseFromString(s)) {
        return absl::InvalidArgumentError(
            absl::StrCat("Could not parse example input, value: '", s.substr(0, 20), "'"));
      }
      float x = 0;
      auto it = e.features().feature().find("x");
      if (it != e.features().feature().end() && it->second.float_list().value_size() > 0) {
        x = it->second.float_list().value(0);
      }
      p.push_back(1.0f / (1.0f + std::exp(-(x + bias_))));
    }
    if (sig->method_name == "tensorflow/serving/classify") {
      std::vector<std::string> classes;
      std::vector<float> scores;
      for (float v : p) {
        classes.insert(classes.end(), {"0", "1"});
        scores.insert(scores.end(), {1 - v, v});
      }
      out["classes"] = Tensor::Strings({n, 2}, classes);
      out["scores"] = Tensor::Floats({n, 2}, scores);
    } else if (key == "regression") {
      out["outputs"] = Tensor::Floats({n, 1}, p);
    } else {
      std::vector<int64_t> ids;
      for (float v : p) ids.push_back(v > 0.5f ? 1 : 0);
      out["logistic"] = Tensor::Floats({n, 1}, p);
      out["class_ids"] = Tensor::Ints({n, 1}, ids);
    }
    return out;
  }

  int64_t runs() const { return runs_.load(); }
  int64_t max_rows() const { return max_rows_.load(); }

 private:
  void Count(int64_t n) const {
    runs_.fetch_add(1);
    int64_t m = max_rows_.load();
    while (n > m && !max_rows_.compare_exchange_weak(m, n)) {
    }
  }

  const int64_t version_;
  const float bias_;
  absl::Notification* const gate_;
  absl::Notification* const entered_;
  mutable std::atomic<bool> entered_once_{false};
  std::vector<SignatureSpec> sigs_;
  mutable std::atomic<int64_t> runs_{0};
  mutable std::atomic<int64_t> max_rows_{0};
};

// An Example with float feature "x".
inline std::string ExampleWithX(float x) {
  tensorflow::Example e;
  (*e.mutable_features()->mutable_feature())["x"].mutable_float_list()->add_value(x);
  return e.SerializeAsString();
}

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_FAKE_EXPORT_H_
