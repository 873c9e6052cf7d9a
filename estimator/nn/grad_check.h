// Test helpers: finite-difference gradient checks. Test-only.
#ifndef ESTUARY_ESTIMATOR_NN_GRAD_CHECK_H_
#define ESTUARY_ESTIMATOR_NN_GRAD_CHECK_H_

#include <algorithm>
#include <cmath>

#include "common/tensor.h"

namespace estuary::nn::testing {

// sum(y .* r) in double: a scalar loss whose dL/dy is r.
inline double Dot(const RowMatrixXf& y, const RowMatrixXf& r) {
  return (y.cast<double>().array() * r.cast<double>().array()).sum();
}

// dL/d(*param) by central differences; loss() must read *param.
template <class F>
RowMatrixXf NumericGradient(RowMatrixXf* param, F loss, float eps = 1e-2f) {
  RowMatrixXf g(param->rows(), param->cols());
  for (int64_t i = 0; i < param->size(); ++i) {
    const float keep = param->data()[i];
    param->data()[i] = keep + eps;
    const double up = loss();
    param->data()[i] = keep - eps;
    const double down = loss();
    param->data()[i] = keep;
    g.data()[i] = static_cast<float>((up - down) / (2.0 * eps));
  }
  return g;
}

// max |a - n| / max(1, |n|) over elements.
inline double MaxRelError(const RowMatrixXf& analytic, const RowMatrixXf& numeric) {
  double worst = 0;
  for (int64_t i = 0; i < numeric.size(); ++i) {
    const double n = numeric.data()[i];
    worst = std::max(worst, std::abs(analytic.data()[i] - n) / std::max(1.0, std::abs(n)));
  }
  return worst;
}

}  // namespace estuary::nn::testing

#endif  // ESTUARY_ESTIMATOR_NN_GRAD_CHECK_H_
