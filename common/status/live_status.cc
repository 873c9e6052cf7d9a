#include "common/status/live_status.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/coordination/types.h"
#include "google/protobuf/util/json_util.h"

namespace estuary {
namespace {

double Secs(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// Drops every second point, keeping the newest.
void Halve(std::deque<coordination::StatusPoint>* series) {
  std::deque<coordination::StatusPoint> kept;
  const size_t n = series->size();
  for (size_t i = 0; i < n; ++i) {
    if ((n - 1 - i) % 2 == 0) kept.push_back(std::move((*series)[i]));
  }
  *series = std::move(kept);
}

}  // namespace

LiveStatus::LiveStatus(LiveStatusOptions options) : options_(std::move(options)) {}

void LiveStatus::Record(const TaskId& task, uint64_t incarnation,
                        const coordination::TaskReport& report, absl::Time now) {
  absl::MutexLock l(&mu_);
  TaskEntry& e = tasks_[task];
  e.incarnation = incarnation;
  e.report = report;
  e.last_report = now;
  if (report.local_steps() <= 0 || now - e.last_point < options_.min_point_interval) return;
  coordination::StatusPoint p;
  p.set_time_secs(Secs(now - options_.start));
  p.set_global_step(report.global_step());
  p.set_steps_per_sec(report.steps_per_sec());
  p.set_loss(report.loss());
  p.set_has_loss(report.has_loss());
  if (static_cast<int>(e.series.size()) >= std::max(2, options_.max_points)) Halve(&e.series);
  e.series.push_back(std::move(p));
  e.last_point = now;
}

void LiveStatus::SetStatusUrl(const std::string& url) {
  absl::MutexLock l(&mu_);
  status_url_ = url;
}

coordination::ClusterStatus LiveStatus::Build(const coordination::ClusterState& state,
                                              absl::Time now) const {
  coordination::ClusterStatus out;
  out.set_uptime_secs(Secs(now - options_.start));
  out.set_shutdown_requested(state.shutdown_requested());
  out.set_shutdown_reason(state.shutdown_reason());
  out.set_job_failed(state.job_failed());
  out.set_coordinator(options_.coordinator);
  absl::MutexLock l(&mu_);
  out.set_status_url(status_url_);
  for (const coordination::TaskInfo& info : state.tasks()) {
    coordination::TaskLiveStatus* t = out.add_tasks();
    *t->mutable_task() = info.task();
    t->set_state(info.state());
    if (info.incarnation() != 0) t->set_incarnation(absl::StrCat(absl::Hex(info.incarnation())));
    t->set_address(info.address());
    t->set_restarts(info.restarts());
    t->set_reason(info.reason());
    t->set_last_report_age_secs(-1);
    auto it = tasks_.find(FromProto(info.task()));
    if (it == tasks_.end()) continue;
    const TaskEntry& e = it->second;
    for (const coordination::StatusPoint& p : e.series) *t->add_series() = p;
    // A report of an earlier incarnation says nothing of the current one.
    if (e.incarnation != info.incarnation()) continue;
    *t->mutable_report() = e.report;
    t->set_last_report_age_secs(Secs(now - e.last_report));
    out.set_global_step(std::max(out.global_step(), e.report.global_step()));
    if (info.state() == coordination::TASK_ALIVE) {
      out.set_steps_per_sec(out.steps_per_sec() + e.report.steps_per_sec());
      out.set_examples_per_sec(out.examples_per_sec() + e.report.examples_per_sec());
    }
  }
  return out;
}

std::string StatusToJson(const coordination::ClusterStatus& status) {
  google::protobuf::util::JsonPrintOptions o;
  o.always_print_primitive_fields = true;
  o.preserve_proto_field_names = true;
  std::string out;
  // Cannot fail for a message of a linked-in type.
  (void)google::protobuf::util::MessageToJsonString(status, &out, o);
  return out;
}

absl::StatusOr<coordination::ClusterStatus> StatusFromJson(const std::string& json) {
  coordination::ClusterStatus out;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  const auto st = google::protobuf::util::JsonStringToMessage(json, &out, o);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a status JSON: ", std::string(st.message())));
  }
  return out;
}

namespace {

std::string Compact(double v) {
  if (v == 0) return "0";
  if (std::abs(v) >= 1e6 || std::abs(v) < 1e-3) return absl::StrFormat("%.3g", v);
  if (std::abs(v) >= 100) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.4g", v);
}

std::string Bytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(b, " B") : absl::StrFormat("%.1f %s", v, units[u]);
}

std::string Ms(double secs) { return Compact(secs * 1e3); }

}  // namespace

