// Which collective a multi_worker_mirrored trainer uses across processes
// (distribution.communication): the TCP ring (common/collective/ring) or
// NCCL (common/nccl). Decided once at start-up, so that a job asking for
// NCCL where it cannot run fails there with one line, never mid-training.
//
// Functions, not a class; thread-safe (as the Store is).
#ifndef ESTUARY_DISTRIBUTE_COMMUNICATION_CHOICE_H_
#define ESTUARY_DISTRIBUTE_COMMUNICATION_CHOICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/coordination/store.h"

namespace estuary {

struct CommunicationChoice {
  bool nccl = false;  // else the TCP ring
  int gpus = 0;       // NCCL: the CUDA devices this process sees (>= 1)
  // One line for the log: what was chosen and why ("all-reduce over NCCL:
  // distribution.communication 'auto', CUDA build with 2 GPU(s) visible").
  std::string why;
};

// Resolves `communication` ("ring" | "nccl" | "auto", as
// DistributionConfig holds it) against `nccl_devices`, what
// NcclVisibleDevices() answers here (the caller passes it so that tests
// can pretend any build and machine):
//   ring: the ring (nccl_devices is not looked at);
//   auto: NCCL when nccl_devices is a count, else the ring, saying why;
//   nccl: NCCL, or nccl_devices' error (Unimplemented: no CUDA in this
//         build; FailedPrecondition: no usable GPU) with one line naming
//         distribution.communication and the reason.
// Errors: those above; InvalidArgument for any other value.
absl::StatusOr<CommunicationChoice> ChooseCommunication(const std::string& communication,
                                                        const absl::StatusOr<int>& nccl_devices);

// Makes every rank use the chief's choice (under `auto` machines may
// differ: a chief with a GPU, a worker without). The chief publishes its
// choice in the Store (kCollectiveCommunicationKey: "nccl" | "ring") and
// returns it; another rank waits for it until `deadline` and returns: its
// own choice when they agree; the ring when the chief chose the ring (it
// runs everywhere; `why` says so); FailedPrecondition naming
// distribution.communication, the chief's choice and this task's reason
// when the chief chose NCCL and this task can not run it. Errors: also
// those of the Store (DeadlineExceeded: the chief published nothing).
absl::StatusOr<CommunicationChoice> AgreeOnCommunication(Store& store, bool chief,
                                                         const CommunicationChoice& mine,
                                                         absl::Time deadline);

}  // namespace estuary

#endif  // ESTUARY_DISTRIBUTE_COMMUNICATION_CHOICE_H_
