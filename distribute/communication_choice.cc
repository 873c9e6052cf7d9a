#include "distribute/communication_choice.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "distribute/keys.h"

namespace estuary {

absl::StatusOr<CommunicationChoice> ChooseCommunication(const std::string& communication,
                                                        const absl::StatusOr<int>& nccl_devices) {
  CommunicationChoice c;
  if (communication == "ring") {
    c.why = "all-reduce over the TCP ring: distribution.communication 'ring'";
    return c;
  }
  if (communication != "auto" && communication != "nccl") {
    return absl::InvalidArgumentError(absl::StrCat(
        "distribution.communication: '", communication, "' is not one of ring, nccl, auto"));
  }
  if (nccl_devices.ok()) {
    c.nccl = true;
    c.gpus = *nccl_devices;
    c.why = absl::StrCat("all-reduce over NCCL: distribution.communication '", communication,
                         "', CUDA build with ", c.gpus, " GPU(s) visible");
    return c;
  }
  const std::string reason(nccl_devices.status().message());
  if (communication == "nccl") {
    return absl::Status(
        nccl_devices.status().code(),
        absl::StrCat("distribution.communication 'nccl' can not run here: ", reason,
                     " (use 'ring', or 'auto' to take NCCL only where it can run)"));
  }
  c.why = absl::StrCat("all-reduce over the TCP ring: distribution.communication 'auto' and ",
                       reason);
  return c;
}

absl::StatusOr<CommunicationChoice> AgreeOnCommunication(Store& store, bool chief,
                                                         const CommunicationChoice& mine,
                                                         absl::Time deadline) {
  const std::string own = mine.nccl ? "nccl" : "ring";
  if (chief) {
    RETURN_IF_ERROR(store.Set(kCollectiveCommunicationKey, own, deadline));
    return mine;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> values,
                   store.Wait({kCollectiveCommunicationKey}, deadline));
  if (values[0] == own) return mine;
  if (values[0] == "ring") {
    CommunicationChoice ring;
    ring.why = absl::StrCat("all-reduce over the TCP ring: the chief chose it (this task alone "
                            "would have taken NCCL: ",
                            mine.why, ")");
    return ring;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "distribution.communication: the chief chose NCCL, but this task can not run it (", mine.why,
      "); give every training task a GPU, or set 'ring'"));
}

}  // namespace estuary
