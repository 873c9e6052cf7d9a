#include "estimator/nn/activation.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace estuary::nn {
namespace {
constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSeluScale = 1.0507009873554805f;
}  // namespace

absl::StatusOr<Activation> ParseActivation(const std::string& name) {
  std::string n = name;
  for (const char* prefix : {"tf.nn.", "tf.keras.activations."}) {
    if (absl::StartsWith(n, prefix)) n = n.substr(std::string(prefix).size());
  }
  if (n == "relu") return Activation::kRelu;
  if (n == "tanh") return Activation::kTanh;
  if (n == "sigmoid") return Activation::kSigmoid;
  if (n == "elu") return Activation::kElu;
  if (n == "selu") return Activation::kSelu;
  if (n == "softplus") return Activation::kSoftplus;
  if (n == "linear") return Activation::kLinear;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown activation '", name, "'; expected relu, tanh, sigmoid, elu, selu, softplus or linear"));
}

const char* ActivationName(Activation a) {
  switch (a) {
    case Activation::kRelu: return "relu";
    case Activation::kTanh: return "tanh";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kElu: return "elu";
    case Activation::kSelu: return "selu";
    case Activation::kSoftplus: return "softplus";
    case Activation::kLinear: return "linear";
  }
  return "?";
}

RowMatrixXf Activate(Activation a, const RowMatrixXf& z) {
  auto x = z.array();
  switch (a) {
    case Activation::kRelu: return x.max(0.0f).matrix();
    case Activation::kTanh: return x.tanh().matrix();
    case Activation::kSigmoid: return (1.0f / (1.0f + (-x).exp())).matrix();
    case Activation::kElu: return (x > 0.0f).select(x, x.exp() - 1.0f).matrix();
    case Activation::kSelu:
      return (kSeluScale * (x > 0.0f).select(x, kSeluAlpha * (x.exp() - 1.0f))).matrix();
    case Activation::kSoftplus:
      // Stable log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)).
      return (x.max(0.0f) + (-x.abs()).exp().log1p()).matrix();
    case Activation::kLinear: return z;
  }
  return z;
}

RowMatrixXf ActivationBackward(Activation a, const RowMatrixXf& z, const RowMatrixXf& y,
                               const RowMatrixXf& dy) {
  auto x = z.array();
  auto out = y.array();
  auto g = dy.array();
  switch (a) {
    case Activation::kRelu: {
      RowMatrixXf d = dy;
      ActivationBackwardInPlace(a, z, y, &d);
      return d;
    }
    case Activation::kTanh: return (g * (1.0f - out.square())).matrix();
    case Activation::kSigmoid: return (g * out * (1.0f - out)).matrix();
    case Activation::kElu: return (out < 0.0f).select(g * (out + 1.0f), g).matrix();
    case Activation::kSelu:
      // TF's SeluGrad/EluGrad branch on y < 0: the slope at z == 0 is the
      // positive side's.
      return (out < 0.0f).select(g * (out + kSeluScale * kSeluAlpha), g * kSeluScale).matrix();
    case Activation::kSoftplus: return (g / (1.0f + (-x).exp())).matrix();
    case Activation::kLinear: return dy;
  }
  return dy;
}

void ActivationBackwardInPlace(Activation a, const RowMatrixXf& z, const RowMatrixXf& y,
                               RowMatrixXf* dy) {
  if (a != Activation::kRelu) {
    *dy = ActivationBackward(a, z, y, *dy);
    return;
  }
  // dy where z > 0, else 0 (the select above), with Eigen's packet ops:
  // compilers keep a branch in the scalar loop, and the signs of z are
  // random (the mispredictions were a third of a DNN training step).
  using Packet = Eigen::internal::packet_traits<float>::type;
  constexpr Eigen::Index kSize = Eigen::internal::packet_traits<float>::size;
  const float* zp = z.data();
  float* dp = dy->data();
  const Eigen::Index n = dy->size();
  const Packet zero = Eigen::internal::pset1<Packet>(0.0f);
  Eigen::Index i = 0;
  for (; i + kSize <= n; i += kSize) {
    const Packet positive = Eigen::internal::pcmp_lt(zero, Eigen::internal::ploadu<Packet>(zp + i));
    Eigen::internal::pstoreu(dp + i, Eigen::internal::pand(Eigen::internal::ploadu<Packet>(dp + i),
                                                           positive));
  }
  for (; i < n; ++i) dp[i] = zp[i] > 0.0f ? dp[i] : 0.0f;
}

}  // namespace estuary::nn
