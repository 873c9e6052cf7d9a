// A Communicator whose ranks are processes (or threads) connected over TCP
// in a ring, with its own data plane (plain sockets, not gRPC): bulk
// all-reduce is a chunked, pipelined reduce-scatter + all-gather (each rank
// sends and receives at once); small tensors take a low-latency path
// (one exchange with every peer); Broadcast, AllGather and Barrier use the
// same connections. Rendezvous: each rank listens on a port of its own
// (port 0: any free one), publishes "host:port" in the Store under
// "<prefix>/<generation>/addr/<rank>", and connects to its peers; the
// connection handshake checks prefix, generation, rank and size, so a
// stale rank of an older generation is refused.
//
// Authentication: the handshake is a challenge-response over the job token
// (RingOptions::token), both ways. The accepting rank sends a fresh 32-byte
// nonce first; the connecting rank answers with its hello, its own nonce and
// HMAC-SHA256(token, "estuary-ring-connect" | both nonces | its hello); the
// accepting rank checks it (constant time) and answers with
// HMAC-SHA256(token, "estuary-ring-accept" | both nonces | its hello), which
// the connecting rank checks. A peer without the token is refused with
// "wrong job token", logged by the accepting rank, and dropped; the
// rendezvous goes on for the legitimate ranks. The data after the handshake
// is neither encrypted nor integrity-protected (the ring is the bulk data
// plane); keep it on the job's own network.
//
// Shared memory (same host): after the handshake, the two ends of each ring
// edge (rank r sends to rank r+1) negotiate a shared-memory channel over
// their authenticated TCP connection: the connecting (higher) rank creates
// a POSIX shared-memory segment with an unguessable name (O_EXCL, mode
// 0600, pages reserved up front) and sends the name, its boot id and a
// random cookie; the peer opens it only if the boot ids match, checks the
// size and the cookie, unlinks the name at once and answers; the creator
// unlinks it again on the answer and on every error path, so no name
// outlives the rendezvous (a process killed in that window of a few
// milliseconds may leave one "/dev/shm/estuary-ring-<pid>-<hex>" behind).
// Then every rank tells every peer whether both of its edges got a
// channel, and the ring uses shared memory only if every edge of the ring
// did (all ranks on one host, sharing /dev/shm); otherwise the whole ring
// stays on TCP, silently (one info line per rank says which path it
// uses). RingOptions::shared_memory = false (job file
// distribution.ring_shared_memory, env ESTUARY_RING_SHM=0) turns it off.
// On the shared-memory path the ring all-reduce's segments travel through
// a ring of slots per edge (shm_channel.h): the sender copies a segment
// into a slot, the receiver adds it straight out of the slot into the
// tensor (reduce-scatter) or copies it into place (all-gather). The TCP
// connections stay: each call's header still goes over TCP (so ranks that
// disagree get InvalidArgument as before), the small-message path,
// Broadcast, AllGather and Barrier stay on TCP, and a wait on a slot
// sleeps on a futex in slices of a few milliseconds, between which it
// checks the deadline, Abort, and the peers' TCP connections: a killed
// neighbour (its socket hangs up) is Unavailable naming it, a stopped one
// DeadlineExceeded naming it as stalled, exactly as on TCP.
//
// Deadlines and faults as communicator.h says: a peer that dies is
// Unavailable naming it; a stalled peer (SIGSTOP) is DeadlineExceeded;
// ranks that time out report through the Store which rank they were
// waiting for, so the message names the rank that stalled, not a
// neighbour that was itself waiting.
//
// Thread-compatible (communicator.h); starts no threads that outlive a
// call. Owns its sockets; borrows the Store for its lifetime.
#ifndef ESTUARY_COMMON_COLLECTIVE_RING_RING_COMMUNICATOR_H_
#define ESTUARY_COMMON_COLLECTIVE_RING_RING_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/collective/communicator.h"
#include "common/coordination/store.h"

namespace estuary {

struct RingOptions {
  Store* store = nullptr;  // rendezvous; borrowed, must outlive the ring
  // Keys are "<prefix>/<generation>/..."; one prefix per group.
  std::string prefix = "estuary/collective";
  int64_t generation = 0;
  int rank = 0;
  int size = 1;
  // What errors call each rank ("worker:1"); empty: "rank N".
  std::vector<std::string> peer_names;
  // The host peers connect to (this task's host in TF_CONFIG); the ring
  // listens on it.
  std::string host = "127.0.0.1";
  // Deadline of the rendezvous (every rank published and connected).
  absl::Time deadline = absl::InfiniteFuture();
  // The job token every rank must prove it holds (empty: the HMACs use the
  // empty key, so ranks with and without a token still refuse each other).
  std::string token;
  // Shared memory between ring neighbours on one host (above); false: TCP
  // only.
  bool shared_memory = true;
  // Tests: act as if opening a peer's segment failed (another host or
  // container), so the ring falls back to TCP.
  bool shm_fail_open_for_testing = false;
};

// Whether the ring's all-reduce data travels through shared memory
// ("shared memory") or TCP ("tcp"); "" for another Communicator. For logs
// and tests.
std::string RingDataPath(const Communicator& c);

// Connects the ring. Errors: DeadlineExceeded naming the ranks that never
// published or connected; InvalidArgument (bad rank/size/options);
// Unavailable (cannot listen or connect); those of the Store.
absl::StatusOr<std::unique_ptr<Communicator>> CreateRingCommunicator(const RingOptions& options);

}  // namespace estuary

#endif  // ESTUARY_COMMON_COLLECTIVE_RING_RING_COMMUNICATOR_H_
