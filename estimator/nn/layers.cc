#define EIGEN_USE_THREADS
#include "estimator/nn/layers.h"

#include <cassert>
#include <cmath>

#include "unsupported/Eigen/CXX11/Tensor"
#include "unsupported/Eigen/CXX11/ThreadPool"

namespace estuary::nn {

struct ComputeContext::Impl {
  explicit Impl(int n) : pool(n), device(&pool, n) {}
  Eigen::ThreadPool pool;
  Eigen::ThreadPoolDevice device;
};

ComputeContext::ComputeContext(int num_threads)
    : num_threads_(num_threads < 1 ? 1 : num_threads),
      impl_(std::make_unique<Impl>(num_threads_)) {}
ComputeContext::~ComputeContext() = default;
const Eigen::ThreadPoolDevice* ComputeContext::device() const { return &impl_->device; }

void MatMul(const RowMatrixXf& a, bool transpose_a, const RowMatrixXf& b, bool transpose_b,
            RowMatrixXf* out, const ComputeContext* ctx) {
  const int64_t m = transpose_a ? a.cols() : a.rows();
  const int64_t k = transpose_a ? a.rows() : a.cols();
  const int64_t n = transpose_b ? b.rows() : b.cols();
  assert(k == (transpose_b ? b.cols() : b.rows()));
  (void)k;
  out->resize(m, n);
  if (ctx == nullptr || ctx->num_threads() <= 1) {
    if (transpose_a && transpose_b) {
      out->noalias() = a.transpose() * b.transpose();
    } else if (transpose_a) {
      out->noalias() = a.transpose() * b;
    } else if (transpose_b) {
      out->noalias() = a * b.transpose();
    } else {
      out->noalias() = a * b;
    }
    return;
  }
  using In = Eigen::TensorMap<Eigen::Tensor<const float, 2, Eigen::RowMajor>>;
  using Out = Eigen::TensorMap<Eigen::Tensor<float, 2, Eigen::RowMajor>>;
  In ta(a.data(), a.rows(), a.cols());
  In tb(b.data(), b.rows(), b.cols());
  Out to(out->data(), m, n);
  Eigen::array<Eigen::IndexPair<int>, 1> dims = {
      Eigen::IndexPair<int>(transpose_a ? 0 : 1, transpose_b ? 1 : 0)};
  to.device(*ctx->device()) = ta.contract(tb, dims);
}

float Uniform01(Rng* rng) { return static_cast<float>((*rng)() >> 40) * (1.0f / 16777216.0f); }

RowMatrixXf GlorotUniform(int64_t fan_in, int64_t fan_out, Rng* rng) {
  const float limit = std::sqrt(6.0f / static_cast<float>(fan_in + fan_out));
  RowMatrixXf w(fan_in, fan_out);
  for (int64_t i = 0; i < w.size(); ++i) w.data()[i] = (2.0f * Uniform01(rng) - 1.0f) * limit;
  return w;
}

RowMatrixXf DenseForward(const RowMatrixXf& x, const RowMatrixXf& kernel, const RowMatrixXf& bias,
                         const ComputeContext* ctx) {
  RowMatrixXf y;
  MatMul(x, false, kernel, false, &y, ctx);
  y.rowwise() += bias.row(0);
  return y;
}

void DenseBackward(const RowMatrixXf& x, const RowMatrixXf& kernel, const RowMatrixXf& dy,
                   RowMatrixXf* dx, RowMatrixXf* dkernel, RowMatrixXf* dbias,
                   const ComputeContext* ctx) {
  MatMul(x, true, dy, false, dkernel, ctx);
  *dbias = dy.colwise().sum();
  if (dx != nullptr) MatMul(dy, false, kernel, true, dx, ctx);
}

RowMatrixXf DropoutForward(const RowMatrixXf& x, float rate, Rng* rng, RowMatrixXf* mask) {
  mask->resize(x.rows(), x.cols());
  if (rate <= 0.0f) {
    mask->setOnes();
    return x;
  }
  const float scale = 1.0f / (1.0f - rate);
  for (int64_t i = 0; i < mask->size(); ++i) {
    mask->data()[i] = Uniform01(rng) >= rate ? scale : 0.0f;
  }
  return x.cwiseProduct(*mask);
}

RowMatrixXf DropoutBackward(const RowMatrixXf& dy, const RowMatrixXf& mask) {
  return dy.cwiseProduct(mask);
}

RowMatrixXf BatchNorm::Forward(const RowMatrixXf& x, const RowMatrixXf& gamma,
                               const RowMatrixXf& beta, const RowMatrixXf& moving_mean,
                               const RowMatrixXf& moving_variance, bool training,
                               Cache* cache) const {
  cache->training = training;
  RowMatrixXf mean, var;
  if (training) {
    mean = x.colwise().mean();
    RowMatrixXf centered = x.rowwise() - mean.row(0);
    var = centered.array().square().colwise().mean().matrix();
    cache->new_moving_mean = moving_mean;
    cache->new_moving_mean -= (moving_mean - mean) * (1.0f - momentum);
    cache->new_moving_variance = moving_variance;
    cache->new_moving_variance -= (moving_variance - var) * (1.0f - momentum);
  } else {
    mean = moving_mean;
    var = moving_variance;
    cache->new_moving_mean.resize(0, 0);
    cache->new_moving_variance.resize(0, 0);
  }
  cache->inv_std = (var.array() + epsilon).rsqrt().matrix();
  cache->x_hat = ((x.rowwise() - mean.row(0)).array().rowwise() * cache->inv_std.array().row(0))
                     .matrix();
  RowMatrixXf y = (cache->x_hat.array().rowwise() * gamma.array().row(0)).matrix();
  y.rowwise() += beta.row(0);
  return y;
}

void BatchNorm::Backward(const Cache& cache, const RowMatrixXf& gamma, const RowMatrixXf& dy,
                         RowMatrixXf* dx, RowMatrixXf* dgamma, RowMatrixXf* dbeta) const {
  *dbeta = dy.colwise().sum();
  *dgamma = dy.cwiseProduct(cache.x_hat).colwise().sum();
  // dx_hat = dy * gamma
  RowMatrixXf dxhat = (dy.array().rowwise() * gamma.array().row(0)).matrix();
  if (!cache.training) {
    *dx = (dxhat.array().rowwise() * cache.inv_std.array().row(0)).matrix();
    return;
  }
  const float n = static_cast<float>(dy.rows());
  RowMatrixXf sum_dxhat = dxhat.colwise().sum();
  RowMatrixXf sum_dxhat_xhat = dxhat.cwiseProduct(cache.x_hat).colwise().sum();
  RowMatrixXf t = dxhat * n;
  t.rowwise() -= sum_dxhat.row(0);
  t -= (cache.x_hat.array().rowwise() * sum_dxhat_xhat.array().row(0)).matrix();
  *dx = ((t.array().rowwise() * cache.inv_std.array().row(0)) / n).matrix();
}

}  // namespace estuary::nn
