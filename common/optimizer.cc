#include "common/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/did_you_mean.h"
#include "common/prefetch.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

using Arr = Eigen::Map<Eigen::ArrayXf>;
using ConstArr = Eigen::Map<const Eigen::ArrayXf>;

Arr A(RowMatrixXf* m, int64_t offset, int64_t n) { return Arr(m->data() + offset, n); }
Arr A(Slots* s, const char* name, int64_t offset, int64_t n) {
  return A(&s->by_name.at(name), offset, n);
}

// Base for optimizers whose sparse update is the dense rule applied to the
// touched rows (TF's ResourceSparseApply* kernels).
class RowWiseOptimizer : public Optimizer {
 public:
  void ApplyDense(RowMatrixXf* var, Slots* slots, const RowMatrixXf& grad,
                  int64_t step) const override {
    Update(var, slots, 0, ConstArr(grad.data(), grad.size()), step);
  }
  void ApplySparse(RowMatrixXf* var, Slots* slots, absl::Span<const int64_t> rows,
                   const RowMatrixXf& grads, int64_t step) const override {
    const int64_t cols = var->cols();
    for (size_t i = 0; i < rows.size(); ++i) {
      Update(var, slots, rows[i] * cols, ConstArr(grads.data() + i * cols, cols), step);
    }
  }

 protected:
  // Updates the g.size() elements of var and slots starting at `offset`.
  virtual void Update(RowMatrixXf* var, Slots* slots, int64_t offset, const ConstArr& g,
                      int64_t step) const = 0;
  Slots ZeroSlots(const RowMatrixXf& var, std::initializer_list<const char*> names) const {
    Slots s;
    for (const char* n : names) s.by_name[n] = RowMatrixXf::Zero(var.rows(), var.cols());
    return s;
  }
};

class Sgd : public RowWiseOptimizer {
 public:
  Sgd(float lr, float momentum, bool nesterov, std::string name)
      : lr_(lr), momentum_(momentum), nesterov_(nesterov), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  Slots CreateSlots(const RowMatrixXf& var) const override {
    if (momentum_ > 0) return ZeroSlots(var, {"momentum"});
    return Slots{};
  }

 protected:
  void Update(RowMatrixXf* var, Slots* slots, int64_t off, const ConstArr& g,
              int64_t) const override {
    const int64_t n = g.size();
    Arr v = A(var, off, n);
    if (momentum_ <= 0) {  // ResourceApplyGradientDescent
      v -= g * lr_;
      return;
    }
    Arr m = A(slots, "momentum", off, n);  // ResourceApplyKerasMomentum
    m = m * momentum_ - g * lr_;
    if (nesterov_) {
      v += m * momentum_ - g * lr_;
    } else {
      v += m;
    }
  }

 private:
  float lr_, momentum_;
  bool nesterov_;
  std::string name_;
};

class Adagrad : public RowWiseOptimizer {
 public:
  Adagrad(float lr, float init, float eps) : lr_(lr), init_(init), eps_(eps) {}
  std::string name() const override { return "adagrad"; }
  // Update row by row with the accumulator looked up once (a large sparse
  // linear model has one-float rows, so per-row overhead dominates).
  void ApplySparse(RowMatrixXf* var, Slots* slots, absl::Span<const int64_t> rows,
                   const RowMatrixXf& grads, int64_t) const override {
    const int64_t cols = var->cols();
    float* v = var->data();
    float* acc = slots->by_name.at("accumulator").data();
    for (size_t i = 0; i < rows.size(); ++i) {
      PrefetchRowAhead<true>(v, rows, i, cols);
      PrefetchRowAhead<true>(acc, rows, i, cols);
      const float* g = grads.data() + i * cols;
      float* a = acc + rows[i] * cols;
      float* w = v + rows[i] * cols;
      for (int64_t j = 0; j < cols; ++j) {  // as Update below, elementwise
        a[j] += g[j] * g[j];
        w[j] -= g[j] * lr_ / (std::sqrt(a[j]) + eps_);
      }
    }
  }
  Slots CreateSlots(const RowMatrixXf& var) const override {
    Slots s;
    s.by_name["accumulator"] = RowMatrixXf::Constant(var.rows(), var.cols(), init_);
    return s;
  }

