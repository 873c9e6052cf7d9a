#include "estimator/nn/mlp.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace estuary::nn {
namespace {

absl::StatusOr<const RowMatrixXf*> Find(const VariableMap& vars, const std::string& name,
                                        int64_t rows, int64_t cols) {
  auto it = vars.find(name);
  if (it == vars.end()) {
    return absl::InvalidArgumentError(absl::StrCat("mlp: no variable '", name, "'"));
  }
  if (it->second.rows() != rows || it->second.cols() != cols) {
    return absl::InvalidArgumentError(absl::StrCat("mlp: variable '", name, "' is [",
                                                   it->second.rows(), ", ", it->second.cols(),
                                                   "], expected [", rows, ", ", cols, "]"));
  }
  return &it->second;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Mlp>> Mlp::Create(const MlpConfig& config, int64_t input_dim,
                                                 const ComputeContext* ctx) {
  if (input_dim < 1) return absl::InvalidArgumentError("mlp: input dimension must be >= 1");
  if (config.logits_dimension < 1) {
    return absl::InvalidArgumentError("mlp: logits_dimension must be >= 1");
  }
  if (!(config.dropout >= 0.0f && config.dropout < 1.0f)) {
    return absl::InvalidArgumentError("mlp: dropout must be in [0, 1)");
  }
  for (size_t i = 0; i < config.hidden_units.size(); ++i) {
    if (config.hidden_units[i] < 1) {
      return absl::InvalidArgumentError(absl::StrCat("mlp: hidden_units[", i, "] must be >= 1"));
    }
  }
  std::unique_ptr<Mlp> m(new Mlp());
  m->config_ = config;
  m->input_dim_ = input_dim;
  m->ctx_ = ctx;
  auto name = [&](std::string* field, std::string value, bool trainable) {
    *field = std::move(value);
    m->all_.push_back(*field);
    if (trainable) m->trainable_.push_back(*field);
  };
  m->hidden_.resize(config.hidden_units.size());
  for (size_t i = 0; i < config.hidden_units.size(); ++i) {
    Layer& l = m->hidden_[i];
    l.prefix = absl::StrCat("dnn/hiddenlayer_", i);
    name(&l.kernel, l.prefix + "/kernel", true);
    name(&l.bias, l.prefix + "/bias", true);
    if (config.batch_norm) {
      l.batch_norm = true;
      const std::string bn = absl::StrCat(l.prefix, "/batchnorm_", i);
      name(&l.gamma, bn + "/gamma", true);
      name(&l.beta, bn + "/beta", true);
      name(&l.moving_mean, bn + "/moving_mean", false);
      name(&l.moving_variance, bn + "/moving_variance", false);
    }
  }
  m->logits_.prefix = "dnn/logits";
  name(&m->logits_.kernel, "dnn/logits/kernel", true);
  name(&m->logits_.bias, "dnn/logits/bias", true);
  return m;
}

void Mlp::InitVariables(uint64_t seed, VariableMap* vars) const {
  Rng rng(seed);
  int64_t in = input_dim_;
  for (size_t i = 0; i < hidden_.size(); ++i) {
    const Layer& l = hidden_[i];
    const int64_t units = config_.hidden_units[i];
    (*vars)[l.kernel] = GlorotUniform(in, units, &rng);
    (*vars)[l.bias] = RowMatrixXf::Zero(1, units);
    if (l.batch_norm) {
      (*vars)[l.gamma] = RowMatrixXf::Ones(1, units);
      (*vars)[l.beta] = RowMatrixXf::Zero(1, units);
      (*vars)[l.moving_mean] = RowMatrixXf::Zero(1, units);
      (*vars)[l.moving_variance] = RowMatrixXf::Ones(1, units);
    }
    in = units;
  }
  (*vars)[logits_.kernel] = GlorotUniform(in, config_.logits_dimension, &rng);
  (*vars)[logits_.bias] = RowMatrixXf::Zero(1, config_.logits_dimension);
}

absl::StatusOr<RowMatrixXf> Mlp::Forward(const VariableMap& vars, const RowMatrixXf& x,
                                         bool training, Rng* rng, MlpState* state) const {
  state->valid = false;
  if (x.cols() != input_dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat("mlp: input has ", x.cols(), " columns, expected ", input_dim_));
  }
  const bool dropout = training && config_.dropout > 0.0f;
  if (dropout && rng == nullptr) {
    return absl::InvalidArgumentError("mlp: training with dropout needs an rng");
  }
  state->hidden.resize(hidden_.size());
  RowMatrixXf net = x;
  int64_t in = input_dim_;
  for (size_t i = 0; i < hidden_.size(); ++i) {
    const Layer& l = hidden_[i];
    MlpState::Layer& s = state->hidden[i];
    const int64_t units = config_.hidden_units[i];
    absl::StatusOr<const RowMatrixXf*> kernel = Find(vars, l.kernel, in, units);
    if (!kernel.ok()) return kernel.status();
    absl::StatusOr<const RowMatrixXf*> bias = Find(vars, l.bias, 1, units);
    if (!bias.ok()) return bias.status();
    s.input = std::move(net);
    s.z = DenseForward(s.input, **kernel, **bias, ctx_);
    s.a = Activate(config_.activation, s.z);
    if (dropout) {
      net = DropoutForward(s.a, config_.dropout, rng, &s.mask);
    } else {
      net = s.a;
      s.mask.resize(0, 0);
    }
    if (l.batch_norm) {
      const RowMatrixXf* bn[4];
      const std::string* names[] = {&l.gamma, &l.beta, &l.moving_mean, &l.moving_variance};
      for (int k = 0; k < 4; ++k) {
        absl::StatusOr<const RowMatrixXf*> v = Find(vars, *names[k], 1, units);
        if (!v.ok()) return v.status();
        bn[k] = *v;
      }
      net = bn_.Forward(net, *bn[0], *bn[1], *bn[2], *bn[3], training, &s.bn);
    }
    in = units;
  }
  absl::StatusOr<const RowMatrixXf*> kernel =
      Find(vars, logits_.kernel, in, config_.logits_dimension);
  if (!kernel.ok()) return kernel.status();
  absl::StatusOr<const RowMatrixXf*> bias = Find(vars, logits_.bias, 1, config_.logits_dimension);
  if (!bias.ok()) return bias.status();
  state->logits_input = std::move(net);
  state->valid = true;
  return DenseForward(state->logits_input, **kernel, **bias, ctx_);
}

absl::StatusOr<MlpGradients> Mlp::Backward(
    const VariableMap& vars, const MlpState& state, const RowMatrixXf& dlogits,
    bool input_gradient,
    const std::function<void(const std::string&, const RowMatrixXf&)>& on_final) const {
  if (!state.valid || state.hidden.size() != hidden_.size()) {
    return absl::FailedPreconditionError("mlp: Backward before Forward");
  }
  if (dlogits.rows() != state.logits_input.rows() || dlogits.cols() != config_.logits_dimension) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mlp: dlogits is [", dlogits.rows(), ", ", dlogits.cols(), "], expected [",
        state.logits_input.rows(), ", ", config_.logits_dimension, "]"));
  }
  // Forward checked names and shapes of the same variables.
  MlpGradients g;
  auto final = [&](const std::string& name) {
    if (on_final) on_final(name, g.by_name[name]);
  };
  RowMatrixXf d;
  DenseBackward(state.logits_input, vars.at(logits_.kernel), dlogits, &d,
                &g.by_name[logits_.kernel], &g.by_name[logits_.bias], ctx_);
  final(logits_.kernel);
  final(logits_.bias);
  for (int i = static_cast<int>(hidden_.size()) - 1; i >= 0; --i) {
    const Layer& l = hidden_[i];
    const MlpState::Layer& s = state.hidden[i];
    if (l.batch_norm) {
      RowMatrixXf dbn;
      bn_.Backward(s.bn, vars.at(l.gamma), d, &dbn, &g.by_name[l.gamma], &g.by_name[l.beta]);
      final(l.gamma);
      final(l.beta);
      d = std::move(dbn);
      if (s.bn.training) {
        g.moving[l.moving_mean] = s.bn.new_moving_mean;
        g.moving[l.moving_variance] = s.bn.new_moving_variance;
      }
    }
    if (s.mask.size() > 0) d = DropoutBackward(d, s.mask);
    RowMatrixXf dz = std::move(d);
    ActivationBackwardInPlace(config_.activation, s.z, s.a, &dz);
    RowMatrixXf* dx = (i > 0 || input_gradient) ? &d : nullptr;
    DenseBackward(s.input, vars.at(l.kernel), dz, dx, &g.by_name[l.kernel], &g.by_name[l.bias],
                  ctx_);
    final(l.kernel);
    final(l.bias);
    if (dx == nullptr) d.resize(0, 0);
  }
  g.dx = std::move(d);
  return g;
}

}  // namespace estuary::nn
