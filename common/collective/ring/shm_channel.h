// The ring's shared-memory data path between two neighbours on one host
// (NCCL's SHM transport, Open MPI's vader BTL): one direction of a ring
// edge is a single-producer/single-consumer ring of fixed-size slots in a
// POSIX shared-memory mapping. The producer fills slot `head % slots` and
// publishes it by storing head + 1; the consumer reads (or reduces straight
// out of) slot `tail % slots` and frees it by storing tail + 1. Both
// counters are std::atomic<uint32_t> in the mapping (lock-free, so
// address-free: they work across processes); a side that must wait spins
// briefly, then sleeps on the counter with a shared futex (FUTEX_WAIT, in
// slices so the caller can check its deadline and the peer's liveness),
// and the other side wakes it (FUTEX_WAKE) only when it announced that it
// sleeps.
//
// Lifecycle (ring_communicator.h, "Shared memory"): the connecting rank of
// an edge creates the segment (shm_open with a random name, O_EXCL, 0600;
// its pages reserved with posix_fallocate, so a full /dev/shm fails here
// and not with SIGBUS later), sends its name over the authenticated TCP
// connection; the peer opens it, checks the size and a random cookie, and
// unlinks the name at once; the creator unlinks it again when the peer has
// answered and on every error path. A mapping lives as long as its
// ShmChannel (munmap on destruction), in each process.
//
// Not thread-safe by itself: one producer thread and one consumer thread
// (normally in two processes).
#ifndef ESTUARY_COMMON_COLLECTIVE_RING_SHM_CHANNEL_H_
#define ESTUARY_COMMON_COLLECTIVE_RING_SHM_CHANNEL_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace estuary::ring_internal {

// Slots per channel and their size (a ring segment of the shared-memory
// path is one slot): 16 x 128 KiB = 2 MiB per direction, small enough to
// stay in the last-level cache.
inline constexpr uint32_t kShmSlots = 16;
inline constexpr size_t kShmSlotBytes = 128 << 10;

// Segment names: "/estuary-ring-<creator pid>-<32 hex digits>".
inline constexpr char kShmNamePrefix[] = "/estuary-ring-";

using ShmCookie = std::array<uint8_t, 16>;

static_assert(std::atomic<uint32_t>::is_always_lock_free, "futex words must be lock-free");

// The control block at the start of a mapping.
struct ShmControl {
  uint64_t magic;
  ShmCookie cookie;
  uint32_t slots;
  uint32_t slot_bytes;
  alignas(64) std::atomic<uint32_t> head;  // items published (producer)
  std::atomic<uint32_t> head_sleepers;     // consumers asleep on head
  alignas(64) std::atomic<uint32_t> tail;  // items consumed (consumer)
  std::atomic<uint32_t> tail_sleepers;     // producers asleep on tail
};

class ShmChannel {
 public:
  // Creates a fresh segment (random name, O_EXCL, 0600, pages reserved) and
  // maps it; *name receives its name. The name stays linked until Unlink.
  // Errors: Unavailable (shm_open/ftruncate/fallocate/mmap failed: no or a
  // full /dev/shm).
  static absl::StatusOr<std::unique_ptr<ShmChannel>> Create(const ShmCookie& cookie,
                                                             std::string* name);
  // Opens and maps the peer's segment `name` and unlinks the name at once
  // (whether or not it is the expected segment). Errors: Unavailable (no
  // such segment here: another host or another /dev/shm); InvalidArgument
  // (a bad name, wrong size or cookie).
  static absl::StatusOr<std::unique_ptr<ShmChannel>> Open(const std::string& name,
                                                           const ShmCookie& cookie);
  // Removes a segment's name (ENOENT is fine: the peer was first).
  static void Unlink(const std::string& name);

  ~ShmChannel();
  ShmChannel(const ShmChannel&) = delete;
  ShmChannel& operator=(const ShmChannel&) = delete;

  ShmControl& control() { return *control_; }
  char* slot(uint32_t item) { return data_ + static_cast<size_t>(item % kShmSlots) * kShmSlotBytes; }

  // Producer: whether slot `head` is free, and publish it (wakes a
  // sleeping consumer).
  bool CanProduce() const {
    return control_->head.load(std::memory_order_relaxed) -
               control_->tail.load(std::memory_order_acquire) <
           kShmSlots;
  }
  uint32_t head() const { return control_->head.load(std::memory_order_relaxed); }
  // The value of tail while the ring is full: a producer that found no free
  // slot sleeps (ShmSleep on tail) until tail moves off this value. Derived
  // from head, which only the producer moves, never from a fresh load of
  // tail: the consumer may have emptied the whole ring between the failed
  // CanProduce and that load, and then tail never moves again (the consumer
  // waits for this producer) -- the lost wake-up behind the 64 MiB
  // deadlock of issue 10. If the ring is not full, tail != FullTail() and
  // the wait returns at once.
  uint32_t FullTail() const { return head() - kShmSlots; }
  void Publish();
  // Consumer: whether slot `tail` holds an item, and free it (wakes a
  // sleeping producer).
  bool CanConsume() const {
    return control_->head.load(std::memory_order_acquire) !=
           control_->tail.load(std::memory_order_relaxed);
  }
  uint32_t tail() const { return control_->tail.load(std::memory_order_relaxed); }
  // The value of head while the ring is empty (a consumer sleeps on head
  // until it moves off it): tail, which only the consumer moves.
  uint32_t EmptyHead() const { return tail(); }
  void Release();

  // Wakes whoever sleeps on either counter (Abort, a stopping call).
  void WakeAll();

 private:
  ShmChannel(void* base, size_t bytes);

  void* base_;
  size_t bytes_;
  ShmControl* control_;
  char* data_;
};

// Sleeps while `*word == value`, at most `timeout` (less on a wake-up or a
// signal), counting itself in `*sleepers` meanwhile so the other side
// knows to wake it.
void ShmSleep(std::atomic<uint32_t>* word, std::atomic<uint32_t>* sleepers, uint32_t value,
              absl::Duration timeout);

// This boot's id (/proc/sys/kernel/random/boot_id), "" if unreadable.
std::string BootId();

// Spins before sleeping (a few microseconds: a peer that is about to
// publish saves the futex round trip; more would starve it on a busy
// machine).
inline constexpr int kShmSpins = 200;

}  // namespace estuary::ring_internal

#endif  // ESTUARY_COMMON_COLLECTIVE_RING_SHM_CHANNEL_H_
