#include "common/histogram.h"

#include <algorithm>
#include <cfloat>

namespace estuary {

const std::vector<double>& DefaultHistogramBucketLimits() {
  static const std::vector<double>* const limits = [] {
    std::vector<double> pos, neg;
    // As histogram.cc: buckets grow by 10% from 1e-12 up to 1e20.
    for (double v = 1.0e-12; v < 1.0e20; v *= 1.1) {
      pos.push_back(v);
      neg.push_back(-v);
    }
    pos.push_back(DBL_MAX);
    neg.push_back(-DBL_MAX);
    std::reverse(neg.begin(), neg.end());
    auto* all = new std::vector<double>(neg);
    all->push_back(0.0);
    all->insert(all->end(), pos.begin(), pos.end());
    return all;
  }();
  return *limits;
}

Histogram::Histogram()
    : limits_(DefaultHistogramBucketLimits()),
      buckets_(limits_.size(), 0.0),
      min_(limits_.back()),
      max_(-DBL_MAX) {}

void Histogram::Add(double value) {
  const size_t b = std::upper_bound(limits_.begin(), limits_.end(), value) - limits_.begin();
  buckets_[std::min(b, buckets_.size() - 1)] += 1;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  num_ += 1;
  sum_ += value;
  sum_squares_ += value * value;
}

tensorflow::HistogramProto Histogram::ToProto() const {
  tensorflow::HistogramProto p;
  p.set_min(min_);
  p.set_max(max_);
  p.set_num(num_);
  p.set_sum(sum_);
  p.set_sum_squares(sum_squares_);
  for (size_t i = 0; i < buckets_.size();) {
    double end = limits_[i];
    double count = buckets_[i];
    size_t j = i + 1;
    while (count <= 0 && j < buckets_.size() && buckets_[j] <= 0) {
      end = limits_[j];
      count = buckets_[j];
      ++j;
    }
    p.add_bucket_limit(end);
    p.add_bucket(count);
    i = j;
  }
  if (p.bucket_size() == 0) {
    p.add_bucket_limit(DBL_MAX);
    p.add_bucket(0.0);
  }
  return p;
}

}  // namespace estuary
