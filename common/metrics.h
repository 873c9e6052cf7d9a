// Prometheus metrics of one task (Debian's prometheus-cpp): a registry the
// task's parts register their metrics in, the labels every metric of the
// task carries (job = the TF_CONFIG task type, task = its index, as in
// TensorFlow's /job:worker/task:0), process metrics read from /proc/self at
// scrape time, and, optionally, an HTTP endpoint serving
// /metrics in Prometheus' text format (prometheus::Exposer).
//
// Names follow Prometheus' conventions: the estuary_ prefix, base units in
// the name (_seconds, _bytes) and _total on counters. No globals: each task
// owns one TaskMetrics and hands it (or its registry) to what it builds.
// Thread-safe: prometheus-cpp's metrics and registry are.
#ifndef ESTUARY_COMMON_METRICS_H_
#define ESTUARY_COMMON_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace estuary {

// --metrics_port's value when metrics are not served (the default).
inline constexpr int kMetricsOff = -1;

struct MetricsOptions {
  std::string job;   // the "job" label: "worker", "ps", "chief", "serving", "local"
  std::string task;  // the "task" label: "0"
  // Serve /metrics on this port (0: a free one, logged); kMetricsOff: no
  // endpoint (the registry still collects; Scrape() reads it).
  int port = kMetricsOff;
  // The address to bind. Default: every interface (Prometheus scrapes from
  // elsewhere); tests bind 127.0.0.1.
  std::string host = "0.0.0.0";
};

class TaskMetrics {
 public:
  // Creates the registry and, with options.port >= 0, starts serving
  // http://host:port/metrics and logs "metrics at http://...:PORT/metrics".
  // Errors: InvalidArgument for a port outside [-1, 65535]; Unavailable
  // when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<TaskMetrics>> Create(MetricsOptions options);
  ~TaskMetrics();
  TaskMetrics(const TaskMetrics&) = delete;
  TaskMetrics& operator=(const TaskMetrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  // {job, task}; pass to Family::Add (with any more labels added).
  const prometheus::Labels& labels() const { return labels_; }
  // `labels()` plus `extra`.
  prometheus::Labels LabelsWith(const prometheus::Labels& extra) const;
  // The port /metrics is served on; 0 when not served.
  int port() const { return port_; }

  // Everything a scrape of /metrics returns (the registry and the process
  // metrics), in Prometheus' text format.
  std::string Scrape() const;

 private:
  explicit TaskMetrics(MetricsOptions options);

  class ProcessCollector;

  const MetricsOptions options_;
  const prometheus::Labels labels_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessCollector> process_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // after what it serves
  int port_ = 0;
};

// Histogram buckets for durations from 100 us to 60 s (1-2.5-5 steps).
const std::vector<double>& LatencyBuckets();
// Powers of two from 1 to 65536 (batch sizes, rows).
const std::vector<double>& SizeBuckets();

}  // namespace estuary

#endif  // ESTUARY_COMMON_METRICS_H_
