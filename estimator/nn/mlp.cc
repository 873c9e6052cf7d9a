#include "estimator/nn/mlp.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace estuary::nn {

absl::StatusOr<std::unique_ptr<Mlp>> Mlp::Create(const MlpConfig& config, int64_t input_dim,
                                                 uint64_t seed) {
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
  Rng rng(seed);
  auto add = [&](const std::string& name, RowMatrixXf value, bool trainable) {
    RowMatrixXf* p = &(m->variables_[name] = std::move(value));
    if (trainable) m->trainable_.push_back(name);
    return p;
  };
  int64_t in = input_dim;
  m->hidden_.resize(config.hidden_units.size());
  for (size_t i = 0; i < config.hidden_units.size(); ++i) {
    Layer& l = m->hidden_[i];
    const int64_t units = config.hidden_units[i];
    l.prefix = absl::StrCat("dnn/hiddenlayer_", i);
    l.kernel = add(l.prefix + "/kernel", GlorotUniform(in, units, &rng), true);
    l.bias = add(l.prefix + "/bias", RowMatrixXf::Zero(1, units), true);
    if (config.batch_norm) {
      l.bn = std::make_unique<BatchNorm>(units);
      l.bn_prefix = absl::StrCat(l.prefix, "/batchnorm_", i);
      add(l.bn_prefix + "/gamma", l.bn->gamma, true);
      add(l.bn_prefix + "/beta", l.bn->beta, true);
      add(l.bn_prefix + "/moving_mean", l.bn->moving_mean, false);
      add(l.bn_prefix + "/moving_variance", l.bn->moving_variance, false);
    }
    in = units;
  }
  m->logits_.prefix = "dnn/logits";
  m->logits_.kernel = add("dnn/logits/kernel", GlorotUniform(in, config.logits_dimension, &rng),
                          true);
  m->logits_.bias = add("dnn/logits/bias", RowMatrixXf::Zero(1, config.logits_dimension), true);
  return m;
}

void Mlp::SyncBatchNorm(Layer* l, bool to_variables) {
  const std::string& p = l->bn_prefix;
  RowMatrixXf* fields[] = {&l->bn->gamma, &l->bn->beta, &l->bn->moving_mean,
                           &l->bn->moving_variance};
  const char* names[] = {"/gamma", "/beta", "/moving_mean", "/moving_variance"};
  for (int i = 0; i < 4; ++i) {
    RowMatrixXf& v = variables_.at(p + names[i]);
    if (to_variables) {
      v = *fields[i];
    } else {
      *fields[i] = v;
    }
  }
}

absl::StatusOr<RowMatrixXf> Mlp::Forward(const RowMatrixXf& x, bool training, Rng* rng) {
  if (x.cols() != input_dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat("mlp: input has ", x.cols(), " columns, expected ", input_dim_));
  }
  const bool dropout = training && config_.dropout > 0.0f;
  if (dropout && rng == nullptr) {
    return absl::InvalidArgumentError("mlp: training with dropout needs an rng");
  }
  RowMatrixXf net = x;
  for (Layer& l : hidden_) {
    l.input = std::move(net);
    l.z = DenseForward(l.input, *l.kernel, *l.bias, ctx_);
    l.a = Activate(config_.activation, l.z);
    net = dropout ? DropoutForward(l.a, config_.dropout, rng, &l.mask) : l.a;
    if (l.bn != nullptr) {
      SyncBatchNorm(&l, /*to_variables=*/false);
      net = l.bn->Forward(net, training, &l.bn_cache);
      SyncBatchNorm(&l, /*to_variables=*/true);
    }
  }
  if (!dropout) {
    for (Layer& l : hidden_) l.mask.resize(0, 0);
  }
  logits_.input = std::move(net);
  has_forward_ = true;
  return DenseForward(logits_.input, *logits_.kernel, *logits_.bias, ctx_);
}

absl::StatusOr<MlpGradients> Mlp::Backward(const RowMatrixXf& dlogits, bool input_gradient) const {
  if (!has_forward_) return absl::FailedPreconditionError("mlp: Backward before Forward");
  if (dlogits.rows() != logits_.input.rows() || dlogits.cols() != config_.logits_dimension) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mlp: dlogits is [", dlogits.rows(), ", ", dlogits.cols(), "], expected [",
        logits_.input.rows(), ", ", config_.logits_dimension, "]"));
  }
  MlpGradients g;
  RowMatrixXf d;
  DenseBackward(logits_.input, *logits_.kernel, dlogits, &d, &g.by_name["dnn/logits/kernel"],
                &g.by_name["dnn/logits/bias"], ctx_);
  for (int i = static_cast<int>(hidden_.size()) - 1; i >= 0; --i) {
    const Layer& l = hidden_[i];
    if (l.bn != nullptr) {
      RowMatrixXf dbn;
      l.bn->Backward(l.bn_cache, d, &dbn, &g.by_name[l.bn_prefix + "/gamma"],
                     &g.by_name[l.bn_prefix + "/beta"]);
      d = std::move(dbn);
    }
    if (l.mask.size() > 0) d = DropoutBackward(d, l.mask);
    RowMatrixXf dz = std::move(d);
    ActivationBackwardInPlace(config_.activation, l.z, l.a, &dz);
    RowMatrixXf* dx = (i > 0 || input_gradient) ? &d : nullptr;
    DenseBackward(l.input, *l.kernel, dz, dx, &g.by_name[l.prefix + "/kernel"],
                  &g.by_name[l.prefix + "/bias"], ctx_);
    if (dx == nullptr) d.resize(0, 0);
  }
  g.dx = std::move(d);
  return g;
}

}  // namespace estuary::nn
