#include "common/collective/fault_injecting.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace estuary {

FaultInjectingCommunicator::FaultInjectingCommunicator(std::unique_ptr<Communicator> wrapped,
                                                       FaultInjectingOptions options)
    : wrapped_(std::move(wrapped)), options_(std::move(options)) {}

int64_t FaultInjectingCommunicator::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

absl::Status FaultInjectingCommunicator::Before(const char* operation, absl::Time deadline) {
  const std::string self = PeerName(rank());
  bool abort_wrapped = false;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (aborted_) return absl::CancelledError(absl::StrCat(self, ": the communicator was aborted"));
    if (!broken_.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the communicator broke earlier: ", broken_.message()));
    }
    const int64_t call = calls_++;
    if (call != options_.call) return absl::OkStatus();
    if (options_.mode == FaultInjectingOptions::Mode::kStall) {
      auto aborted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return aborted_; };
      mu_.AwaitWithDeadline(absl::Condition(&aborted), deadline);
      if (aborted_) {
        return absl::CancelledError(absl::StrCat(self, ": the communicator was aborted"));
      }
      status = absl::DeadlineExceededError(absl::StrCat(
          self, ": deadline exceeded in ", operation, " (injected stall of call #", call, ")"));
    } else {
      status = absl::Status(options_.failure.code(),
                            absl::StrCat(self, ": ", operation, " (injected fault in call #", call,
                                         "): ", options_.failure.message()));
      abort_wrapped = options_.abort_wrapped;
    }
    broken_ = status;
  }
  if (abort_wrapped) wrapped_->Abort();
  return status;
}

absl::Status FaultInjectingCommunicator::AllReduce(absl::Span<float> data, ReduceOp op,
                                                   absl::Time deadline) {
  absl::Status status = Before("AllReduce", deadline);
  if (!status.ok()) return status;
  return wrapped_->AllReduce(data, op, deadline);
}

absl::Status FaultInjectingCommunicator::AllReduce(absl::Span<int64_t> data, ReduceOp op,
                                                   absl::Time deadline) {
  absl::Status status = Before("AllReduce", deadline);
  if (!status.ok()) return status;
  return wrapped_->AllReduce(data, op, deadline);
}

absl::Status FaultInjectingCommunicator::Broadcast(absl::Span<char> data, int root,
                                                   absl::Time deadline) {
  absl::Status status = Before("Broadcast", deadline);
  if (!status.ok()) return status;
  return wrapped_->Broadcast(data, root, deadline);
}

absl::StatusOr<std::vector<std::string>> FaultInjectingCommunicator::AllGather(
    absl::string_view mine, absl::Time deadline) {
  absl::Status status = Before("AllGather", deadline);
  if (!status.ok()) return status;
  return wrapped_->AllGather(mine, deadline);
}

absl::Status FaultInjectingCommunicator::Barrier(absl::Time deadline) {
  absl::Status status = Before("Barrier", deadline);
  if (!status.ok()) return status;
  return wrapped_->Barrier(deadline);
}

void FaultInjectingCommunicator::Abort() {
  {
    absl::MutexLock lock(&mu_);
    aborted_ = true;
  }
  wrapped_->Abort();
}

}  // namespace estuary
