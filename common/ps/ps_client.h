// The client of every parameter-server task of a cluster (workers and the
// chief). It splits whole variables and global row ids by the placement
// (placement.h), makes one raw gRPC call per PS in parallel (bulk tensors
// as tensor-codec frames in byte buffers, ps_wire.h), and merges the
// answers.
//
// Routing. Initialize (chief) computes the placement with PlaceVariables;
// WaitInitialized (workers) reads it back from the PS tasks. Pull / Push /
// SaveShards before either are FailedPrecondition.
//
// Errors of every call name the PS task and address ("Push to ps:1 at
// host:port: ..."): Unavailable / DeadlineExceeded when a PS does not answer
// by the deadline, Cancelled after options.canceller->CancelAll(), and the
// PS's own: InvalidArgument (a gradient of the wrong shape or for an unknown
// variable: that PS applied nothing of the push and keeps serving), Aborted
// (the PS holds another generation: reinitialised after a PS restart;
// call WaitInitialized again), FailedPrecondition (the PS was never
// initialised, e.g. it restarted).
//
// Thread-safe: any number of calls may run at once (they share one channel
// per PS). Starts a thread per PS beyond the first for each call.
#ifndef ESTUARY_COMMON_PS_PS_CLIENT_H_
#define ESTUARY_COMMON_PS_PS_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/optimizer.h"
#include "common/ps/placement.h"
#include "common/ps/ps_wire.h"
#include "common/rpc.h"
#include "common/tensor.h"
#include "common/variables.h"
#include "grpcpp/support/byte_buffer.h"
#include "proto/checkpoint.pb.h"
#include "proto/ps.pb.h"

namespace estuary {

struct PsVariableInit {  // one variable, whole (the client splits it per PS)
  std::string name;
  RowMatrixXf value;
  bool row_sparse = false;
  bool trainable = true;   // false: only assigned (batch-norm moving stats)
  OptimizerConfig optimizer;
  std::map<std::string, RowMatrixXf> slots;  // restored slots by TF slot name; empty = CreateSlots
  int64_t updates = 0;  // the optimizer's step counter for this variable (Adam's t - 1)
};

struct PsClientOptions {
  // Task names for errors, one per address ("ps:0", ...); default "ps:<i>".
  std::vector<std::string> task_names;
  ChannelOptions channel;
  // If set, CancelAll() ends every call in flight with Cancelled.
  CallCanceller* canceller = nullptr;
  // A pause for a checkpoint (SaveShards) lifts by itself after this even if
  // the client dies between its two phases.
  absl::Duration max_pause = absl::Seconds(30);
  // Push and Pull over a PS's data plane (ps_data_plane.h) when it offers
  // one (a job without security); false: always gRPC.
  bool data_plane = true;
  // How long a call waits to connect to a data plane before it takes gRPC.
  absl::Duration data_connect_timeout = absl::Milliseconds(300);
};

class PsClient {
 public:
  // InvalidArgument for no addresses or task_names of another length.
  // Does not connect.
  static absl::StatusOr<std::unique_ptr<PsClient>> Create(std::vector<std::string> ps_addresses,
                                                          PsClientOptions options);
  ~PsClient();

  // Chief: (re)initialises every PS with its part of every variable, and
  // global_step on PS 0, tagging the store with `generation` (a new one
  // after each PS restart; pulls/pushes of another generation fail Aborted
  // so old and new shards never mix). Waits for PS tasks that are not up
  // yet until the deadline. Errors: InvalidArgument (a bad optimizer config,
  // a slot of the wrong shape, duplicate names), those above.
  absl::Status Initialize(uint64_t generation, const std::vector<PsVariableInit>& vars,
                          int64_t global_step, absl::Time deadline);

  // Workers: waits until every PS holds generation >= min_generation (PS
  // tasks not up yet are waited for), learns the placement from them, and
  // returns the generation. Errors: DeadlineExceeded; FailedPrecondition
  // when the PS tasks disagree on the generation (call again); those above.
  absl::StatusOr<uint64_t> WaitInitialized(uint64_t min_generation, absl::Time deadline);

