// CreateNcclCommunicator of a build without --config=cuda.
#include "common/nccl/nccl_communicator.h"

namespace estuary {

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const NcclOptions& options) {
  return absl::UnimplementedError(
      "NCCL collectives need a GPU build: rebuild with --config=cuda (scripts/setup.sh --cuda)");
}

absl::StatusOr<int> NcclVisibleDevices() {
  return absl::UnimplementedError(
      "this build has no CUDA (built without --config=cuda; scripts/setup.sh --cuda)");
}

}  // namespace estuary
