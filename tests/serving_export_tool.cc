// Exports a job's model (ExportModel, parsing receiver, default base) and
// prints the new directory: serving_test.py's stand-in for `estuary export`
// where that verb is not built in.
#include <cstdio>

#include "common/job_spec.h"
#include "estimator/export/export.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: serving_export_tool JOB.json\n");
    return 2;
  }
  absl::StatusOr<estuary::JobSpec> job = estuary::LoadJobSpec(argv[1]);
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", std::string(job.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::string> dir = estuary::ExportModel(*job, estuary::ExportOptions());
  if (!dir.ok()) {
    std::fprintf(stderr, "%s\n", std::string(dir.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n", dir->c_str());
  return 0;
}