 protected:
  void Update(RowMatrixXf* var, Slots* slots, int64_t off, const ConstArr& g,
              int64_t) const override {  // ResourceApplyAdagradV2
    const int64_t n = g.size();
    Arr acc = A(slots, "accumulator", off, n);
    acc += g.square();
    A(var, off, n) -= g * lr_ / (acc.sqrt() + eps_);
  }

 private:
  float lr_, init_, eps_;
};

class Ftrl : public RowWiseOptimizer {
 public:
  Ftrl(float lr, float lr_power, float init, float l1, float l2, float l2_shrinkage)
      : lr_(lr), lr_power_(lr_power), init_(init), l1_(l1), l2_(l2), shrinkage_(l2_shrinkage) {}
  std::string name() const override { return "ftrl"; }
  // Row by row with the slots looked up once and no temporaries (a large
  // sparse linear model has one-float rows, so per-row overhead dominates);
  // the same operations as Update below, elementwise, so the same floats.
  void ApplySparse(RowMatrixXf* var, Slots* slots, absl::Span<const int64_t> rows,
                   const RowMatrixXf& grads, int64_t step) const override {
    if (lr_power_ != -0.5f || shrinkage_ > 0) {  // (the loop is checked bitwise without)
      RowWiseOptimizer::ApplySparse(var, slots, rows, grads, step);
      return;
    }
    const int64_t cols = var->cols();
    float* acc = slots->by_name.at("accumulator").data();
    float* lin = slots->by_name.at("linear").data();
    const float two_l2 = 2.0f * l2_;
    for (size_t i = 0; i < rows.size(); ++i) {
      PrefetchRowAhead<true>(var->data(), rows, i, cols);
      PrefetchRowAhead<true>(acc, rows, i, cols);
      PrefetchRowAhead<true>(lin, rows, i, cols);
      const float* g = grads.data() + i * cols;
      const int64_t off = rows[i] * cols;
      float* v = var->data() + off;
      float* a = acc + off;
      float* l = lin + off;
      for (int64_t j = 0; j < cols; ++j) {
        const float new_acc = a[j] + g[j] * g[j];
        const float new_pow = std::sqrt(new_acc), old_pow = std::sqrt(a[j]);
        const float step_size = (new_pow - old_pow) / lr_ * v[j];
        l[j] = l[j] + (g[j] - step_size);
        const float sign = static_cast<float>(l[j] > 0.0f) - static_cast<float>(l[j] < 0.0f);
        const float x = l1_ * sign - l[j];
        const float y = new_pow / lr_ + two_l2;
        v[j] = std::abs(l[j]) > l1_ ? x / y : 0.0f;
        a[j] = new_acc;
      }
    }
  }
  Slots CreateSlots(const RowMatrixXf& var) const override {
    Slots s;
    s.by_name["accumulator"] = RowMatrixXf::Constant(var.rows(), var.cols(), init_);
    s.by_name["linear"] = RowMatrixXf::Zero(var.rows(), var.cols());
    return s;
  }

 protected:
  void Update(RowMatrixXf* var, Slots* slots, int64_t off, const ConstArr& g,
              int64_t) const override {  // ResourceApplyFtrl(V2)
    const int64_t n = g.size();
    Arr v = A(var, off, n);
    Arr acc = A(slots, "accumulator", off, n);
    Arr linear = A(slots, "linear", off, n);
    Eigen::ArrayXf new_acc = acc + g.square();
    Eigen::ArrayXf new_pow, old_pow;
    if (lr_power_ == -0.5f) {
      new_pow = new_acc.sqrt();
      old_pow = acc.sqrt();
    } else {
      new_pow = new_acc.pow(-lr_power_);
      old_pow = acc.pow(-lr_power_);
    }
    if (shrinkage_ > 0) {
      linear += (g + 2.0f * shrinkage_ * v) - (new_pow - old_pow) / lr_ * v;
    } else {
      linear += g - (new_pow - old_pow) / lr_ * v;
    }
    Eigen::ArrayXf x = l1_ * linear.sign() - linear;
    Eigen::ArrayXf y = new_pow / lr_ + 2.0f * l2_;
    v = (linear.abs() > l1_).select(x / y, 0.0f);
    acc = new_acc;
  }

