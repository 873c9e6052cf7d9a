#include "common/tf_bundle/tf_variables.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace estuary {
namespace tf_bundle {
namespace {

constexpr char kTrainingScope[] = "training/";

// Slot names of the Keras legacy optimizers (= Estuary's).
bool IsSlotName(absl::string_view s) {
  return s == "accumulator" || s == "linear" || s == "m" || s == "v" || s == "vhat" ||
         s == "rms" || s == "mg" || s == "momentum";
}

bool IsEstuaryOptimizer(absl::string_view s) {
  return s == "sgd" || s == "momentum" || s == "adagrad" || s == "adam" || s == "ftrl" ||
         s == "rmsprop";
}

// "Adagrad" / "Adagrad_1" (a second optimizer of one class) -> "adagrad";
// "SGD" -> "momentum" (its only slot is momentum's). "" if unknown.
std::string EstuaryOptimizer(absl::string_view tf_class) {
  const size_t underscore = tf_class.rfind('_');
  int suffix;
  if (underscore != absl::string_view::npos &&
      absl::SimpleAtoi(tf_class.substr(underscore + 1), &suffix)) {
    tf_class = tf_class.substr(0, underscore);
  }
  if (tf_class == "Adagrad") return "adagrad";
  if (tf_class == "Adam") return "adam";
  if (tf_class == "Ftrl") return "ftrl";
  if (tf_class == "RMSprop") return "rmsprop";
  if (tf_class == "SGD") return "momentum";
  return "";
}

// The last '/'-separated component.
absl::string_view LastComponent(absl::string_view name) {
  const size_t slash = name.rfind('/');
  return slash == absl::string_view::npos ? name : name.substr(slash + 1);
}

// Splits an Estuary slot name "<var>/<opt>/<slot>"; false if it is not one.
bool SplitSlot(const std::string& name, std::string* var, std::string* opt, std::string* slot) {
  const size_t last = name.rfind('/');
  if (last == std::string::npos || last == 0) return false;
  const size_t mid = name.rfind('/', last - 1);
  if (mid == std::string::npos || mid == 0) return false;
  const std::string o = name.substr(mid + 1, last - mid - 1);
  if (!IsEstuaryOptimizer(o)) return false;
  *var = name.substr(0, mid);
  *opt = o;
  *slot = name.substr(last + 1);
  return true;
}

}  // namespace

std::string TfOptimizerClass(const std::string& estuary_type) {
  if (estuary_type == "adagrad") return "Adagrad";
  if (estuary_type == "adam") return "Adam";
  if (estuary_type == "ftrl") return "Ftrl";
  if (estuary_type == "rmsprop") return "RMSprop";
  if (estuary_type == "sgd" || estuary_type == "momentum") return "SGD";
  return "";
}

std::optional<std::string> TfVariableName(const std::string& estuary_name) {
  std::string var, opt, slot;
  if (!SplitSlot(estuary_name, &var, &opt, &slot)) return estuary_name;
  if (slot == "updates") return std::nullopt;
  if (!IsSlotName(slot)) return estuary_name;
  return absl::StrCat(kTrainingScope, TfOptimizerClass(opt), "/", var, "/", slot);
}

std::vector<int64_t> TfShape(const std::string& estuary_name, int64_t rows, int64_t cols) {
  std::string var = estuary_name, opt, slot;
  SplitSlot(estuary_name, &var, &opt, &slot);
  const absl::string_view last = LastComponent(var);
  const bool vector = last == "bias" || last == "bias_weights" || last == "gamma" ||
                      last == "beta" || last == "moving_mean" || last == "moving_variance";
  if (vector && rows == 1) return {cols};
  return {rows, cols};
}

absl::StatusOr<std::map<std::string, Tensor>> ToTfTensors(
    const Variables& vars, const std::map<std::string, Tensor>& extra) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, m] : vars.floats) {
    const std::optional<std::string> tf_name = TfVariableName(name);
    if (!tf_name) continue;
    out[*tf_name] = Tensor::Floats(TfShape(name, m.rows(), m.cols()),
                                   std::vector<float>(m.data(), m.data() + m.size()));
  }
  for (const auto& [name, v] : vars.ints) {
    const std::optional<std::string> tf_name = TfVariableName(name);
    if (!tf_name) continue;
    out[*tf_name] = Tensor::Ints({}, {v});
  }
  for (const auto& [name, t] : extra) {
    if (!out.emplace(name, t).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("TF checkpoint: variable '", name, "' given twice"));
    }
  }
  return out;
}

absl::StatusOr<Variables> FromTfTensors(const std::map<std::string, Tensor>& tensors,
                                        const std::string& where) {
  Variables vars;
  for (const auto& [tf_name, t] : tensors) {
    const std::string what = absl::StrCat(where, ": tensor '", tf_name, "'");
    std::string name = tf_name;
    if (absl::StartsWith(tf_name, kTrainingScope)) {
      // training/<Opt>/<var>/<slot>, or an optimizer's own scalar.
      absl::string_view rest = absl::string_view(tf_name).substr(sizeof(kTrainingScope) - 1);
      const size_t opt_end = rest.find('/');
      const size_t slot_begin = rest.rfind('/');
      if (opt_end == absl::string_view::npos || slot_begin == opt_end) continue;  // hyper/iter
      const std::string opt = EstuaryOptimizer(rest.substr(0, opt_end));
      const absl::string_view slot = rest.substr(slot_begin + 1);
      if (!opt.empty() && IsSlotName(slot)) {
        const std::string estuary_opt = opt == "momentum" && slot != "momentum" ? "sgd" : opt;
        name = absl::StrCat(rest.substr(opt_end + 1, slot_begin - opt_end - 1), "/", estuary_opt,
                            "/", slot);
      }
    }
    if (t.dtype == DType::kInt64) {
      if (!t.shape.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": an int64 of shape [", absl::StrJoin(t.shape, ", "),
                         "] is not supported (only scalars such as global_step)"));
      }
      vars.ints[name] = t.ints.at(0);
      continue;
    }
    if (t.dtype != DType::kFloat) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": dtype ", DTypeName(t.dtype), " is not supported"));
    }
    if (t.shape.size() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": rank ", t.shape.size(), " is not supported (at most 2)"));
    }
    const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    vars.floats[name] = Eigen::Map<const RowMatrixXf>(t.floats.data(), rows, cols);
  }
  return vars;
}

std::map<std::string, Tensor> TfOptimizerVariables(const OptimizerConfig& config,
                                                   std::optional<int64_t> iterations) {
  const std::string scope = absl::StrCat(kTrainingScope, TfOptimizerClass(config.type), "/");
  std::map<std::string, Tensor> out;
  auto add = [&](const char* name, double value) {
    out[scope + name] = Tensor::Floats({}, {static_cast<float>(value)});
  };
  add("learning_rate", config.learning_rate);
  add("decay", 0.0);
  if (config.type == "adam") {
    add("beta_1", config.beta1);
    add("beta_2", config.beta2);
  } else if (config.type == "ftrl") {
    add("beta", 0.0);
    add("learning_rate_power", config.learning_rate_power);
    add("l1_regularization_strength", config.l1_regularization_strength);
    add("l2_regularization_strength", config.l2_regularization_strength);
  } else if (config.type == "rmsprop") {
    add("rho", config.rho);
    add("momentum", config.momentum);
  } else if (config.type == "sgd" || config.type == "momentum") {
    add("momentum", config.momentum);
  }
  if (iterations.has_value()) out[scope + "iter"] = Tensor::Ints({}, {*iterations});
  return out;
}

}  // namespace tf_bundle
}  // namespace estuary
