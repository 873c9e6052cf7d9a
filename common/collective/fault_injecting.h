// A Communicator that wraps another and breaks one chosen call, for tests
// of what builds on collectives (leveldb's fault-injecting Env, for
// communicators): call #k (counting every operation of this rank from 0)
// either fails at once with a chosen status, as if a peer had died, or
// stalls until its deadline without reaching the wrapped communicator, so
// that this rank's peers see a stalled rank (DeadlineExceeded naming it).
// Every other call goes to the wrapped communicator unchanged.
//
// After the injected fault the communicator is broken as communicator.h
// says: later calls fail with FailedPrecondition repeating the fault's
// message (Cancelled after Abort()).
//
// Thread-safety: as communicator.h; Abort() from any thread (it also ends
// a stall, and aborts the wrapped communicator). Owns the wrapped
// communicator. Starts no threads.
#ifndef ESTUARY_COMMON_COLLECTIVE_FAULT_INJECTING_H_
#define ESTUARY_COMMON_COLLECTIVE_FAULT_INJECTING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/collective/communicator.h"

namespace estuary {

struct FaultInjectingOptions {
  enum class Mode {
    kFail,   // return `failure` at once
    kStall,  // wait until the call's deadline (or Abort), then DeadlineExceeded
  };
  // The call to break: 0 is this rank's first operation. Negative: none.
  int64_t call = -1;
  Mode mode = Mode::kFail;
  absl::Status failure = absl::UnavailableError("injected fault: a peer died");
  // kFail: also Abort() the wrapped communicator, so that its peers fail
  // promptly (as when a process dies) instead of at their deadline.
  bool abort_wrapped = true;
};

class FaultInjectingCommunicator final : public Communicator {
 public:
  FaultInjectingCommunicator(std::unique_ptr<Communicator> wrapped, FaultInjectingOptions options);

  // Operations this rank has started (the next call's index).
  int64_t calls() const;

  int rank() const override { return wrapped_->rank(); }
  int size() const override { return wrapped_->size(); }
  std::string PeerName(int r) const override { return wrapped_->PeerName(r); }

  // Errors: the wrapped communicator's; the injected fault (`failure`, or
  // DeadlineExceeded naming this rank as stalled); FailedPrecondition after
  // it; Cancelled after Abort().
  absl::Status AllReduce(absl::Span<float> data, ReduceOp op, absl::Time deadline) override;
  absl::Status AllReduce(absl::Span<int64_t> data, ReduceOp op, absl::Time deadline) override;
  absl::Status Broadcast(absl::Span<char> data, int root, absl::Time deadline) override;
  absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view mine,
                                                     absl::Time deadline) override;
  absl::Status Barrier(absl::Time deadline) override;
  void Abort() override;

 private:
  // Counts the call and injects the fault if it is the chosen one. OK: pass
  // the call on.
  absl::Status Before(const char* operation, absl::Time deadline);

  const std::unique_ptr<Communicator> wrapped_;
  const FaultInjectingOptions options_;
  mutable absl::Mutex mu_;
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // the injected fault, once injected
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_COLLECTIVE_FAULT_INJECTING_H_
