#include "common/metrics.h"

#include <unistd.h>

#include <exception>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace estuary {

// Resident memory, threads, CPU time and open files of this process, read
// from /proc/self when scraped (nothing runs between scrapes).
class TaskMetrics::ProcessCollector : public prometheus::Collectable {
 public:
  explicit ProcessCollector(const prometheus::Labels& labels) {
    for (const auto& [name, value] : labels) labels_.push_back({name, value});
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    double rss_kb = -1, threads = -1;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
      absl::string_view rest = line;
      double* target = nullptr;
      if (absl::ConsumePrefix(&rest, "VmRSS:")) {
        target = &rss_kb;
      } else if (absl::ConsumePrefix(&rest, "Threads:")) {
        target = &threads;
      } else {
        continue;
      }
      rest = absl::StripAsciiWhitespace(absl::StripSuffix(absl::StripAsciiWhitespace(rest), "kB"));
      if (!absl::SimpleAtod(rest, target)) *target = -1;
    }
    if (rss_kb >= 0) {
      out.push_back(Gauge("estuary_process_resident_memory_bytes",
                          "Resident memory of the task's process (VmRSS).", rss_kb * 1024));
    }
    if (threads >= 0) {
      out.push_back(Gauge("estuary_process_threads", "Threads of the task's process.", threads));
    }
    // /proc/self/stat: utime and stime are fields 14 and 15 (clock ticks),
    // counted after the parenthesised command name.
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(')');
    if (paren != std::string::npos) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(absl::string_view(stat).substr(paren + 1), ' ', absl::SkipEmpty());
      // fields[0] is field 3 (state); utime is field 14 -> fields[11].
      double utime = 0, stime = 0;
      const long ticks = sysconf(_SC_CLK_TCK);
      if (fields.size() > 12 && ticks > 0 && absl::SimpleAtod(fields[11], &utime) &&
          absl::SimpleAtod(fields[12], &stime)) {
        prometheus::MetricFamily cpu;
        cpu.name = "estuary_process_cpu_seconds_total";
        cpu.help = "User and system CPU time of the task's process.";
        cpu.type = prometheus::MetricType::Counter;
        prometheus::ClientMetric m;
        m.label = labels_;
        m.counter.value = (utime + stime) / static_cast<double>(ticks);
        cpu.metric.push_back(std::move(m));
        out.push_back(std::move(cpu));
      }
    }
    return out;
  }

 private:
  prometheus::MetricFamily Gauge(std::string name, std::string help, double value) const {
    prometheus::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric m;
    m.label = labels_;
    m.gauge.value = value;
    f.metric.push_back(std::move(m));
    return f;
  }

  std::vector<prometheus::ClientMetric::Label> labels_;
};

TaskMetrics::TaskMetrics(MetricsOptions options)
    : options_(std::move(options)),
      labels_({{"job", options_.job}, {"task", options_.task}}),
      registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessCollector>(labels_)) {}

TaskMetrics::~TaskMetrics() = default;

absl::StatusOr<std::unique_ptr<TaskMetrics>> TaskMetrics::Create(MetricsOptions options) {
  if (options.port < kMetricsOff || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_port is ", options.port, "; it must be 0 (a free port), 1-65535, or -1 (off)"));
  }
  std::unique_ptr<TaskMetrics> m(new TaskMetrics(std::move(options)));
  if (m->options_.port == kMetricsOff) return m;
  const std::string address = absl::StrCat(m->options_.host, ":", m->options_.port);
  try {
    // One serving thread: a scrape is a few KB, and the task's own threads
    // matter more.
    m->exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  const std::vector<int> ports = m->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address));
  }
  m->port_ = ports[0];
  m->exposer_->RegisterCollectable(m->registry_);
  m->exposer_->RegisterCollectable(m->process_);
  spdlog::info("metrics at http://{}:{}/metrics (job=\"{}\", task=\"{}\")", m->options_.host,
               m->port_, m->options_.job, m->options_.task);
  return m;
}

prometheus::Labels TaskMetrics::LabelsWith(const prometheus::Labels& extra) const {
  prometheus::Labels out = labels_;
  for (const auto& [name, value] : extra) out[name] = value;
  return out;
}

std::string TaskMetrics::Scrape() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : process_->Collect()) families.push_back(std::move(f));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double>* const buckets = new std::vector<double>{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  return *buckets;
}

const std::vector<double>& SizeBuckets() {
  static const std::vector<double>* const buckets = [] {
    auto* b = new std::vector<double>;
    for (double v = 1; v <= 65536; v *= 2) b->push_back(v);
    return b;
  }();
  return *buckets;
}

}  // namespace estuary
