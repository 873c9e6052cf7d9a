#include "estimator/synthetic/zipf.h"

namespace estuary {
namespace {

// log(1+x)/x and (exp(x)-1)/x, accurate near 0.
double Helper1(double x) { return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1 - x / 2; }
double Helper2(double x) { return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1 + x / 2; }

}  // namespace

ZipfDistribution::ZipfDistribution(int64_t n, double s) : n_(n < 1 ? 1 : n), s_(s) {
  h_x1_ = H(1.5) - 1.0;
  h_n_ = H(static_cast<double>(n_) + 0.5);
  threshold_ = 2.0 - HInverse(H(2.5) - std::pow(2.0, -s_));
}

// H(x) = (x^(1-s) - 1) / (1 - s), continuous at s = 1 (log x).
double ZipfDistribution::H(double x) const {
  const double log_x = std::log(x);
  return Helper2((1.0 - s_) * log_x) * log_x;
}

double ZipfDistribution::HInverse(double x) const {
  double t = x * (1.0 - s_);
  if (t < -1.0) t = -1.0;  // numerical guard
  return std::exp(Helper1(t) * x);
}

}  // namespace estuary
