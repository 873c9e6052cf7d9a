// Zipf-distributed integers in [1, n]: P(k) ∝ 1 / k^s, sampled in O(1)
// expected time without tables (rejection-inversion, W. Hörmann and
// G. Derflinger, "Rejection-inversion to generate variates from monotone
// discrete distributions", 1996). Written here because neither the C++
// standard library nor Abseil provides a Zipf distribution. s > 0, s != 1
// or s == 1 both supported. Thread-compatible.
#ifndef ESTUARY_ESTIMATOR_SYNTHETIC_ZIPF_H_
#define ESTUARY_ESTIMATOR_SYNTHETIC_ZIPF_H_

#include <cmath>
#include <cstdint>
#include <random>

namespace estuary {

class ZipfDistribution {
 public:
  ZipfDistribution(int64_t n, double s);

  template <typename Rng>
  int64_t operator()(Rng& rng) {
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    while (true) {
      const double u = h_n_ + uniform(rng) * (h_x1_ - h_n_);
      const double x = HInverse(u);
      int64_t k = static_cast<int64_t>(x + 0.5);
      if (k < 1) k = 1;
      if (k > n_) k = n_;
      if (k - x <= threshold_ || u >= H(static_cast<double>(k) + 0.5) - std::pow(k, -s_)) {
        return k;
      }
    }
  }

  int64_t n() const { return n_; }

 private:
  double H(double x) const;         // integral of x^-s (up to a constant)
  double HInverse(double x) const;

  int64_t n_;
  double s_;
  double h_x1_;
  double h_n_;
  double threshold_;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_SYNTHETIC_ZIPF_H_