  // Pulls the named dense variables whole and, of row-sparse ones, the given
  // global rows (sorted, distinct) into *mirror (full-shape matrices,
  // created on first use; rows not pulled are left as they were). One RPC
  // per PS, in parallel. Errors: InvalidArgument (an unknown variable, a
  // row out of range), those above.
  absl::Status Pull(const std::vector<std::string>& dense,
                    const std::map<std::string, std::vector<int64_t>>& rows, Variables* mirror,
                    absl::Time deadline);

  // Pushes one step's Gradients (dense, sparse rows in global ids, assign);
  // each PS applies its part with common/optimizer; global_step on PS 0
  // advances by one with PS 0's part (after applying it). Returns the new
  // global_step. Errors: as above (InvalidArgument for an unknown variable
  // is detected here, before anything is sent).
  absl::StatusOr<int64_t> Push(const Gradients& grads, absl::Time deadline);

  // Push, then Pull(dense, rows, mirror) in the same round trip: each PS
  // applies its part of the push and then answers its part of the pull
  // (one call per PS instead of two), so the values pulled include this
  // push, exactly as a Pull after the Push returned would. Errors: those of
  // both; a failed pull may follow an applied push (the mirror is then
  // partly updated: pull again).
  absl::StatusOr<int64_t> PushPull(const Gradients& grads, const std::vector<std::string>& dense,
                                   const std::map<std::string, std::vector<int64_t>>& rows,
                                   Variables* mirror, absl::Time deadline);

  // global_step on PS 0.
  absl::StatusOr<int64_t> GlobalStep(absl::Time deadline);

  // A checkpoint at one agreed step: every PS pauses applies (in-flight ones
  // finish), PS 0 tells its global_step S; then every PS snapshots its part
  // (variables, slots as "<var>/<optimizer>/<slot>", updates counters as
  // int64 "<var>/<optimizer>/updates"; PS 0 also global_step), resumes, and
  // writes it with checkpoint::WriteShard(model_dir, S, ps index, num_ps)
  // (row-partitioned variables as row partitions, so a one-process
  // checkpoint::Restore sees them whole); returns the entries when every
  // shard is durable, for checkpoint::CommitCheckpoint(model_dir, S, ...).
  // S is also stored in *step when `step` is not null. Errors: those
  // above; the write's I/O errors.
  absl::StatusOr<std::vector<ShardEntry>> SaveShards(const std::string& model_dir,
                                                     absl::Time deadline,
                                                     int64_t* step = nullptr);

  // The generation of the last Initialize / WaitInitialized (0 before).
  uint64_t generation() const;
  int num_ps() const { return static_cast<int>(ps_.size()); }
  // The placement in use (num_ps 0 before Initialize / WaitInitialized).
  Placement placement() const;

 private:
  struct Ps;
  struct Layout;  // generation, placement and per-variable routes
  PsClient(std::vector<std::unique_ptr<Ps>> ps, PsClientOptions options);
  absl::StatusOr<std::shared_ptr<const Layout>> CurrentLayout() const;
  // Records the data port PS `ps` answered with (0: none).
  void LearnDataPort(int ps, int port);
  // A pull's part for each PS: the PullVariables (added to fields[p]), the
  // rows tensors (appended to writers[p]) and where each answer goes.
  struct PullTarget;
  using PullFields = google::protobuf::RepeatedPtrField<ps::PullVariable>;
  absl::Status PlanPull(const Layout& layout, const std::vector<std::string>& dense,
                        const std::map<std::string, std::vector<int64_t>>& rows,
                        Variables* mirror, const std::vector<PullFields*>& fields,
                        std::vector<ps_wire::FrameWriter>* writers,
                        std::vector<std::vector<PullTarget>>* targets) const;
  // Copies one PS's answers (the rest of *reader) into their targets.
  static absl::Status ReadPulled(const std::string& what, ps_wire::FrameReader* reader,
                                 const std::vector<PullTarget>& targets);
  // One raw call to PS `ps`; errors say "<what> to ps:N at host:port: ...".
  absl::Status Call(int ps, const char* what, const char* method, const grpc::ByteBuffer& request,
                    grpc::ByteBuffer* response, absl::Time deadline, bool wait_for_ready) const;

  const PsClientOptions options_;
  std::vector<std::unique_ptr<Ps>> ps_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Layout> layout_ ABSL_GUARDED_BY(mu_);
  uint64_t next_pause_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_PS_PS_CLIENT_H_
