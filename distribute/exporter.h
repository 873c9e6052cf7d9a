// eval_spec.exporters: tf.estimator's LatestExporter, BestExporter and
// FinalExporter, run after each evaluation by the evaluator role
// (Evaluator, while the checkpoint is leased) and by train_and_evaluate
// (LocalEvaluationListener). Each exports into "<model_dir>/export/<name>"
// (estimator/export/export.h):
//
//   latest  every evaluated checkpoint (once per step)
//   best    a checkpoint whose `metric` beats the best so far (TF's
//           default: loss, lower is better; ties do not export). The best
//           so far (metric, value, global_step, export) is kept in
//           "<base>/best_exporter_state.json", written after the export, so
//           a restarted evaluator never exports a worse model (TF #47396:
//           TF's BestExporter forgets it on restart)
//   final   the final checkpoint, once
//
// After an export, exports beyond exports_to_keep are deleted, oldest
// first (latest and best; final keeps all).
//
// Thread-compatible: one evaluation loop drives it.
#ifndef ESTUARY_DISTRIBUTE_EXPORTER_H_
#define ESTUARY_DISTRIBUTE_EXPORTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/job_spec.h"

namespace estuary {

inline constexpr char kBestExporterStateFile[] = "best_exporter_state.json";

// Writes an export of checkpoint `prefix` under `export_dir_base`; returns
// its directory. Default: ExportModel with the parsing receiver.
using ExportFn = std::function<absl::StatusOr<std::string>(const std::string& prefix,
                                                           const std::string& export_dir_base)>;

class Exporters {
 public:
  // The job's eval_spec.exporters. `export_fn` null: ExportModel(job).
  Exporters(const JobSpec& job, ExportFn export_fn = nullptr,
            const io::Env* env = &io::Env::Default());

  bool empty() const { return configs_.empty(); }

  // Runs every exporter on the evaluation of checkpoint `prefix` (metrics
  // with "global_step"); `is_final`: the final checkpoint. Calling it again
  // for the same step is harmless (a latest exporter exports a step once,
  // a final one once in all). Errors: InvalidArgument naming the exporter
  // when its metric is not in `metrics`; the export's and the file
  // system's errors.
  absl::Status AfterEvaluation(const std::string& prefix,
                               const std::map<std::string, double>& metrics, bool is_final);

  // Exports made so far by AfterEvaluation (directories), in order.
  const std::vector<std::string>& exported() const { return exported_; }

 private:
  struct Best {
    double value = 0;
    int64_t global_step = 0;
  };
  std::string BaseFor(const ExporterConfig& c) const;
  // The persisted best of a best exporter (nullopt: none yet, or for
  // another metric).
  absl::StatusOr<std::optional<Best>> ReadBest(const ExporterConfig& c) const;
  absl::Status WriteBest(const ExporterConfig& c, const Best& best, const std::string& dir) const;
  absl::Status GarbageCollect(const ExporterConfig& c) const;

  const std::string model_dir_;
  const std::vector<ExporterConfig> configs_;
  const ExportFn export_fn_;
  const io::Env* const env_;
  std::map<std::string, int64_t> last_step_;  // by exporter name
  std::set<std::string> final_done_;  // final exporters that exported
  std::vector<std::string> exported_;
};

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_EXPORTER_H_