 private:
  float lr_, lr_power_, init_, l1_, l2_, shrinkage_;
};

class RmsPropMomentum : public RowWiseOptimizer {  // ResourceApply(Centered)RMSProp
 public:
  RmsPropMomentum(float lr, float rho, float momentum, float eps, bool centered)
      : lr_(lr), rho_(rho), momentum_(momentum), eps_(eps), centered_(centered) {}
  std::string name() const override { return "rmsprop"; }
  Slots CreateSlots(const RowMatrixXf& var) const override {
    return centered_ ? ZeroSlots(var, {"rms", "momentum", "mg"})
                     : ZeroSlots(var, {"rms", "momentum"});
  }

 protected:
  void Update(RowMatrixXf* var, Slots* slots, int64_t off, const ConstArr& g,
              int64_t) const override {
    const int64_t n = g.size();
    Arr ms = A(slots, "rms", off, n);
    Arr mom = A(slots, "momentum", off, n);
    ms += (g.square() - ms) * (1.0f - rho_);
    if (centered_) {
      Arr mg = A(slots, "mg", off, n);
      mg += (g - mg) * (1.0f - rho_);
      mom = mom * momentum_ + g * lr_ / ((ms - mg.square()) + eps_).sqrt();
    } else {
      mom = mom * momentum_ + g * lr_ / (ms + eps_).sqrt();
    }
    A(var, off, n) -= mom;
  }

 private:
  float lr_, rho_, momentum_, eps_;
  bool centered_;
};

// Legacy Keras RMSprop with momentum 0: Python-level update; the sparse path
// decays all of rms (and mg) and updates var only at the touched rows.
class RmsProp : public Optimizer {
 public:
  RmsProp(float lr, float rho, float eps, bool centered)
      : lr_(lr), rho_(rho), eps_(eps), centered_(centered) {}
  std::string name() const override { return "rmsprop"; }
  Slots CreateSlots(const RowMatrixXf& var) const override {
    Slots s;
    s.by_name["rms"] = RowMatrixXf::Zero(var.rows(), var.cols());
    if (centered_) s.by_name["mg"] = RowMatrixXf::Zero(var.rows(), var.cols());
    return s;
  }
  void ApplyDense(RowMatrixXf* var, Slots* slots, const RowMatrixXf& grad,
                  int64_t) const override {
    const int64_t n = grad.size();
    ConstArr g(grad.data(), n);
    Arr rms = A(slots, "rms", 0, n);
    rms = rho_ * rms + (1.0f - rho_) * g.square();
    Eigen::ArrayXf denom = rms;
    if (centered_) {
      Arr mg = A(slots, "mg", 0, n);
      mg = rho_ * mg + (1.0f - rho_) * g;
      denom -= mg.square();
    }
    A(var, 0, n) -= lr_ * g / (denom.sqrt() + eps_);
  }
  void ApplySparse(RowMatrixXf* var, Slots* slots, absl::Span<const int64_t> rows,
                   const RowMatrixXf& grads, int64_t) const override {
    const int64_t cols = var->cols();
    RowMatrixXf& rms = slots->by_name.at("rms");
    RowMatrixXf* mg = centered_ ? &slots->by_name.at("mg") : nullptr;
    rms *= rho_;
    if (mg != nullptr) *mg *= rho_;
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t off = rows[i] * cols;
      ConstArr g(grads.data() + i * cols, cols);
      Arr r = A(&rms, off, cols);
      r += g.square() * (1.0f - rho_);
      Eigen::ArrayXf denom = r;
      if (mg != nullptr) {
        Arr m = A(mg, off, cols);
        m += g * (1.0f - rho_);
        denom -= m.square();
      }
      A(var, off, cols) += -lr_ * g / (denom.sqrt() + eps_);
    }
  }

 private:
  float lr_, rho_, eps_;
  bool centered_;
};

