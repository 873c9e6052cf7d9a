#include "distribute/exporter.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "estimator/export/export.h"
#include "nlohmann/json.hpp"

namespace estuary {

using json = nlohmann::json;

Exporters::Exporters(const JobSpec& job, ExportFn export_fn, const io::Env* env)
    : model_dir_(job.model_dir),
      configs_(job.eval_spec.exporters),
      export_fn_(export_fn != nullptr
                     ? std::move(export_fn)
                     : ExportFn([job](const std::string& prefix, const std::string& base) {
                         ExportOptions options;
                         options.export_dir_base = base;
                         options.checkpoint_path = prefix;
                         return ExportModel(job, options);
                       })),
      env_(env) {}

std::string Exporters::BaseFor(const ExporterConfig& c) const {
  return io::JoinPath(io::JoinPath(model_dir_, "export"), c.name);
}

absl::StatusOr<std::optional<Exporters::Best>> Exporters::ReadBest(const ExporterConfig& c) const {
  const std::string path = io::JoinPath(BaseFor(c), kBestExporterStateFile);
  if (!env_->FileExists(path)) return std::optional<Best>();
  ASSIGN_OR_RETURN(std::string text, io::ReadWholeFile(*env_, path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("value") || !j["value"].is_number() ||
      !j.contains("metric") || !j["metric"].is_string()) {
    return absl::DataLossError(absl::StrCat(path, ": not a best exporter state"));
  }
  if (j["metric"].get<std::string>() != c.metric ||
      j.value("higher_is_better", false) != c.higher_is_better) {
    spdlog::warn("exporter {}: {} is for metric {}; comparing {} afresh", c.name, path,
                 j["metric"].get<std::string>(), c.metric);
    return std::optional<Best>();
  }
  Best best;
  best.value = j["value"].get<double>();
  best.global_step = j.value("global_step", int64_t{0});
  return std::optional<Best>(best);
}

absl::Status Exporters::WriteBest(const ExporterConfig& c, const Best& best,
                                  const std::string& dir) const {
  json j = {{"metric", c.metric},
            {"higher_is_better", c.higher_is_better},
            {"value", best.value},
            {"global_step", best.global_step},
            {"export", dir}};
  return io::WriteFileDurably(*env_, io::JoinPath(BaseFor(c), kBestExporterStateFile),
                              j.dump(2) + "\n");
}

absl::Status Exporters::GarbageCollect(const ExporterConfig& c) const {
  const std::string base = BaseFor(c);
  ASSIGN_OR_RETURN(std::vector<int64_t> versions, export_format::ListVersions(*env_, base));
  for (size_t i = 0; i + c.exports_to_keep < versions.size(); ++i) {
    const std::string dir = io::JoinPath(base, absl::StrCat(versions[i]));
    spdlog::info("exporter {}: deleting old export {} (exports_to_keep {})", c.name, dir,
                 c.exports_to_keep);
    RETURN_IF_ERROR(export_format::RemoveTree(*env_, dir));
  }
  return absl::OkStatus();
}

absl::Status Exporters::AfterEvaluation(const std::string& prefix,
                                        const std::map<std::string, double>& metrics,
                                        bool is_final) {
  auto gs = metrics.find("global_step");
  const int64_t step = gs == metrics.end() ? -1 : static_cast<int64_t>(gs->second);
  for (const ExporterConfig& c : configs_) {
    const std::string base = BaseFor(c);
    std::optional<Best> better;
    if (c.type == "latest") {
      if (auto it = last_step_.find(c.name); it != last_step_.end() && it->second == step) {
        continue;
      }
    } else if (c.type == "final") {
      if (!is_final || final_done_.count(c.name) > 0) continue;
    } else {  // best
      auto m = metrics.find(c.metric);
      if (m == metrics.end()) {
        std::string have;
        for (const auto& [k, v] : metrics) absl::StrAppend(&have, have.empty() ? "" : ", ", k);
        return c.where.Key("metric").Error(absl::StrCat("'", c.metric,
                                                        "' is not an evaluation metric (have: ",
                                                        have, ")"));
      }
      ASSIGN_OR_RETURN(std::optional<Best> best, ReadBest(c));
      const double v = m->second;
      const bool beats = !best.has_value() || (c.higher_is_better ? v > best->value
                                                                  : v < best->value);
      if (std::isnan(v) || !beats) {
        if (best.has_value()) {
          spdlog::info("exporter {}: {} = {} at global_step {} does not beat {} (global_step {})",
                       c.name, c.metric, v, step, best->value, best->global_step);
        }
        continue;
      }
      better = Best{v, step};
    }
    ASSIGN_OR_RETURN(std::string dir, export_fn_(prefix, base));
    spdlog::info("exporter {} ({}): exported global_step {} to {}", c.name, c.type, step, dir);
    exported_.push_back(dir);
    if (better.has_value()) RETURN_IF_ERROR(WriteBest(c, *better, dir));
    if (c.type == "latest") last_step_[c.name] = step;
    if (c.type == "final") {
      final_done_.insert(c.name);
    } else {
      RETURN_IF_ERROR(GarbageCollect(c));
    }
  }
  return absl::OkStatus();
}

}  // namespace estuary
