// Layers on Eigen for the DNN estimators, forward and backward: dense
// (tf.keras.layers.Dense), dropout (tf.keras.layers.Dropout) and batch
// normalization (tf.keras.layers.BatchNormalization on [batch, units]).
//
// Matrices are RowMatrixXf with the batch as rows. Biases and per-unit
// parameters are [1, units] matrices so that every variable has the same
// type as the optimizers' (common/optimizer.h).
//
// Threading: the GEMMs go through MatMul, which uses Eigen's (single-
// threaded, vectorised) GEMM, or, given a ComputeContext with more than one
// thread, Eigen's tensor contraction split over that context's thread pool.
// Everything else is single-threaded. Everything here is thread-safe (no
// layer holds variables or per-call state).
#ifndef ESTUARY_ESTIMATOR_NN_LAYERS_H_
#define ESTUARY_ESTIMATOR_NN_LAYERS_H_

#include <cstdint>
#include <memory>
#include <random>

#include "common/tensor.h"

namespace Eigen {
struct ThreadPoolDevice;
}  // namespace Eigen

namespace estuary::nn {

// A thread pool for GEMMs. Thread-safe; outlives every MatMul that uses it.
class ComputeContext {
 public:
  explicit ComputeContext(int num_threads);
  ~ComputeContext();
  ComputeContext(const ComputeContext&) = delete;
  ComputeContext& operator=(const ComputeContext&) = delete;
  int num_threads() const { return num_threads_; }
  const Eigen::ThreadPoolDevice* device() const;

 private:
  struct Impl;
  int num_threads_;
  std::unique_ptr<Impl> impl_;
};

// *out = op(a) * op(b), op = transpose when the flag says so. `ctx` may be
// null (single-threaded). Shapes must agree (checked with assert only).
void MatMul(const RowMatrixXf& a, bool transpose_a, const RowMatrixXf& b, bool transpose_b,
            RowMatrixXf* out, const ComputeContext* ctx = nullptr);

// The seeded random source of every layer (deterministic across platforms:
// only the raw mt19937_64 sequence is used, never std:: distributions).
using Rng = std::mt19937_64;
// Uniform in [0, 1) with 24 random bits.
float Uniform01(Rng* rng);

// glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)),
// for a [fan_in, fan_out] kernel (TF's Dense and the DNN estimators'
// kernel_initializer).
RowMatrixXf GlorotUniform(int64_t fan_in, int64_t fan_out, Rng* rng);

// y = x W + b  (x [batch, in], W [in, out], b [1, out]).
RowMatrixXf DenseForward(const RowMatrixXf& x, const RowMatrixXf& kernel, const RowMatrixXf& bias,
                         const ComputeContext* ctx = nullptr);

// Given dy = dL/dy: dW = x^T dy, db = column sums of dy, dx = dy W^T
// (dx may be null when not needed, e.g. for the first layer).
void DenseBackward(const RowMatrixXf& x, const RowMatrixXf& kernel, const RowMatrixXf& dy,
                   RowMatrixXf* dx, RowMatrixXf* dkernel, RowMatrixXf* dbias,
                   const ComputeContext* ctx = nullptr);

// Inverted dropout as in Keras: each element is kept when a uniform draw is
// >= rate and kept elements are scaled by 1 / (1 - rate). `*mask` receives
// the per-element multiplier (0 or 1/(1-rate)), which is what backward
// needs: dx = dy .* mask. rate must be in [0, 1); rate 0 is the identity.
// Only for training; at inference dropout is the identity.
RowMatrixXf DropoutForward(const RowMatrixXf& x, float rate, Rng* rng, RowMatrixXf* mask);
RowMatrixXf DropoutBackward(const RowMatrixXf& dy, const RowMatrixXf& mask);

// tf.keras.layers.BatchNormalization over the batch dimension of a
// [batch, units] input, with the estimator's momentum 0.999 and Keras'
// epsilon 1e-3. Training normalises with the batch mean and the biased
// batch variance, and the moving statistics become moving_x -= (moving_x -
// batch_x) * (1 - momentum) with those same statistics (what TF 2.15 does
// for rank-2 input, which is not fused); inference uses the moving
// statistics.
//
// Stateless: the variables (gamma, beta: [1, units], trainable, ones and
// zeros at first; moving_mean, moving_variance: [1, units], zeros and ones
// at first) are passed in, and the new moving statistics are returned, so
// one BatchNorm serves any number of threads.
struct BatchNorm {
  float momentum = 0.999f;
  float epsilon = 1e-3f;

  // What Backward needs from Forward (and, in training, the new moving
  // statistics).
  struct Cache {
    bool training = false;
    RowMatrixXf x_hat;    // normalised input
    RowMatrixXf inv_std;  // [1, units] 1 / sqrt(var + epsilon)
    // Training only: moving_x after this batch.
    RowMatrixXf new_moving_mean, new_moving_variance;
  };
  RowMatrixXf Forward(const RowMatrixXf& x, const RowMatrixXf& gamma, const RowMatrixXf& beta,
                      const RowMatrixXf& moving_mean, const RowMatrixXf& moving_variance,
                      bool training, Cache* cache) const;
  // dx, dgamma, dbeta for the Forward that filled `cache`.
  void Backward(const Cache& cache, const RowMatrixXf& gamma, const RowMatrixXf& dy,
                RowMatrixXf* dx, RowMatrixXf* dgamma, RowMatrixXf* dbeta) const;
};

}  // namespace estuary::nn

#endif  // ESTUARY_ESTIMATOR_NN_LAYERS_H_