// Legacy Keras Adam. Dense: ResourceApplyAdam. Sparse: m and v decay
// everywhere, every row of var moves (Keras' _resource_apply_sparse).
class Adam : public Optimizer {
 public:
  Adam(float lr, float beta1, float beta2, float eps)
      : lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps) {}
  std::string name() const override { return "adam"; }
  Slots CreateSlots(const RowMatrixXf& var) const override {
    Slots s;
    s.by_name["m"] = RowMatrixXf::Zero(var.rows(), var.cols());
    s.by_name["v"] = RowMatrixXf::Zero(var.rows(), var.cols());
    return s;
  }
  void ApplyDense(RowMatrixXf* var, Slots* slots, const RowMatrixXf& grad,
                  int64_t step) const override {
    const int64_t n = grad.size();
    ConstArr g(grad.data(), n);
    Arr m = A(slots, "m", 0, n);
    Arr v = A(slots, "v", 0, n);
    const float alpha = Alpha(step);
    m += (g - m) * (1.0f - beta1_);
    v += (g.square() - v) * (1.0f - beta2_);
    A(var, 0, n) -= (m * alpha) / (v.sqrt() + eps_);
  }
  void ApplySparse(RowMatrixXf* var, Slots* slots, absl::Span<const int64_t> rows,
                   const RowMatrixXf& grads, int64_t step) const override {
    const int64_t cols = var->cols(), n = var->size();
    RowMatrixXf& m = slots->by_name.at("m");
    RowMatrixXf& v = slots->by_name.at("v");
    m *= beta1_;
    v *= beta2_;
    for (size_t i = 0; i < rows.size(); ++i) {
      ConstArr g(grads.data() + i * cols, cols);
      A(&m, rows[i] * cols, cols) += g * (1.0f - beta1_);
      A(&v, rows[i] * cols, cols) += g * g * (1.0f - beta2_);
    }
    const float alpha = Alpha(step);
    A(var, 0, n) -= alpha * A(&m, 0, n) / (A(&v, 0, n).sqrt() + eps_);
  }

 private:
  float Alpha(int64_t step) const {
    const float t = static_cast<float>(step + 1);
    const float b1p = std::pow(beta1_, t), b2p = std::pow(beta2_, t);
    return lr_ * (std::sqrt(1.0f - b2p) / (1.0f - b1p));
  }
  float lr_, beta1_, beta2_, eps_;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const OptimizerType* FindType(const std::string& lower) {
  for (const OptimizerType& t : OptimizerTypes()) {
    if (lower == t.name) return &t;
  }
  return nullptr;
}

absl::StatusOr<const OptimizerType*> ParseType(const nlohmann::json& v, const JsonPath& where) {
  if (!v.is_string()) {
    return where.Error(absl::StrCat("expected an optimizer name string, got ", DescribeJson(v)));
  }
  const OptimizerType* t = FindType(Lower(v.get<std::string>()));
  if (t == nullptr) {
    return where.Error(absl::StrCat("unknown optimizer '", v.get<std::string>(),
                                    "'; expected one of Adagrad, Adam, Ftrl, RMSProp, SGD, "
                                    "Momentum (case-insensitive)"));
  }
  return t;
}

absl::Status CheckRange(bool ok, const JsonPath& where, const std::string& what) {
  return ok ? absl::OkStatus() : where.Error(what);
}

