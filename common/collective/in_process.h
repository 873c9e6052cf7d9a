// A Communicator whose ranks are threads of one process (MirroredStrategy's
// replicas on CPU; tests of what builds on collectives): the N
// communicators of a group share memory, and each operation is a
// rendezvous of the N calling threads. Once every rank has arrived, rank r
// reduces (or copies) the r-th slice of the data straight between the
// ranks' own buffers, so an all-reduce of n elements costs each thread
// about n/N additions and n copies, without staging buffers. Float sums
// are taken in rank order (every rank ends with bit-identical values).
//
// Faults: a rank that does not arrive before another's deadline breaks the
// group: every rank waiting in that operation fails with DeadlineExceeded
// naming the ranks that had not arrived; a rank that arrives later fails
// the same way. Abort() of one rank makes its own calls fail with Cancelled
// and the others' with Unavailable naming it. Ranks that disagree on the
// operation, its length, reduction or root fail with InvalidArgument naming
// both. Once every rank has arrived the data movement always completes
// (it is bounded memory work), so a deadline is checked only while waiting
// for the others.
//
// Thread-safety: as communicator.h (one operation at a time per
// communicator; each rank on its own thread); Abort() from any thread.
// The communicators share the group's state (reference-counted): they may
// be destroyed in any order. Starts no threads.
#ifndef ESTUARY_COMMON_COLLECTIVE_IN_PROCESS_H_
#define ESTUARY_COMMON_COLLECTIVE_IN_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/collective/communicator.h"

namespace estuary {

struct InProcessGroupOptions {
  int size = 1;
  // What errors call each rank ("replica 1"); empty: "replica N".
  std::vector<std::string> peer_names;
};

// Creates the `size` communicators of one group, indexed by rank; each is
// meant for its own thread.
// Errors: InvalidArgument (size < 1, peer_names neither empty nor of
// length size).
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateInProcessGroup(
    const InProcessGroupOptions& options);

}  // namespace estuary

#endif  // ESTUARY_COMMON_COLLECTIVE_IN_PROCESS_H_
