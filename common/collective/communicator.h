// Communicator: the collective operations synchronous training is built on
// (gloo's context + algorithms, c10d's ProcessGroup): every rank of a group
// calls the same operations in the same order; each call returns when this
// rank's part is done.
//
// Implementations (one folder per technology):
//   in_process.h           ranks are threads of one process (mirrored
//                          replicas, tests)
//   fault_injecting.h      wraps another; fails or stalls a chosen call
//                          (tests)
//   ring/ring_communicator.h  processes over TCP (its own sockets, not
//                          gRPC), rendezvous through a Store
//   nccl/ (--config=cuda)  GPUs through NCCL, unique id through a Store
// communicator_conformance.h holds the one test suite every implementation
// passes (reference results for sizes 1 element .. 64 MiB, world 1-4).
//
// Every operation takes an absolute deadline and never blocks past it. On
// failure the communicator is broken: every later call fails at once with
// the same status (a group re-forms by creating a new communicator at a new
// generation). Errors, for every operation:
//   DeadlineExceeded  the deadline passed; the message names the rank(s)
//                     (PeerName) this rank was waiting for, and, where the
//                     implementation can tell, the rank that stalled.
//   Unavailable       a peer died or closed its connection (named).
//   Cancelled         Abort() was called (shutdown).
//   InvalidArgument   ranks disagree on the operation or its size (named),
//                     a root out of range.
//   FailedPrecondition the communicator broke earlier (the first error's
//                     message is repeated).
//
// Thread-compatible: one operation at a time per communicator (a caller
// that wants concurrent collectives creates several). Abort() may be called
// from any thread at any time.
#ifndef ESTUARY_COMMON_COLLECTIVE_COMMUNICATOR_H_
#define ESTUARY_COMMON_COLLECTIVE_COMMUNICATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace estuary {

enum class ReduceOp { kSum, kMean };  // kMean: the sum divided by size()

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // What errors call rank `r`: its task ("worker:1", or "replica 1" in a
  // process) and rank, e.g. "worker:1 (rank 2)".
  virtual std::string PeerName(int r) const = 0;

  // Reduces `data` element-wise over every rank, in place: afterwards every
  // rank holds the same result. Every rank passes the same length. Float
  // sums are computed in the same order on every rank (every rank ends with
  // bit-identical values), though not necessarily in rank order.
  virtual absl::Status AllReduce(absl::Span<float> data, ReduceOp op, absl::Time deadline) = 0;
  // Int64 (counters). kMean divides with truncation toward zero.
  virtual absl::Status AllReduce(absl::Span<int64_t> data, ReduceOp op, absl::Time deadline) = 0;

  // Copies `root`'s bytes to every rank. Every rank passes a buffer of the
  // same length (receivers' contents are overwritten).
  virtual absl::Status Broadcast(absl::Span<char> data, int root, absl::Time deadline) = 0;

  // Every rank contributes `mine` (lengths may differ between ranks: sparse
  // gradients) and receives every rank's contribution, indexed by rank.
  virtual absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view mine,
                                                             absl::Time deadline) = 0;

  // Returns when every rank has called Barrier.
  virtual absl::Status Barrier(absl::Time deadline) = 0;

  // Breaks the communicator: calls in flight and later return Cancelled
  // (peers then see Unavailable or DeadlineExceeded). Idempotent,
  // thread-safe.
  virtual void Abort() = 0;
};

// The default deadline of one collective call made by a training step
// (distribution.collective_timeout in the job file).
inline constexpr absl::Duration kDefaultCollectiveTimeout = absl::Seconds(60);

}  // namespace estuary

#endif  // ESTUARY_COMMON_COLLECTIVE_COMMUNICATOR_H_
