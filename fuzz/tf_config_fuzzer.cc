// libFuzzer harness: TF_CONFIG (common/cluster.h), the JSON every task
// reads from its environment. Also the "type:index" task names and the
// address check, and a parsed config's accessors and round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/statusor.h"
#include "common/cluster.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input = estuary::fuzz::AsView(data, size);
  (void)estuary::ParseTaskId(input);
  (void)estuary::ValidateAddress(input, "fuzz");
  absl::StatusOr<estuary::TfConfig> config = estuary::ParseTfConfig(input);
  if (!config.ok()) return 0;
  (void)config->Coordinator();
  (void)config->IsCoordinator();
  (void)config->OwnAddress();
  for (const estuary::TaskId& t : config->cluster.AllTasks()) {
    if (!config->cluster.Address(t).ok()) std::abort();  // listed tasks have addresses
  }
  // What a launcher hands the next process (ToJson of a config with a
  // task; without one, ToJson's empty task type is not a TF_CONFIG) must
  // parse again, to the same config.
  if (config->task.type.empty()) return 0;
  absl::StatusOr<estuary::TfConfig> again = estuary::ParseTfConfig(config->ToJson());
  if (!again.ok() || again->ToJson() != config->ToJson()) std::abort();
  return 0;
}