std::string FormatStatusTable(const coordination::ClusterStatus& s) {
  std::string out = absl::StrFormat(
      "cluster: global_step %d, %s steps/s, %s examples/s, up %.0f s%s\n",
      s.global_step(), Compact(s.steps_per_sec()), Compact(s.examples_per_sec()),
      s.uptime_secs(),
      s.shutdown_requested()
          ? absl::StrCat(", shutting down", s.job_failed() ? " (failed)" : "", ": ",
                         s.shutdown_reason())
          : "");
  if (!s.status_url().empty()) absl::StrAppend(&out, "status page: ", s.status_url(), "\n");
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"TASK", "STATE", "INCARNATION", "RESTARTS", "STEP", "STEPS/S", "EX/S", "LOSS",
                  "IN/COMP/COMM/APPLY ms", "PS SHARD", "CHECKPOINT", "EVAL", "SEEN"});
  for (const coordination::TaskLiveStatus& t : s.tasks()) {
    const coordination::TaskReport& r = t.report();
    const bool trains = r.local_steps() > 0;
    std::string phases = "-";
    if (r.has_phases()) {
      const coordination::StepPhases& p = r.phases();
      phases = absl::StrCat(Ms(p.input_wait_secs()), "/", Ms(p.compute_secs()), "/",
                            Ms(p.communication_secs()), "/", Ms(p.apply_secs()));
    }
    std::string ps = "-";
    if (r.has_ps_shard()) {
      ps = absl::StrCat(r.ps_shard().variables(), " vars, ", r.ps_shard().rows(), " rows, ",
                        Bytes(r.ps_shard().bytes()));
    }
    std::string eval = "-";
    if (r.last_eval_step() > 0) {
      eval = absl::StrCat("@", r.last_eval_step());
      std::vector<std::string> keys;
      for (const auto& [k, v] : r.last_eval_metrics()) keys.push_back(k);
      std::sort(keys.begin(), keys.end());
      // The headline metrics when the head has them (the page shows all).
      std::vector<std::string> headline;
      for (const char* k : {"loss", "accuracy", "auc", "average_loss"}) {
        if (r.last_eval_metrics().contains(k)) headline.push_back(k);
      }
      if (!headline.empty()) keys = headline;
      for (const std::string& k : keys) {
        if (k == "global_step") continue;
        absl::StrAppend(&eval, " ", k, "=", Compact(r.last_eval_metrics().at(k)));
      }
    }
    std::string state = TaskStateName(t.state());
    if (t.state() == coordination::TASK_ALIVE && !r.phase().empty()) {
      absl::StrAppend(&state, " (", r.phase(), ")");
    }
    rows.push_back({
        FromProto(t.task()).ToString(),
        state,
        t.incarnation().empty() ? "-" : t.incarnation(),
        absl::StrCat(t.restarts()),
        trains || r.global_step() > 0 ? absl::StrCat(r.global_step()) : "-",
        trains ? Compact(r.steps_per_sec()) : "-",
        trains ? Compact(r.examples_per_sec()) : "-",
        r.has_loss() ? Compact(r.loss()) : "-",
        phases,
        ps,
        r.last_checkpoint_step() > 0 ? absl::StrCat("@", r.last_checkpoint_step()) : "-",
        eval,
        t.last_report_age_secs() < 0 ? "never"
                                     : absl::StrFormat("%.1fs ago", t.last_report_age_secs()),
    });
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  for (const coordination::TaskLiveStatus& t : s.tasks()) {
    if (!t.reason().empty()) {
      absl::StrAppend(&out, FromProto(t.task()).ToString(), ": ", t.reason(), "\n");
    }
  }
  return out;
}

}  // namespace estuary
