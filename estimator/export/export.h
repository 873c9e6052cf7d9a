// Export for serving (tf.estimator's export_saved_model, in Estuary's own
// documented format; docs/ARCHITECTURE.md "Export format") and the loading
// API the model server (serving/) and users run exports with.
//
// An export is a directory "<export_dir_base>/<timestamp>" (seconds since
// the epoch, as TF names them) holding the model's variables from one
// checkpoint, the job's model and feature-column spec (vocabulary files
// copied in as assets), the signatures as TF's heads define them
// (serving_default, predict, classification, regression with TF's input and
// output keys) and assets_extra. It is written under a temporary name and
// renamed into place, so a half-written export is never visible to a
// loader or a server watching the base.
#ifndef ESTUARY_ESTIMATOR_EXPORT_EXPORT_H_
#define ESTUARY_ESTIMATOR_EXPORT_EXPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/job_spec.h"
#include "common/tensor.h"
#include "estimator/export/export_format.h"

namespace estuary {

// ExportOptions, TensorSpec and SignatureSpec are declared in
// export_format.h (the Estimator shares them).

// Writes an export of the job's model; returns the new directory.
// Errors: FailedPrecondition (no checkpoint), InvalidArgument (bad options,
// a receiver the columns cannot feed), the checkpoint's and the file
// system's errors.
absl::StatusOr<std::string> ExportModel(const JobSpec& job, const ExportOptions& options);

// A loaded export. Thread-safe: Run may be called concurrently.
class LoadedExport {
 public:
  virtual ~LoadedExport() = default;

  // Loads `export_dir` (one timestamped directory). Errors: NotFound,
  // DataLoss (corrupt or partial files, naming the file), InvalidArgument
  // (a spec this build cannot run).
  static absl::StatusOr<std::unique_ptr<LoadedExport>> Load(const std::string& export_dir,
                                                            io::Env* env = nullptr);

  virtual int64_t version() const = 0;  // the directory's timestamp
  virtual const std::vector<SignatureSpec>& signatures() const = 0;

  // Runs signature `key` on a batch (every input the signature lists, the
  // same batch size) and returns every output the signature lists.
  // Errors: NotFound (no such signature), InvalidArgument (a missing or
  // extra input, wrong dtype or shape, unparsable serialized Examples;
  // naming the input).
  virtual absl::StatusOr<std::map<std::string, Tensor>> Run(
      const std::string& key, const std::map<std::string, Tensor>& inputs) const = 0;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_EXPORT_EXPORT_H_
