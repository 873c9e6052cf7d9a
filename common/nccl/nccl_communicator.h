// A Communicator over NCCL: one rank per process (or thread) and GPU.
// Rendezvous: rank 0 creates the NCCL unique id and publishes it (hex) in
// the Store under "<prefix>/<generation>/nccl_id"; every rank marks itself
// under "<prefix>/<generation>/joined/<rank>" and joins with
// ncclCommInitRankConfig (non-blocking, so that the rendezvous and every
// operation keep their deadlines).
//
// The operations take host buffers (communicator.h) and stage them through
// device buffers of this communicator on its own CUDA stream: copy in,
// the NCCL collective, copy out. kMean is NCCL's sum divided on the host
// (every rank divides the same bits: bit-identical results). AllGather of
// varying lengths is an all-gather of the lengths, then one of the
// contributions padded to the longest. A call waits by polling the stream
// and ncclCommGetAsyncError; past its deadline, or on Abort(), the NCCL
// communicator is aborted (ncclCommAbort). NCCL cannot tell which peer is
// late, so DeadlineExceeded names every other rank; ranks disagreeing on a
// length are not detected (NCCL's behaviour is undefined then).
//
// Built for real only with --config=cuda (//common/nccl:nccl_communicator
// links CUDA and NCCL there); otherwise CreateNcclCommunicator answers
// Unimplemented, so callers need no #ifdef.
//
// Thread-safety: as communicator.h (one operation at a time); Abort() from
// any thread. Owns its NCCL communicator, stream and device buffers;
// borrows the Store for the rendezvous only. Starts no threads (NCCL
// starts its own proxy threads).
#ifndef ESTUARY_COMMON_NCCL_NCCL_COMMUNICATOR_H_
#define ESTUARY_COMMON_NCCL_NCCL_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/collective/communicator.h"
#include "common/coordination/store.h"

namespace estuary {

struct NcclOptions {
  Store* store = nullptr;  // rendezvous; borrowed, used only during creation
  // Keys are "<prefix>/<generation>/..."; one prefix per group.
  std::string prefix = "estuary/nccl";
  int64_t generation = 0;
  int rank = 0;
  int size = 1;
  // What errors call each rank ("worker:1"); empty: "rank N".
  std::vector<std::string> peer_names;
  // The CUDA device ordinal of this rank (no two ranks of a group on one
  // device: NCCL refuses that).
  int device = 0;
  // Deadline of the rendezvous (the unique id shared and every rank joined).
  absl::Time deadline = absl::InfiniteFuture();
};

// Creates this rank's communicator; blocks until every rank joined.
// Errors: InvalidArgument (no store, bad rank/size/peer_names, a device
// that does not exist); DeadlineExceeded naming the ranks that never
// joined; Unavailable (CUDA or NCCL failed: no GPU, no driver, a network
// error); those of the Store; Unimplemented when built without
// --config=cuda.
absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const NcclOptions& options);

// Whether NCCL can run here: the number of CUDA devices this process sees
// (>= 1). Cheap (asks the CUDA runtime for the device count; no context,
// no kernel), so a trainer calls it at start-up to choose or refuse NCCL.
// Errors: Unimplemented when built without --config=cuda; FailedPrecondition
// when the build has CUDA but no GPU is usable (the CUDA runtime's reason:
// no driver, no device, CUDA_VISIBLE_DEVICES empty).
absl::StatusOr<int> NcclVisibleDevices();

}  // namespace estuary

#endif  // ESTUARY_COMMON_NCCL_NCCL_COMMUNICATOR_H_
