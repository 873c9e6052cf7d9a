// libFuzzer harness: the job file (common/job_spec.h, which checks it
// against its schema, common/json_schema.h, and parses every section,
// common/job_config.h).
#include <cstddef>
#include <cstdint>

#include "common/job_spec.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Vocabulary files named by a job resolve against the source's directory:
  // a directory that does not exist keeps the harness off the disk.
  (void)estuary::ParseJobSpec(estuary::fuzz::AsView(data, size), "/nonexistent-fuzz/job.json");
  return 0;
}
