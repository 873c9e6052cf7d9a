// TensorFlow's summary histograms (tensorflow/core/lib/histogram/histogram.cc,
// what tf.compat.v1.summary.histogram and the Estimator write): counts in
// the default exponential buckets, encoded as a tensorflow.HistogramProto.
//
// Histogram is thread-compatible; the free functions are thread-safe.
#ifndef ESTUARY_COMMON_HISTOGRAM_H_
#define ESTUARY_COMMON_HISTOGRAM_H_

#include <vector>

#include "absl/types/span.h"
#include "proto/summary.pb.h"

namespace estuary {

// TF's default bucket limits: -DBL_MAX, the negatives of the positive limits
// (descending), 0, then 1e-12 growing by 1.1x while < 1e20, then DBL_MAX
// (1551 limits). Bucket i counts values in [limit(i-1), limit(i)).
const std::vector<double>& DefaultHistogramBucketLimits();

class Histogram {
 public:
  Histogram();
  // Adds a value (finite values only; callers reject NaN/Inf, as TF does).
  void Add(double value);
  // As TF's Histogram::EncodeToProto(proto, preserve_zero_buckets=false):
  // runs of empty buckets are merged into the next limit; an empty histogram
  // gets one bucket (DBL_MAX, 0); min/max are DBL_MAX/-DBL_MAX when empty.
  tensorflow::HistogramProto ToProto() const;

 private:
  const std::vector<double>& limits_;
  std::vector<double> buckets_;
  double min_, max_, num_ = 0, sum_ = 0, sum_squares_ = 0;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_HISTOGRAM_H_