// MakeOptimizer with errors from `p` ("$.estimator.optimizer.beta1: ...").
absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizerAt(const OptimizerConfig& c,
                                                           const JsonPath& p) {
  RETURN_IF_ERROR(CheckRange(c.learning_rate > 0, p.Key("learning_rate"), "must be > 0"));
  RETURN_IF_ERROR(CheckRange(c.epsilon >= 0, p.Key("epsilon"), "must be >= 0"));
  RETURN_IF_ERROR(
      CheckRange(c.momentum >= 0 && c.momentum <= 1, p.Key("momentum"), "must be in [0, 1]"));
  const float lr = static_cast<float>(c.learning_rate);
  const std::string type = Lower(c.type);
  if (type == "sgd" || type == "momentum") {
    if (type == "momentum" && !(c.momentum > 0)) {
      return p.Key("momentum").Error("optimizer 'momentum' needs momentum > 0");
    }
    return std::unique_ptr<Optimizer>(
        new Sgd(lr, static_cast<float>(c.momentum), c.use_nesterov, type));
  }
  if (type == "adagrad") {
    RETURN_IF_ERROR(CheckRange(c.initial_accumulator_value >= 0,
                               p.Key("initial_accumulator_value"), "must be >= 0"));
    return std::unique_ptr<Optimizer>(new Adagrad(
        lr, static_cast<float>(c.initial_accumulator_value), static_cast<float>(c.epsilon)));
  }
  if (type == "adam") {
    RETURN_IF_ERROR(CheckRange(c.beta1 >= 0 && c.beta1 < 1, p.Key("beta1"), "must be in [0, 1)"));
    RETURN_IF_ERROR(CheckRange(c.beta2 >= 0 && c.beta2 < 1, p.Key("beta2"), "must be in [0, 1)"));
    return std::unique_ptr<Optimizer>(new Adam(lr, static_cast<float>(c.beta1),
                                               static_cast<float>(c.beta2),
                                               static_cast<float>(c.epsilon)));
  }
  if (type == "ftrl") {
    RETURN_IF_ERROR(CheckRange(c.learning_rate_power <= 0, p.Key("learning_rate_power"),
                               "must be <= 0"));
    RETURN_IF_ERROR(CheckRange(c.initial_accumulator_value >= 0,
                               p.Key("initial_accumulator_value"), "must be >= 0"));
    RETURN_IF_ERROR(CheckRange(c.l1_regularization_strength >= 0,
                               p.Key("l1_regularization_strength"), "must be >= 0"));
    RETURN_IF_ERROR(CheckRange(c.l2_regularization_strength >= 0,
                               p.Key("l2_regularization_strength"), "must be >= 0"));
    RETURN_IF_ERROR(CheckRange(c.l2_shrinkage_regularization_strength >= 0,
                               p.Key("l2_shrinkage_regularization_strength"), "must be >= 0"));
    return std::unique_ptr<Optimizer>(
        new Ftrl(lr, static_cast<float>(c.learning_rate_power),
                 static_cast<float>(c.initial_accumulator_value),
                 static_cast<float>(c.l1_regularization_strength),
                 static_cast<float>(c.l2_regularization_strength),
                 static_cast<float>(c.l2_shrinkage_regularization_strength)));
  }
  if (type == "rmsprop") {
    RETURN_IF_ERROR(CheckRange(c.rho >= 0 && c.rho <= 1, p.Key("rho"), "must be in [0, 1]"));
    if (c.momentum > 0) {
      return std::unique_ptr<Optimizer>(
          new RmsPropMomentum(lr, static_cast<float>(c.rho), static_cast<float>(c.momentum),
                              static_cast<float>(c.epsilon), c.centered));
    }
    return std::unique_ptr<Optimizer>(new RmsProp(lr, static_cast<float>(c.rho),
                                                  static_cast<float>(c.epsilon), c.centered));
  }
  return p.Key("type").Error(absl::StrCat("unknown optimizer '", c.type, "'"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const OptimizerConfig& config) {
  ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer,
                   MakeOptimizerAt(config, JsonPath("", "optimizer")));
  optimizer->config_ = config;
  return optimizer;
}

const std::vector<OptimizerType>& OptimizerTypes() {
  static const auto* types = new std::vector<OptimizerType>{
      {"sgd", {"momentum", "use_nesterov"}},
      {"momentum", {"momentum", "use_nesterov"}},
      {"adagrad", {"initial_accumulator_value", "epsilon"}},
      {"adam", {"beta1", "beta2", "epsilon"}},
      {"ftrl",
       {"learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
        "l2_regularization_strength", "l2_shrinkage_regularization_strength"}},
      {"rmsprop", {"rho", "decay", "momentum", "epsilon", "centered"}},
  };
  return *types;
}

absl::StatusOr<OptimizerChoice> ParseOptimizer(const nlohmann::json& spec,
                                               const std::string& default_type,
                                               const JsonPath& where) {
  OptimizerChoice choice;
  OptimizerConfig& c = choice.config;
  const OptimizerType* type = nullptr;
  if (spec.is_null()) {
    ASSIGN_OR_RETURN(type, ParseType(default_type, where));
  } else if (spec.is_string()) {
    ASSIGN_OR_RETURN(type, ParseType(spec, where));
  } else if (spec.is_object()) {
    if (IsSet(spec, "type")) {
      ASSIGN_OR_RETURN(type, ParseType(spec["type"], where.Key("type")));
    } else {
      ASSIGN_OR_RETURN(type, ParseType(default_type, where));
    }
    // Every key any optimizer takes, for did-you-mean hints on typos.
    std::vector<std::string> all = {"type", "learning_rate"};
    for (const OptimizerType& t : OptimizerTypes()) {
      for (const std::string& k : t.keys) {
        if (std::find(all.begin(), all.end(), k) == all.end()) all.push_back(k);
      }
    }
    std::vector<std::string> own = {"type", "learning_rate"};
    own.insert(own.end(), type->keys.begin(), type->keys.end());
    for (auto it = spec.begin(); it != spec.end(); ++it) {
      const std::string& key = it.key();
      const JsonPath p = where.Key(key);
      const nlohmann::json& v = it.value();
      if (key == "type" || v.is_null()) continue;
      if (std::find(own.begin(), own.end(), key) == own.end()) {
        if (std::find(all.begin(), all.end(), key) == all.end()) {
          return p.Error(absl::StrCat("unknown key", DidYouMean(key, own)));
        }
        return p.Error(absl::StrCat("not a parameter of optimizer '", type->name,
                                    "' (it takes learning_rate, ",
                                    absl::StrJoin(type->keys, ", "), ")"));
      }
      if (key == "use_nesterov" || key == "centered") {
        if (!v.is_boolean()) return p.Error(absl::StrCat("expected a boolean, got ", DescribeJson(v)));
        (key == "centered" ? c.centered : c.use_nesterov) = v.get<bool>();
        continue;
      }
      if (!v.is_number()) return p.Error(absl::StrCat("expected a number, got ", DescribeJson(v)));
      const double d = v.get<double>();
      if (key == "learning_rate") {
        c.learning_rate = d;
        choice.learning_rate_set = true;
      }
      if (key == "momentum") c.momentum = d;
      if (key == "initial_accumulator_value") c.initial_accumulator_value = d;
      if (key == "beta1") c.beta1 = d;
      if (key == "beta2") c.beta2 = d;
      if (key == "epsilon") c.epsilon = d;
      if (key == "learning_rate_power") c.learning_rate_power = d;
      if (key == "l1_regularization_strength") c.l1_regularization_strength = d;
      if (key == "l2_regularization_strength") c.l2_regularization_strength = d;
      if (key == "l2_shrinkage_regularization_strength") {
        c.l2_shrinkage_regularization_strength = d;
      }
      if (key == "rho") c.rho = d;
      if (key == "decay") {
        if (IsSet(spec, "rho")) return p.Error("give rho or decay, not both");
        c.rho = d;
      }
    }
  } else {
    return where.Error(
        absl::StrCat("expected an optimizer name or object, got ", DescribeJson(spec)));
  }
  c.type = type->name;
  // Range checks with a learning rate that is valid whatever the default.
  OptimizerConfig check = c;
  if (!choice.learning_rate_set) check.learning_rate = 1;
  RETURN_IF_ERROR(MakeOptimizerAt(check, where).status());
  return choice;
}

absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const nlohmann::json& spec,
                                                         const std::string& default_type,
                                                         double default_learning_rate,
                                                         const std::string& json_path) {
  ASSIGN_OR_RETURN(OptimizerChoice choice,
                   ParseOptimizer(spec, default_type, JsonPath("", json_path)));
  return MakeOptimizer(choice, default_learning_rate);
}

absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(OptimizerChoice choice,
                                                         double default_learning_rate) {
  if (!choice.learning_rate_set) choice.config.learning_rate = default_learning_rate;
  return MakeOptimizer(choice.config);
}

}  // namespace estuary
