#include "common/collective/ring/ring_communicator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <functional>
#include <thread>
#include <utility>

#include "Eigen/Core"
#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/collective/ring/shm_channel.h"
#include "common/collective/ring/tcp_socket.h"
#include "common/crypto.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/transport_security.h"

namespace estuary {
namespace {

using ring_internal::Fd;

// ---------------------------------------------------------------------------
// Wire formats. Peers are processes of one build on machines of one byte
// order (the handshake's magic numbers would not match otherwise).

constexpr uint32_t kHelloMagic = 0x474e5245;  // "ERNG"
constexpr uint32_t kChallengeMagic = 0x48434552;  // "ERCH"
// 2: the token challenge-response (ring_communicator.h); 3: the
// shared-memory negotiation after it.
constexpr uint32_t kProtocolVersion = 3;
constexpr size_t kNonceBytes = 32;

// Sent by the accepting rank as soon as it accepts a connection.
struct Challenge {
  uint32_t magic = kChallengeMagic;
  uint32_t version = kProtocolVersion;
  uint8_t nonce[kNonceBytes] = {};
};
constexpr uint32_t kMessageMagic = 0x534d5245;  // "ERMS"

// Sent by the connecting rank right after connect.
struct Hello {
  uint32_t magic = kHelloMagic;
  uint32_t version = kProtocolVersion;
  uint64_t prefix_hash = 0;
  int64_t generation = 0;
  int32_t rank = 0;
  int32_t size = 0;
  // The sender's nonce and its proof of the token (ring_communicator.h).
  uint8_t nonce[kNonceBytes] = {};
  uint8_t mac[kSha256Bytes] = {};
};

// The accepting rank's answer: its own Hello (its mac over both nonces),
// and why it refused (code 1).
struct HelloReply {
  Hello hello;
  uint32_t code = 0;
  char reason[164] = {};
};

// HMAC-SHA256(token, role | the challenger's nonce | the responder's nonce |
// the sender's hello fields).
Sha256Digest HelloMac(const std::string& token, absl::string_view role,
                      const uint8_t* challenge_nonce, const Hello& h) {
  std::string m(role);
  m.append(reinterpret_cast<const char*>(challenge_nonce), kNonceBytes);
  m.append(reinterpret_cast<const char*>(h.nonce), kNonceBytes);
  m.append(reinterpret_cast<const char*>(&h), offsetof(Hello, nonce));
  return HmacSha256(token, m);
}

bool MacMatches(const Sha256Digest& want, const uint8_t* got) {
  return ConstantTimeEquals(
      absl::string_view(reinterpret_cast<const char*>(want.data()), want.size()),
      absl::string_view(reinterpret_cast<const char*>(got), kSha256Bytes));
}

constexpr char kConnectRole[] = "estuary-ring-connect";
constexpr char kAcceptRole[] = "estuary-ring-accept";

// "10.0.0.7:51234" for a connected socket's peer ("?" if unknown).
std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
    return absl::StrCat(host, ":", port);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
  }
  return absl::StrCat("[", host, "]:", port);
}

// Shared-memory negotiation (ring_communicator.h), after the handshake. The
// creator of edge e (rank e sends to rank e+1) offers a segment ...
constexpr uint32_t kShmOfferMagic = 0x4f4d5345;   // "ESMO"
constexpr uint32_t kShmAnswerMagic = 0x414d5345;  // "ESMA"
constexpr uint32_t kShmVoteMagic = 0x564d5345;    // "ESMV"
struct ShmOffer {
  uint32_t magic = kShmOfferMagic;
  int32_t edge = 0;
  uint32_t ok = 0;  // 0: no segment (off here, or creating it failed)
  uint32_t unused = 0;
  ring_internal::ShmCookie cookie = {};
  char boot_id[48] = {};
  char name[96] = {};
};
// ... the other end answers whether it mapped it ...
struct ShmAnswer {
  uint32_t magic = kShmAnswerMagic;
  int32_t edge = 0;
  uint32_t ok = 0;
  uint32_t unused = 0;
};
// ... and every rank tells every peer whether both its edges have one.
struct ShmVote {
  uint32_t magic = kShmVoteMagic;
  uint32_t ok = 0;
};

enum class Op : uint8_t { kAllReduce = 1, kBroadcast, kAllGather, kBarrier, kGoodbye };
enum class DType : uint8_t { kNone = 0, kFloat32, kInt64, kBytes };

// Precedes every message of a collective on every connection: the receiver
// checks that both ranks are in the same call (the same op, the same size,
// the same call number).
struct MessageHeader {
  uint32_t magic = kMessageMagic;
  Op op = Op::kBarrier;
  DType dtype = DType::kNone;
  uint8_t reduce = 0;  // ReduceOp
  uint8_t unused = 0;
  int32_t root = -1;
  uint32_t unused2 = 0;
  uint64_t seq = 0;    // number of this call on this communicator
  uint64_t bytes = 0;  // payload bytes (AllReduce: the whole tensor)
};
static_assert(sizeof(MessageHeader) == 32, "wire format");
constexpr size_t kHeaderBytes = sizeof(MessageHeader);

// All-reduces that send at most kDirectMaxTraffic bytes in all (the
// tensor times the peers), or of at most kDirectMinBytes, take the direct
// path (the tensor to every peer, a local sum in rank order: one latency
// instead of the ring's 2*(size-1) steps); bigger ones the pipelined ring.
// Measured on loopback, 2 processes: direct 38 us vs ring 51 us at 64 KiB,
// ring ahead from 256 KiB.
constexpr size_t kDirectMaxTraffic = 128 << 10;
constexpr size_t kDirectMinBytes = 32 << 10;
// The ring's pipelining unit (a bigger one saves poll wake-ups; a smaller
// one starts the next step sooner).
constexpr size_t kSegmentBytes = 256 << 10;
// Ring all-reduces of at least this many bytes send from a thread of their
// own, so that the kernel's copies of the two directions can run on two
// cores (measured on the 2-core build machine under load: the same CPU
// time per 64 MiB call, 24-26 ms, and no gain in wall time there; at 1 MiB
// the thread's start and hand-offs cost 300 -> 480 us of CPU).
constexpr size_t kSenderThreadMinBytes = 4 << 20;
// On the shared-memory path, a wait on a slot sleeps on its futex in
// slices and checks the peers' TCP connections (a killed neighbour hangs
// up) at least this often.
constexpr absl::Duration kShmLivenessSlice = absl::Milliseconds(2);
// A single-threaded shared-memory call that waits for both a slot to fill
// and one to free wakes up this often to look at the other one.
constexpr absl::Duration kShmBothBlockedSlice = absl::Microseconds(50);
// A call that cannot progress sleeps in poll() at once: no busy polling.
// On a shared machine spinning starves the very peer it waits for (4 KiB
// between 2 processes on 2 busy cores: 18 us without, 70 us with 50 us of
// spinning).

// The largest AllGather payload a rank accepts from a peer (every other
// frame's size is the call's own, checked by CheckHeader).
constexpr uint64_t kMaxAllGatherBytes = uint64_t{1} << 30;

// After a deadline, how long a rank waits for the other ranks' reports of
// what they were waiting for (to name the rank that stalled).
constexpr absl::Duration kStallReportWait = absl::Seconds(2);

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

size_t ElementBytes(DType d) {
  switch (d) {
    case DType::kFloat32:
      return 4;
    case DType::kInt64:
      return 8;
    default:
      return 1;
  }
}

// "AllReduce(float32 sum, 1000 elements)".
std::string Describe(const MessageHeader& h) {
  switch (h.op) {
    case Op::kAllReduce:
      return absl::StrCat("AllReduce(", h.dtype == DType::kFloat32 ? "float32" : "int64", " ",
                          h.reduce == static_cast<uint8_t>(ReduceOp::kMean) ? "mean" : "sum", ", ",
                          h.bytes / ElementBytes(h.dtype), " elements)");
    case Op::kBroadcast:
      return absl::StrCat("Broadcast(", h.bytes, " bytes from rank ", h.root, ")");
    case Op::kAllGather:
      return "AllGather";
    case Op::kBarrier:
      return "Barrier";
    case Op::kGoodbye:
      return "Goodbye";
  }
  return absl::StrCat("unknown op ", static_cast<int>(h.op));
}

template <typename T>
void AddInto(T* dst, const T* src, size_t n) {
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<Array>(dst, static_cast<Eigen::Index>(n)) +=
      Eigen::Map<const Array>(src, static_cast<Eigen::Index>(n));
}

template <typename T>
void DivideBy(T* data, size_t n, int size) {
  for (size_t i = 0; i < n; ++i) data[i] /= static_cast<T>(size);
}

// The items of a ring all-reduce (see RingAllReduce): n elements in
// `size` blocks, each cut into k_segs segments of at most `seg` elements;
// 2*(size-1) steps of k_segs items.
struct RingPlan {
  RingPlan(size_t n, int size, int rank, size_t seg)
      : n(n), size(size), rank(rank), seg(seg) {
    const size_t max_block = (n + size - 1) / size;
    k_segs = (max_block + seg - 1) / seg;
    items = 2 * static_cast<size_t>(size - 1) * k_segs;
  }
  int mod(int64_t x) const { return static_cast<int>(((x % size) + size) % size); }
  size_t block_begin(int b) const { return n * static_cast<size_t>(b) / size; }
  // Element range of segment k of block b.
  std::pair<size_t, size_t> range(int b, size_t k) const {
    const size_t end = block_begin(b + 1);
    const size_t begin = std::min(end, block_begin(b) + k * seg);
    return {begin, std::min(end, begin + seg)};
  }
  // Whether item t belongs to the reduce-scatter (else the all-gather).
  bool reduce(size_t t) const { return t / k_segs < static_cast<size_t>(size - 1); }
  // For all-gather item t: the reduce-scatter item that sent the range t
  // receives into (all-gather step a receives the block reduce-scatter
  // step a sent), so t lands in place only once that send is done.
  size_t scatter_item(size_t t) const { return t - static_cast<size_t>(size - 1) * k_segs; }
  std::pair<size_t, size_t> send_range(size_t t) const {
    const size_t s = t / k_segs;
    const int b = reduce(t) ? mod(rank - static_cast<int64_t>(s))
                            : mod(rank + 1 - static_cast<int64_t>(s - (size - 1)));
    return range(b, t % k_segs);
  }
  std::pair<size_t, size_t> recv_range(size_t t) const {
    const size_t s = t / k_segs;
    const int b = reduce(t) ? mod(rank - static_cast<int64_t>(s) - 1)
                            : mod(rank - static_cast<int64_t>(s - (size - 1)));
    return range(b, t % k_segs);
  }

  size_t n;
  int size;
  int rank;
  size_t seg;
  size_t k_segs = 0;
  size_t items = 0;
};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Waits until `*word != value` (a shared-memory counter moved off the
// value it has while the caller cannot go on: ShmChannel::FullTail or
// EmptyHead, derived from the caller's own counter, never a fresh load of
// `*word`, which may already be past the state the caller saw), or until
// `until`: spins briefly, then sleeps on the futex; every
// kShmLivenessSlice (tracked in *next_check, across calls) it runs `check`
// (the peers' liveness), whose error ends the wait. Returns true when the
// word moved or `until` passed, false at `deadline`; Cancelled with an
// empty message when `aborted`, Aborted with an empty message when `stop`.
absl::StatusOr<bool> ShmWait(std::atomic<uint32_t>* word, std::atomic<uint32_t>* sleepers,
                             uint32_t value, absl::Time deadline, absl::Time until,
                             const std::atomic<bool>& aborted, const std::atomic<bool>* stop,
                             absl::Time* next_check, const std::function<absl::Status()>& check) {
  for (int i = 0; i < ring_internal::kShmSpins; ++i) {
    if (word->load(std::memory_order_acquire) != value) return true;
    CpuRelax();
  }
  while (true) {
    if (word->load(std::memory_order_acquire) != value) return true;
    if (aborted.load()) return absl::CancelledError("");
    if (stop != nullptr && stop->load()) return absl::AbortedError("");
    const absl::Time now = absl::Now();
    if (now >= *next_check) {
      RETURN_IF_ERROR(check());
      *next_check = now + kShmLivenessSlice;
      continue;
    }
    if (now >= deadline) return false;
    if (now >= until) return true;
    ring_internal::ShmSleep(word, sleepers, value,
                            std::min({deadline, until, *next_check}) - now);
  }
}

std::string AddrKey(const RingOptions& o, int rank) {
  return absl::StrCat(o.prefix, "/", o.generation, "/addr/", rank);
}
// Set by a rank that failed because it lost a peer: that peer's rank.
std::string LostKey(const std::string& prefix, int64_t generation, int rank) {
  return absl::StrCat(prefix, "/", generation, "/lost/", rank);
}
std::string StuckKey(const std::string& prefix, int64_t generation, int rank) {
  return absl::StrCat(prefix, "/", generation, "/stuck/", rank);
}

std::string NameOf(const std::vector<std::string>& names, int r) {
  if (r >= 0 && r < static_cast<int>(names.size()) && !names[r].empty()) {
    return absl::StrCat(names[r], " (rank ", r, ")");
  }
  return absl::StrCat("rank ", r);
}

// ---------------------------------------------------------------------------

class RingCommunicator final : public Communicator {
 public:
  RingCommunicator(const RingOptions& o, std::vector<Fd> fds,
                   std::unique_ptr<ring_internal::ShmChannel> shm_out,
                   std::unique_ptr<ring_internal::ShmChannel> shm_in)
      : store_(o.store),
        prefix_(o.prefix),
        generation_(o.generation),
        rank_(o.rank),
        size_(o.size),
        names_(o.peer_names),
        fds_(std::move(fds)),
        shm_out_(std::move(shm_out)),
        shm_in_(std::move(shm_in)) {}

  bool shared_memory() const { return shm_out_ != nullptr && shm_in_ != nullptr; }

  ~RingCommunicator() override {
    // A communicator that ends healthy says goodbye, so a peer that still
    // watches the connection tells "left" from "died". A broken one just
    // closes (its streams may stop mid-message).
    bool healthy;
    {
      absl::MutexLock l(&mu_);
      healthy = broken_.ok();
    }
    if (healthy && !aborted_.load()) {
      MessageHeader bye;
      bye.op = Op::kGoodbye;
      for (int p = 0; p < size_; ++p) {
        if (p != rank_ && fds_[p].valid()) {
          (void)send(fds_[p].get(), &bye, sizeof(bye), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      }
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string PeerName(int r) const override { return NameOf(names_, r); }

  absl::Status AllReduce(absl::Span<float> data, ReduceOp op, absl::Time deadline) override {
    return AllReduceImpl(data.data(), data.size(), DType::kFloat32, op, deadline);
  }
  absl::Status AllReduce(absl::Span<int64_t> data, ReduceOp op, absl::Time deadline) override {
    return AllReduceImpl(data.data(), data.size(), DType::kInt64, op, deadline);
  }

  absl::Status Broadcast(absl::Span<char> data, int root, absl::Time deadline) override;
  absl::StatusOr<std::vector<std::string>> AllGather(absl::string_view mine,
                                                     absl::Time deadline) override;
  absl::Status Barrier(absl::Time deadline) override;

  void Abort() override {
    if (aborted_.exchange(true)) return;
    // A call asleep on a shared-memory counter wakes up and sees aborted_.
    if (shm_out_ != nullptr) shm_out_->WakeAll();
    if (shm_in_ != nullptr) shm_in_->WakeAll();
    for (const Fd& fd : fds_) {
      if (!fd.valid()) continue;
      // shutdown() wakes a call of this communicator blocked in poll().
      // Then the connection is reset (linger 0, and the socket replaced
      // under the same descriptor number by an unconnected one, which
      // closes it without freeing the number a call in flight may still
      // use): a peer then fails even if it already holds every byte this
      // rank sent, since its own send to this rank fails.
      const linger reset{1, 0};
      (void)setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      shutdown(fd.get(), SHUT_RDWR);
      const int placeholder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (placeholder >= 0) {
        dup2(placeholder, fd.get());
        close(placeholder);
      }
    }
  }

 private:
  // One call: what it is and until when.
  struct Call {
    MessageHeader header;
    absl::Time deadline;
  };

  // One peer's part of a direct exchange: send header + `send_data`,
  // receive header + payload.
  struct Transfer {
    bool send = false;
    const char* send_data = nullptr;
    size_t send_len = 0;
    size_t sent = 0;  // header included

    bool recv = false;
    // Where the payload goes; for a payload of unknown size (AllGather),
    // set by the header callback.
    char* recv_data = nullptr;
    size_t recv_len = 0;
    bool size_known = true;
    MessageHeader recv_header;
    size_t received = 0;  // header included
    bool header_checked = false;

    bool send_done() const { return !send || sent == kHeaderBytes + send_len; }
    bool recv_done() const { return !recv || (header_checked && received == kHeaderBytes + recv_len); }
  };

  // What a blocked call waits for on each peer's connection.
  struct Interest {
    bool read = false;
    bool write = false;
  };

  // Per-call state of the connection watch: peers whose hang-up was
  // checked and found harmless (they left after sending what this call
  // needs from them, or their next call's data is queued).
  struct Watch {
    explicit Watch(int size) : quiet(size, false) {}
    std::vector<bool> quiet;
  };

  template <typename T>
  absl::Status AllReduceImpl(T* data, size_t n, DType dtype, ReduceOp op, absl::Time deadline);
  template <typename T>
  absl::Status DirectAllReduce(T* data, size_t n, const Call& call);
  template <typename T>
  absl::Status RingAllReduce(T* data, size_t n, const Call& call);
  // RingAllReduce over the shared-memory channels (ring_communicator.h).
  template <typename T>
  absl::Status ShmRingAllReduce(T* data, size_t n, const Call& call);

  // What a ring call's thread and its sender thread share.
  struct SenderState {
    absl::Mutex mu;
    size_t received ABSL_GUARDED_BY(mu) = 0;  // items received (and reduced)
    bool stop ABSL_GUARDED_BY(mu) = false;    // the receiving thread gave up
    // Items whose bytes the sender has handed to the kernel, and whether it
    // has ended (done, failed or stopped). The receiving thread waits on
    // them before an all-gather item lands in place over bytes the sender
    // sent during the reduce-scatter: the peer cannot send that item before
    // it has all of ours, so the wait is normally over at once, but this
    // makes the order one that the code (and TSAN) can see.
    size_t sent ABSL_GUARDED_BY(mu) = 0;
    bool ended ABSL_GUARDED_BY(mu) = false;
    // The sender: waits until the receiving thread has taken `item` (whose
    // block the next send forwards): OK; DeadlineExceeded with an empty
    // message at `deadline`; Aborted with an empty message if it stopped.
    absl::Status AwaitReceived(size_t item, absl::Time deadline) {
      absl::MutexLock l(&mu);
      auto ready = [this, item]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return received > item || stop;
      };
      if (!mu.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
        return absl::DeadlineExceededError("");
      }
      if (stop) return absl::AbortedError("");
      return absl::OkStatus();
    }
    // The receiving thread: waits until the sender is past `item`: OK; DeadlineExceeded with an
    // empty message at `deadline`; Aborted with an empty message if it
    // ended (failed or stopped) before.
    absl::Status AwaitSent(size_t item, absl::Time deadline) {
      absl::MutexLock l(&mu);
      auto past = [this, item]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return sent > item || ended; };
      if (!mu.AwaitWithDeadline(absl::Condition(&past), deadline)) {
        return absl::DeadlineExceededError("");
      }
      if (sent <= item) return absl::AbortedError("");
      return absl::OkStatus();
    }
    // Written by the sender before it sets `failed` / ends (read after
    // join).
    int error = 0;  // errno of a failed write
    bool timed_out = false;
    std::atomic<bool> failed{false};
    std::atomic<bool> blocked_on_socket{false};
    // Shared-memory path: `stop` as an atomic (read between futex sleeps),
    // and whether the next rank hung up while the sender waited for a slot.
    std::atomic<bool> stop_flag{false};
    bool hung_up = false;
    Fd wake_receiver;  // eventfds
    Fd wake_sender;
  };
  // The sender thread of a threaded ring call: writes the header, then
  // item t (its bytes from `item(t)`) once item t-K was received.
  static void RunSender(SenderState* st, int fd, const Call& call, size_t items, size_t k_segs,
                        const std::function<std::pair<const char*, size_t>(size_t)>& item);

  // Checks that the communicator is usable and numbers the call.
  absl::Status Begin(Call* call);
  // Records a failure (the communicator is broken from now on).
  absl::Status Fail(absl::Status s);
  // Runs the direct exchange of `t` (indexed by peer) to completion.
  absl::Status Exchange(const Call& call, std::vector<Transfer>* t,
                        const std::function<absl::Status(int, Transfer*)>& on_header);
  // Validates a received header against the call.
  absl::Status CheckHeader(const Call& call, int peer, const MessageHeader& h, bool exact_size);

  // Sleeps until a socket of `want` is ready. Returns false at the deadline.
  // Errors: Cancelled (Abort); Unavailable (a peer this call does not read
  // from hung up).
  // `wake_fd` (if >= 0) also ends the sleep when readable.
  absl::StatusOr<bool> Block(const Call& call, const std::vector<Interest>& want, Watch* watch,
                             int wake_fd = -1);
  // A peer's connection reported a hang-up: Unavailable if it died or
  // closed, OK if it left cleanly or has data queued (marks it quiet).
  absl::Status CheckHangUp(const Call& call, int peer, Watch* watch);
  // DeadlineExceeded naming the peers in `want`, and the ranks that stalled
  // (found through the Store's stall reports).
  absl::Status TimedOut(const Call& call, const std::vector<Interest>& want);
  absl::Status PeerError(const Call& call, int peer, int err, bool reading);

  Store* const store_;
  const std::string prefix_;
  const int64_t generation_;
  const int rank_;
  const int size_;
  const std::vector<std::string> names_;
  const std::vector<Fd> fds_;  // by rank; invalid at rank_
  // The shared-memory channels to the next rank and from the previous one
  // (both or neither).
  const std::unique_ptr<ring_internal::ShmChannel> shm_out_;
  const std::unique_ptr<ring_internal::ShmChannel> shm_in_;

  std::atomic<bool> aborted_{false};
  absl::Mutex mu_;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ = 0;
  std::vector<char> scratch_;
  // The rank whose loss failed the last call (-1: none).
  int culprit_ = -1;
};

absl::Status RingCommunicator::Begin(Call* call) {
  call->header.seq = ++seq_;
  if (aborted_.load()) {
    return absl::CancelledError(absl::StrCat(Describe(call->header), " at ", PeerName(rank_),
                                             ": the communicator was aborted"));
  }
  absl::MutexLock l(&mu_);
  if (!broken_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the communicator broke earlier: ", broken_.message()));
  }
  return absl::OkStatus();
}

absl::Status RingCommunicator::Fail(absl::Status s) {
  if (s.ok()) return s;
  if (aborted_.load() && s.code() != absl::StatusCode::kCancelled) {
    s = absl::CancelledError(absl::StrCat("the communicator was aborted (", s.message(), ")"));
  }
  {
    absl::MutexLock l(&mu_);
    if (broken_.ok()) broken_ = s;
  }
  // Tell the ranks that will see this rank close which rank it lost.
  if (s.code() == absl::StatusCode::kUnavailable && culprit_ >= 0 && store_ != nullptr) {
    (void)store_->Set(LostKey(prefix_, generation_, rank_), absl::StrCat(culprit_),
                      absl::Now() + kStallReportWait);
  }
  // Ranks that disagree on the call: the others would wait until their
  // deadline; closing the connections tells them at once.
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    for (const Fd& fd : fds_) {
      if (fd.valid()) shutdown(fd.get(), SHUT_RDWR);
    }
  }
  return s;
}

absl::Status RingCommunicator::PeerError(const Call& call, int peer, int err, bool reading) {
  if (aborted_.load()) {
    return absl::CancelledError(absl::StrCat(Describe(call.header), " at ", PeerName(rank_),
                                             ": the communicator was aborted"));
  }
  // A peer that closed may have done so because it lost another rank
  // first (and exited with that error): then name that rank.
  culprit_ = peer;
  if (store_ != nullptr) {
    absl::StatusOr<std::string> lost =
        store_->Get(LostKey(prefix_, generation_, peer), absl::Now() + kStallReportWait);
    int first = -1;
    if (lost.ok() && absl::SimpleAtoi(*lost, &first) && first >= 0 && first < size_ &&
        first != rank_ && first != peer) {
      culprit_ = first;
      return absl::UnavailableError(absl::StrCat(
          Describe(call.header), " at ", PeerName(rank_), ": ", PeerName(first),
          " died or left (", PeerName(peer), " lost it, then closed its connection to this rank)"));
    }
  }
  if (err == 0) {
    return absl::UnavailableError(absl::StrCat(Describe(call.header), " at ", PeerName(rank_),
                                               ": ", PeerName(peer),
                                               " closed the connection (it died or aborted)"));
  }
  return absl::UnavailableError(absl::StrCat(Describe(call.header), " at ", PeerName(rank_), ": ",
                                             reading ? "reading from " : "writing to ",
                                             PeerName(peer), " failed: ", std::strerror(err),
                                             " (it died or aborted)"));
}

absl::Status RingCommunicator::CheckHeader(const Call& call, int peer, const MessageHeader& h,
                                           bool exact_size) {
  if (h.magic != kMessageMagic) {
    return absl::InternalError(absl::StrCat(Describe(call.header), " at ", PeerName(rank_),
                                            ": garbled message from ", PeerName(peer)));
  }
  if (h.op == Op::kGoodbye) {
    return absl::UnavailableError(absl::StrCat(Describe(call.header), " at ", PeerName(rank_),
                                               ": ", PeerName(peer),
                                               " closed its communicator (left the group)"));
  }
  const MessageHeader& mine = call.header;
  if (h.seq != mine.seq || h.op != mine.op || h.dtype != mine.dtype ||
      h.reduce != mine.reduce || h.root != mine.root || (exact_size && h.bytes != mine.bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ranks disagree on the collective: ", PeerName(rank_), " called ", Describe(mine),
        " (call #", mine.seq, ") while ", PeerName(peer), " called ", Describe(h), " (call #",
        h.seq, ")"));
  }
  return absl::OkStatus();
}

absl::Status RingCommunicator::CheckHangUp(const Call& call, int peer, Watch* watch) {
  MessageHeader h;
  const ssize_t n = recv(fds_[peer].get(), &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return PeerError(call, peer, 0, true);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    return PeerError(call, peer, errno, true);
  }
  // A goodbye (it finished this call and left), or its next call's data:
  // harmless now. A read in a later call sees what follows.
  watch->quiet[peer] = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> RingCommunicator::Block(const Call& call, const std::vector<Interest>& want,
                                             Watch* watch, int wake_fd) {
  std::vector<pollfd> pfds;
  std::vector<int> peer_of;
  pfds.reserve(size_);
  peer_of.reserve(size_);
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    short events = 0;
    if (want[p].read) events |= POLLIN;
    if (want[p].write) events |= POLLOUT;
    // Peers this call does not read from: watch for their hang-up (a dead
    // rank that is not a neighbour), unless already checked.
    if (!want[p].read && !watch->quiet[p]) events |= POLLRDHUP;
    if (events == 0) continue;
    pfds.push_back(pollfd{fds_[p].get(), events, 0});
    peer_of.push_back(p);
  }
  if (wake_fd >= 0) {
    pfds.push_back(pollfd{wake_fd, POLLIN, 0});
    peer_of.push_back(-1);
  }
  while (true) {
    if (aborted_.load()) return PeerError(call, rank_, 0, true);
    if (absl::Now() >= call.deadline) return false;
    ring_internal::PollTimeout timeout(call.deadline);
    const int rc = ppoll(pfds.data(), pfds.size(), timeout.get(), nullptr);
    if (aborted_.load()) return PeerError(call, rank_, 0, true);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (rc == 0) continue;  // the deadline check above decides
    bool ready = false;
    for (size_t i = 0; i < pfds.size(); ++i) {
      const short rev = pfds[i].revents;
      if (rev == 0) continue;
      const int p = peer_of[i];
      if (p < 0) return true;  // woken
      if (!want[p].read && (rev & (POLLRDHUP | POLLHUP | POLLERR))) {
        RETURN_IF_ERROR(CheckHangUp(call, p, watch));
        pfds[i].events &= ~POLLRDHUP;
        if (!want[p].write) pfds[i].fd = -1;  // nothing else to wait for there
        if (rev & (POLLHUP | POLLERR)) {
          pfds[i].fd = -1;
          if (want[p].write) ready = true;  // the next write reports the error
        }
        if (rev & POLLOUT) ready = true;
        continue;
      }
      ready = true;
    }
    if (ready) return true;
  }
}

absl::Status RingCommunicator::TimedOut(const Call& call, const std::vector<Interest>& want) {
  std::vector<std::string> waiting;
  for (int p = 0; p < size_; ++p) {
    if (p == rank_ || (!want[p].read && !want[p].write)) continue;
    waiting.push_back(absl::StrCat(PeerName(p), want[p].read ? " (receiving)" : " (sending)"));
  }
  const std::string what = absl::StrCat(Describe(call.header), " (call #", call.header.seq, ") at ",
                                        PeerName(rank_), ": deadline exceeded waiting for ",
                                        absl::StrJoin(waiting, ", "));
  // Name the rank that stalled: every rank that timed out reports what it
  // waited for; a rank that reports nothing within kStallReportWait is
  // stalled (stopped, hung, or busy outside the collective).
  std::vector<std::string> stalled;
  if (store_ != nullptr) {
    const absl::Time report_deadline = absl::Now() + kStallReportWait;
    (void)store_->Set(StuckKey(prefix_, generation_, rank_), what, report_deadline);
    std::vector<std::string> keys;
    std::vector<int> ranks;
    for (int p = 0; p < size_; ++p) {
      if (p == rank_) continue;
      keys.push_back(StuckKey(prefix_, generation_, p));
      ranks.push_back(p);
    }
    if (!store_->Wait(keys, report_deadline).ok()) {
      const absl::Time get_deadline = absl::Now() + absl::Seconds(1);
      for (size_t i = 0; i < keys.size(); ++i) {
        absl::StatusOr<std::string> v = store_->Get(keys[i], get_deadline);
        if (absl::IsNotFound(v.status())) stalled.push_back(PeerName(ranks[i]));
      }
    }
  }
  if (stalled.empty()) return absl::DeadlineExceededError(what);
  return absl::DeadlineExceededError(absl::StrCat(
      what, "; stalled: ", absl::StrJoin(stalled, ", "),
      " (no report of a wait from ", stalled.size() == 1 ? "it" : "them",
      " while the other ranks timed out)"));
}

absl::Status RingCommunicator::Exchange(
    const Call& call, std::vector<Transfer>* transfers,
    const std::function<absl::Status(int, Transfer*)>& on_header) {
  std::vector<Transfer>& t = *transfers;
  std::vector<Interest> want(size_);
  Watch watch(size_);
  while (true) {
    if (aborted_.load()) return PeerError(call, rank_, 0, true);
    bool progressed = false;
    bool done = true;
    for (int p = 0; p < size_; ++p) {
      if (p == rank_) continue;
      Transfer& x = t[p];
      const int fd = fds_[p].get();
      want[p] = Interest{};
      // Send: header, then payload, with one sendmsg.
      while (!x.send_done()) {
        iovec iov[2];
        int n_iov = 0;
        if (x.sent < kHeaderBytes) {
          iov[n_iov++] = {const_cast<char*>(reinterpret_cast<const char*>(&call.header)) + x.sent,
                          kHeaderBytes - x.sent};
          if (x.send_len > 0) iov[n_iov++] = {const_cast<char*>(x.send_data), x.send_len};
        } else {
          const size_t off = x.sent - kHeaderBytes;
          iov[n_iov++] = {const_cast<char*>(x.send_data) + off, x.send_len - off};
        }
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = n_iov;
        const ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          x.sent += static_cast<size_t>(w);
          progressed = true;
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          want[p].write = true;
          break;
        }
        return PeerError(call, p, w < 0 ? errno : EPIPE, false);
      }
      // Receive: header (and a payload of known size) with one recvmsg.
      while (!x.recv_done()) {
        iovec iov[2];
        int n_iov = 0;
        if (x.received < kHeaderBytes) {
          iov[n_iov++] = {reinterpret_cast<char*>(&x.recv_header) + x.received,
                          kHeaderBytes - x.received};
          if (x.size_known && x.recv_len > 0) iov[n_iov++] = {x.recv_data, x.recv_len};
        } else {
          const size_t off = x.received - kHeaderBytes;
          iov[n_iov++] = {x.recv_data + off, x.recv_len - off};
        }
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = n_iov;
        const ssize_t r = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (r > 0) {
          x.received += static_cast<size_t>(r);
          progressed = true;
          if (!x.header_checked && x.received >= kHeaderBytes) {
            RETURN_IF_ERROR(CheckHeader(call, p, x.recv_header, x.size_known));
            if (!x.size_known) {
              RETURN_IF_ERROR(on_header(p, &x));
              x.size_known = true;
            }
            x.header_checked = true;
          }
          continue;
        }
        if (r == 0) return PeerError(call, p, 0, true);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          want[p].read = true;
          break;
        }
        return PeerError(call, p, errno, true);
      }
      if (!x.send_done() || !x.recv_done()) done = false;
    }
    if (done) return absl::OkStatus();
    if (progressed) {
      // A transfer that keeps trickling must still end at the deadline.
      if (absl::Now() < call.deadline) continue;
      for (int p = 0; p < size_; ++p) {
        want[p] = Interest{!t[p].recv_done(), !t[p].send_done()};
      }
      return TimedOut(call, want);
    }
    ASSIGN_OR_RETURN(const bool ready, Block(call, want, &watch));
    if (!ready) return TimedOut(call, want);
  }
}

template <typename T>
absl::Status RingCommunicator::AllReduceImpl(T* data, size_t n, DType dtype, ReduceOp op,
                                             absl::Time deadline) {
  Call call;
  call.header.op = Op::kAllReduce;
  call.header.dtype = dtype;
  call.header.reduce = static_cast<uint8_t>(op);
  call.header.bytes = n * sizeof(T);
  call.deadline = deadline;
  RETURN_IF_ERROR(Begin(&call));
  if (size_ == 1) return absl::OkStatus();
  absl::Status s;
  const size_t bytes = n * sizeof(T);
  if (bytes <= kDirectMinBytes || bytes * (size_ - 1) <= kDirectMaxTraffic ||
      n < static_cast<size_t>(size_)) {
    s = DirectAllReduce(data, n, call);
  } else if (shared_memory()) {
    s = ShmRingAllReduce(data, n, call);
  } else {
    s = RingAllReduce(data, n, call);
  }
  if (!s.ok()) return Fail(std::move(s));
  if (op == ReduceOp::kMean) DivideBy(data, n, size_);
  return absl::OkStatus();
}

template <typename T>
absl::Status RingCommunicator::DirectAllReduce(T* data, size_t n, const Call& call) {
  const size_t bytes = n * sizeof(T);
  scratch_.resize(bytes * size_);
  std::vector<Transfer> t(size_);
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    t[p].send = true;
    t[p].send_data = reinterpret_cast<const char*>(data);
    t[p].send_len = bytes;
    t[p].recv = true;
    t[p].recv_data = scratch_.data() + bytes * p;
    t[p].recv_len = bytes;
  }
  RETURN_IF_ERROR(Exchange(call, &t, nullptr));
  // Sum in rank order on every rank: bit-identical results.
  T* slots = reinterpret_cast<T*>(scratch_.data());
  if (bytes > 0) std::memcpy(slots + n * rank_, data, bytes);
  if (rank_ != 0 && bytes > 0) std::memcpy(data, slots, bytes);
  for (int p = 1; p < size_; ++p) AddInto(data, slots + n * p, n);
  return absl::OkStatus();
}

// Reduce-scatter then all-gather around the ring, as one stream of
// segments per direction: rank r sends to r+1 and receives from r-1.
// Blocks: block b is elements [n*b/size, n*(b+1)/size). Step s (0 ..
// 2*size-3), segment k (0 .. K-1) is stream item s*K+k.
//   reduce-scatter (s < size-1): send block r-s, receive block r-s-1 and
//     add it into ours; after it rank r holds the sum of block r+1, summed
//     in the same order (starting at rank b, around the ring) wherever it
//     ends, so every rank's copy is bit-identical.
//   all-gather (s = size-1+j): send block r+1-j, receive block r-j in
//     place (a copy).
// Item t's send needs item t-K's receive (that block's data) except in
// step 0; so segments flow through the ring back to back: sending segment
// k of step s+1 overlaps receiving segment k+1 of step s.

template <typename T>
absl::Status RingCommunicator::RingAllReduce(T* data, size_t n, const Call& call) {
  const int next = (rank_ + 1) % size_;
  const int prev = (rank_ + size_ - 1) % size_;
  const int next_fd = fds_[next].get();
  const int prev_fd = fds_[prev].get();
  const size_t seg = std::max<size_t>(1, kSegmentBytes / sizeof(T));
  const RingPlan plan(n, size_, rank_, seg);
  const size_t items = plan.items;
  const size_t k_segs = plan.k_segs;
  scratch_.resize(seg * sizeof(T));
  T* scratch = reinterpret_cast<T*>(scratch_.data());

  // Big tensors: a sender thread for this call writes to `next` while this
  // thread reads from `prev` and reduces (the kernel's copies of the two
  // directions then run on two cores).
  const bool threaded = n * sizeof(T) >= kSenderThreadMinBytes;
  SenderState sender_state;
  std::thread sender;
  if (threaded) {
    sender_state.wake_receiver = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    sender_state.wake_sender = Fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!sender_state.wake_receiver.valid() || !sender_state.wake_sender.valid()) {
      return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
    }
    sender = std::thread([&] {
      RunSender(&sender_state, next_fd, call, items, k_segs, [&](size_t t) {
        const auto [begin, end] = plan.send_range(t);
        return std::make_pair(reinterpret_cast<const char*>(data + begin),
                              (end - begin) * sizeof(T));
      });
    });
  }

  size_t header_sent = 0;
  MessageHeader peer_header;
  size_t header_received = 0;
  size_t send_item = 0, send_off = 0;  // item, bytes of it sent
  size_t recv_item = 0, recv_off = 0;
  bool send_blocked = false;
  std::vector<Interest> want(size_);
  Watch watch(size_);
  // Returns OK when this thread's part is done; DeadlineExceeded with an
  // empty message at the deadline (the caller names the ranks); Aborted
  // with an empty message when the sender thread failed.
  auto loop = [&]() -> absl::Status {
    while (true) {
      if (aborted_.load()) return PeerError(call, rank_, 0, true);
      bool progressed = false;
      bool recv_blocked = false;
      send_blocked = false;
      // Send side (unthreaded): the header, then every item whose data is
      // ready.
      while (!threaded && header_sent < kHeaderBytes) {
        const ssize_t w = send(next_fd, reinterpret_cast<const char*>(&call.header) + header_sent,
                               kHeaderBytes - header_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          header_sent += static_cast<size_t>(w);
          progressed = true;
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          send_blocked = true;
          break;
        }
        return PeerError(call, next, w < 0 ? errno : EPIPE, false);
      }
      while (!threaded && !send_blocked && send_item < items &&
             (send_item < k_segs || send_item - k_segs < recv_item)) {
        const auto [begin, end] = plan.send_range(send_item);
        const size_t len = (end - begin) * sizeof(T);
        if (send_off == len) {
          ++send_item;
          send_off = 0;
          continue;
        }
        const ssize_t w = send(next_fd, reinterpret_cast<const char*>(data + begin) + send_off,
                               len - send_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          send_off += static_cast<size_t>(w);
          progressed = true;
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          send_blocked = true;
          break;
        }
        return PeerError(call, next, w < 0 ? errno : EPIPE, false);
      }
      // Receive side: the header, then items in order; reduce-scatter items
      // land in scratch and are added, all-gather items land in place.
      while (header_received < kHeaderBytes) {
        const ssize_t r = recv(prev_fd, reinterpret_cast<char*>(&peer_header) + header_received,
                               kHeaderBytes - header_received, MSG_DONTWAIT);
        if (r > 0) {
          header_received += static_cast<size_t>(r);
          progressed = true;
          if (header_received == kHeaderBytes) {
            RETURN_IF_ERROR(CheckHeader(call, prev, peer_header, /*exact_size=*/true));
          }
          continue;
        }
        if (r == 0) return PeerError(call, prev, 0, true);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          recv_blocked = true;
          break;
        }
        return PeerError(call, prev, errno, true);
      }
      while (!recv_blocked && recv_item < items) {
        const auto [begin, end] = plan.recv_range(recv_item);
        const size_t len = (end - begin) * sizeof(T);
        const bool reduce = plan.reduce(recv_item);
        if (recv_off == len) {
          if (reduce && len > 0) AddInto(data + begin, scratch, end - begin);
          ++recv_item;
          recv_off = 0;
          progressed = true;
          if (threaded) {
            absl::MutexLock l(&sender_state.mu);
            sender_state.received = recv_item;
          }
          continue;
        }
        if (threaded && !reduce && recv_off == 0 && len > 0) {
          // In place over the reduce-scatter's send item of the same range
          // (all-gather step a receives chunk rank - a, which reduce-scatter
          // step a sent): wait until the sender is past it.
          RETURN_IF_ERROR(sender_state.AwaitSent(plan.scatter_item(recv_item), call.deadline));
        }
        char* dest =
            reduce ? reinterpret_cast<char*>(scratch) : reinterpret_cast<char*>(data + begin);
        const ssize_t r = recv(prev_fd, dest + recv_off, len - recv_off, MSG_DONTWAIT);
        if (r > 0) {
          recv_off += static_cast<size_t>(r);
          progressed = true;
          continue;
        }
        if (r == 0) return PeerError(call, prev, 0, true);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          recv_blocked = true;
          break;
        }
        return PeerError(call, prev, errno, true);
      }
      const bool recv_done = header_received == kHeaderBytes && recv_item == items;
      const bool send_done = threaded || (header_sent == kHeaderBytes && send_item == items);
      if (recv_done && send_done) return absl::OkStatus();
      if (threaded && sender_state.failed.load()) return absl::AbortedError("");
      if (progressed) {
        if (absl::Now() < call.deadline) continue;
        return absl::DeadlineExceededError("");
      }
      for (Interest& i : want) i = Interest{};
      if (!recv_done) want[prev].read = true;
      if (send_blocked) want[next].write = true;
      ASSIGN_OR_RETURN(
          const bool ready,
          Block(call, want, &watch, threaded ? sender_state.wake_receiver.get() : -1));
      if (!ready) return absl::DeadlineExceededError("");
    }
  };
  absl::Status s = loop();
  if (threaded) {
    if (!s.ok()) {
      {
        absl::MutexLock l(&sender_state.mu);
        sender_state.stop = true;
      }
      const uint64_t one = 1;
      (void)!write(sender_state.wake_sender.get(), &one, sizeof(one));
    }
    sender.join();
    // The sender's failure explains this thread's stop (or came after this
    // thread's part was done).
    if ((s.ok() || absl::IsAborted(s)) && sender_state.error != 0) {
      return PeerError(call, next, sender_state.error, false);
    }
    if (s.ok() && sender_state.timed_out) s = absl::DeadlineExceededError("");
    if (absl::IsAborted(s) && s.message().empty()) {
      s = aborted_.load() ? PeerError(call, rank_, 0, true) : absl::DeadlineExceededError("");
    }
  }
  if (absl::IsDeadlineExceeded(s) && s.message().empty()) {
    for (Interest& i : want) i = Interest{};
    want[prev].read = !(header_received == kHeaderBytes && recv_item == items);
    want[next].write = threaded ? sender_state.blocked_on_socket.load()
                                : !(header_sent == kHeaderBytes && send_item == items);
    return TimedOut(call, want);
  }
  return s;
}

// The shared-memory variant of RingAllReduce: the same items (RingPlan,
// with segments of one slot), the call's header still over TCP. Each item
// is copied into a slot of the channel to the next rank and reduced (or
// copied into place) straight out of the slot of the channel from the
// previous one. Threaded from kSenderThreadMinBytes like the TCP path (the
// sender thread fills slots while this thread empties them); below that
// one thread alternates. The TCP connections are the liveness watch.
template <typename T>
absl::Status RingCommunicator::ShmRingAllReduce(T* data, size_t n, const Call& call) {
  const int next = (rank_ + 1) % size_;
  const int prev = (rank_ + size_ - 1) % size_;
  ring_internal::ShmChannel& out = *shm_out_;
  ring_internal::ShmChannel& in = *shm_in_;
  const RingPlan plan(n, size_, rank_, ring_internal::kShmSlotBytes / sizeof(T));
  const size_t items = plan.items;
  const size_t k_segs = plan.k_segs;
  {
    // The headers: ranks that disagree on the call fail as on TCP.
    std::vector<Transfer> t(size_);
    t[next].send = true;
    t[prev].recv = true;
    RETURN_IF_ERROR(Exchange(call, &t, nullptr));
  }
  const bool threaded = n * sizeof(T) >= kSenderThreadMinBytes;
  size_t send_item = 0, recv_item = 0;
  bool send_blocked = false;
  Watch watch(size_);
  absl::Time next_check = absl::Now() + kShmLivenessSlice;
  // Between sleeps: a neighbour this call still needs that hung up is dead
  // unless its channel has moved (it may have published everything, then
  // left); any other peer's hang-up as in Block.
  auto check = [&]() -> absl::Status {
    std::vector<pollfd> pfds;
    std::vector<int> peer_of;
    for (int p = 0; p < size_; ++p) {
      if (p == rank_ || watch.quiet[p]) continue;
      pfds.push_back(pollfd{fds_[p].get(), POLLRDHUP, 0});
      peer_of.push_back(p);
    }
    const timespec zero{0, 0};
    if (ppoll(pfds.data(), pfds.size(), &zero, nullptr) <= 0) return absl::OkStatus();
    for (size_t i = 0; i < pfds.size(); ++i) {
      if ((pfds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0) continue;
      const int p = peer_of[i];
      // The next rank never takes another item once it hung up; the
      // previous one may have published all it had to before it left.
      const bool need_prev = p == prev && recv_item < items;
      const bool need_next = p == next && !threaded && send_item < items;
      if (need_next || (need_prev && !in.CanConsume())) {
        return PeerError(call, p, 0, /*reading=*/!need_next);
      }
      if (need_prev) continue;  // items left to take; a later check decides
      RETURN_IF_ERROR(CheckHangUp(call, p, &watch));
    }
    return absl::OkStatus();
  };
  // Empties slot by slot into the tensor: item recv_item.
  auto consume = [&]() {
    const auto [begin, end] = plan.recv_range(recv_item);
    const T* src = reinterpret_cast<const T*>(in.slot(in.tail()));
    if (plan.reduce(recv_item)) {
      AddInto(data + begin, src, end - begin);
    } else {
      std::memcpy(data + begin, src, (end - begin) * sizeof(T));
    }
    in.Release();
  };
  auto produce = [&](size_t t) {
    const auto [begin, end] = plan.send_range(t);
    std::memcpy(out.slot(out.head()), data + begin, (end - begin) * sizeof(T));
    out.Publish();
  };
  auto empty = [&](std::pair<size_t, size_t> r) { return r.first == r.second; };
  // Maps ShmWait's errors with empty messages.
  auto wait_error = [&](const absl::Status& s) -> absl::Status {
    if (absl::IsCancelled(s) && s.message().empty()) return PeerError(call, rank_, 0, true);
    return s;
  };

  absl::Status s;
  SenderState st;
  std::thread sender;
  if (!threaded) {
    s = [&]() -> absl::Status {
      while (true) {
        if (aborted_.load()) return PeerError(call, rank_, 0, true);
        bool progressed = false;
        send_blocked = false;
        while (send_item < items && (send_item < k_segs || send_item - k_segs < recv_item)) {
          if (!empty(plan.send_range(send_item))) {
            if (!out.CanProduce()) {
              send_blocked = true;
              break;
            }
            produce(send_item);
          }
          ++send_item;
          progressed = true;
        }
        while (recv_item < items) {
          if (!empty(plan.recv_range(recv_item))) {
            // An all-gather item lands where the reduce-scatter sent from.
            if (!plan.reduce(recv_item) && send_item <= plan.scatter_item(recv_item)) {
              break;
            }
            if (!in.CanConsume()) break;
            consume();
          }
          ++recv_item;
          progressed = true;
        }
        if (send_item == items && recv_item == items) return absl::OkStatus();
        if (progressed) {
          if (absl::Now() < call.deadline) continue;
          return absl::DeadlineExceededError("");
        }
        absl::StatusOr<bool> ready;
        if (recv_item < items && !in.CanConsume()) {
          // Waiting for the previous rank; with a full channel to the next
          // one too, look at that one now and then.
          ready = ShmWait(&in.control().head, &in.control().head_sleepers, in.EmptyHead(),
                          call.deadline,
                          send_blocked ? absl::Now() + kShmBothBlockedSlice
                                       : absl::InfiniteFuture(),
                          aborted_, nullptr, &next_check, check);
        } else {
          // (FullTail: see shm_channel.h; a fresh tail.load() here can
          // wait forever for a ring the next rank has already emptied.)
          ready = ShmWait(&out.control().tail, &out.control().tail_sleepers, out.FullTail(),
                          call.deadline, absl::InfiniteFuture(),
                          aborted_, nullptr, &next_check, check);
        }
        if (!ready.ok()) return wait_error(ready.status());
        if (!*ready) return absl::DeadlineExceededError("");
      }
    }();
  } else {
    sender = std::thread([&] {
      auto fail = [&] {
        st.failed.store(true);
        in.WakeAll();
      };
      struct Ended {
        SenderState* st;
        ~Ended() {
          absl::MutexLock l(&st->mu);
          st->ended = true;
        }
      } ended{&st};
      // Only the next rank's hang-up matters here (this thread's caller
      // watches the others).
      absl::Time sender_check = absl::Now() + kShmLivenessSlice;
      auto check_next = [&]() -> absl::Status {
        pollfd pfd{fds_[next].get(), POLLRDHUP, 0};
        const timespec zero{0, 0};
        if (ppoll(&pfd, 1, &zero, nullptr) > 0 &&
            (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0 &&
            !out.CanProduce()) {
          return absl::UnavailableError("");
        }
        return absl::OkStatus();
      };
      for (size_t t = 0; t < items; ++t) {
        if (t >= k_segs) {
          const absl::Status r = st.AwaitReceived(t - k_segs, call.deadline);
          if (absl::IsDeadlineExceeded(r)) {
            st.timed_out = true;  // waiting for this rank's receiver
            fail();
          }
          if (!r.ok()) return;
        }
        if (!empty(plan.send_range(t))) {
          while (!out.CanProduce()) {
            st.blocked_on_socket.store(true);
            absl::StatusOr<bool> r =
                ShmWait(&out.control().tail, &out.control().tail_sleepers, out.FullTail(),
                        call.deadline, absl::InfiniteFuture(),
                        aborted_, &st.stop_flag, &sender_check, check_next);
            if (!r.ok()) {
              if (absl::IsUnavailable(r.status())) {
                st.hung_up = true;
                fail();
              } else if (absl::IsCancelled(r.status())) {
                fail();  // aborted
              }
              return;  // else stopped by the receiver
            }
            if (!*r) {
              st.timed_out = true;
              fail();
              return;
            }
            st.blocked_on_socket.store(false);
          }
          produce(t);
        }
        absl::MutexLock l(&st.mu);
        st.sent = t + 1;
      }
    });
    s = [&]() -> absl::Status {
      while (recv_item < items) {
        if (aborted_.load()) return PeerError(call, rank_, 0, true);
        if (!empty(plan.recv_range(recv_item))) {
          if (!plan.reduce(recv_item)) {
            // In place over the reduce-scatter's send item of the same
            // range: wait until the sender has copied it out.
            RETURN_IF_ERROR(st.AwaitSent(plan.scatter_item(recv_item), call.deadline));
          }
          while (!in.CanConsume()) {
            absl::StatusOr<bool> r =
                ShmWait(&in.control().head, &in.control().head_sleepers, in.EmptyHead(),
                        call.deadline, absl::InfiniteFuture(), aborted_, &st.failed,
                        &next_check, check);
            if (!r.ok()) return wait_error(r.status());
            if (!*r) return absl::DeadlineExceededError("");
          }
          consume();
        }
        ++recv_item;
        absl::MutexLock l(&st.mu);
        st.received = recv_item;
      }
      return absl::OkStatus();
    }();
    if (!s.ok()) {
      {
        absl::MutexLock l(&st.mu);
        st.stop = true;
      }
      st.stop_flag.store(true);
      out.WakeAll();
    }
    sender.join();
    if ((s.ok() || absl::IsAborted(s)) && st.hung_up) return PeerError(call, next, 0, false);
    if (s.ok() && st.timed_out) s = absl::DeadlineExceededError("");
    if (absl::IsAborted(s) && s.message().empty()) {
      s = aborted_.load() ? PeerError(call, rank_, 0, true) : absl::DeadlineExceededError("");
    }
  }
  if (absl::IsDeadlineExceeded(s) && s.message().empty()) {
    std::vector<Interest> want(size_);
    want[prev].read = recv_item < items;
    want[next].write = threaded ? st.blocked_on_socket.load() : send_blocked || send_item < items;
    // What the channels held: the state a hang left behind (issue 10).
    absl::Status t = TimedOut(call, want);
    size_t sent = send_item;
    if (threaded) {
      absl::MutexLock l(&st.mu);
      sent = st.sent;
    }
    return absl::Status(
        t.code(),
        absl::StrCat(t.message(), " [shared memory: ", recv_item, " of ", items,
                     " items received, ", sent, " sent; items in the ring to the next rank ",
                     out.head() - out.control().tail.load(), ", from the previous one ",
                     in.control().head.load() - in.tail(), " of ", ring_internal::kShmSlots,
                     "]"));
  }
  return s;
}

void RingCommunicator::RunSender(SenderState* st, int fd, const Call& call, size_t items,
                                 size_t k_segs,
                                 const std::function<std::pair<const char*, size_t>(size_t)>& item) {
  auto fail = [st] {
    st->failed.store(true);
    const uint64_t one = 1;
    (void)!write(st->wake_receiver.get(), &one, sizeof(one));
  };
  // Writes all of [p, p+len); false when it must stop (the reason recorded).
  auto write_all = [&](const char* p, size_t len) {
    while (len > 0) {
      const ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        p += w;
        len -= static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd pfds[2] = {{fd, POLLOUT, 0}, {st->wake_sender.get(), POLLIN, 0}};
        st->blocked_on_socket.store(true);
        ring_internal::PollTimeout timeout(call.deadline);
        const int rc = ppoll(pfds, 2, timeout.get(), nullptr);
        if (pfds[1].revents != 0) return false;  // the receiver stopped
        if (rc == 0 && absl::Now() >= call.deadline) {
          st->timed_out = true;
          fail();
          return false;
        }
        st->blocked_on_socket.store(false);
        continue;  // writable, hung up (the next send says) or EINTR
      }
      st->error = w < 0 ? errno : EPIPE;
      fail();
      return false;
    }
    return true;
  };
  // However it ends, a receiver waiting for `sent` must wake.
  struct Ended {
    SenderState* st;
    ~Ended() {
      absl::MutexLock l(&st->mu);
      st->ended = true;
    }
  } ended{st};
  if (!write_all(reinterpret_cast<const char*>(&call.header), kHeaderBytes)) return;
  for (size_t t = 0; t < items; ++t) {
    if (t >= k_segs) {
      const absl::Status r = st->AwaitReceived(t - k_segs, call.deadline);
      if (absl::IsDeadlineExceeded(r)) {
        st->timed_out = true;  // waiting for this rank's receiver, not the socket
        fail();
      }
      if (!r.ok()) return;
    }
    const auto [p, len] = item(t);
    if (len > 0 && !write_all(p, len)) return;
    absl::MutexLock l(&st->mu);
    st->sent = t + 1;
  }
}

absl::Status RingCommunicator::Broadcast(absl::Span<char> data, int root, absl::Time deadline) {
  Call call;
  call.header.op = Op::kBroadcast;
  call.header.dtype = DType::kBytes;
  call.header.root = root;
  call.header.bytes = data.size();
  call.deadline = deadline;
  RETURN_IF_ERROR(Begin(&call));
  if (root < 0 || root >= size_) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "Broadcast at ", PeerName(rank_), ": root ", root, " is not a rank of ", size_)));
  }
  if (size_ == 1) return absl::OkStatus();
  std::vector<Transfer> t(size_);
  if (rank_ == root) {
    for (int p = 0; p < size_; ++p) {
      if (p == rank_) continue;
      t[p].send = true;
      t[p].send_data = data.data();
      t[p].send_len = data.size();
    }
  } else {
    t[root].recv = true;
    t[root].recv_data = data.data();
    t[root].recv_len = data.size();
  }
  return Fail(Exchange(call, &t, nullptr));
}

absl::StatusOr<std::vector<std::string>> RingCommunicator::AllGather(absl::string_view mine,
                                                                     absl::Time deadline) {
  Call call;
  call.header.op = Op::kAllGather;
  call.header.dtype = DType::kBytes;
  call.header.bytes = mine.size();
  call.deadline = deadline;
  RETURN_IF_ERROR(Begin(&call));
  std::vector<std::string> result(size_);
  result[rank_] = std::string(mine);
  if (size_ == 1) return result;
  std::vector<Transfer> t(size_);
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    t[p].send = true;
    t[p].send_data = mine.data();
    t[p].send_len = mine.size();
    t[p].recv = true;
    t[p].size_known = false;
  }
  RETURN_IF_ERROR(Fail(Exchange(call, &t, [this, &result](int p, Transfer* x) {
    // The one frame whose size the receiver does not know: bounded, so a
    // garbled or hostile header cannot make this rank allocate at will.
    if (x->recv_header.bytes > kMaxAllGatherBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "AllGather at ", PeerName(rank_), ": ", PeerName(p), " sends ", x->recv_header.bytes,
          " bytes, over the limit of ", kMaxAllGatherBytes));
    }
    result[p].resize(x->recv_header.bytes);
    x->recv_data = result[p].data();
    x->recv_len = result[p].size();
    return absl::OkStatus();
  })));
  return result;
}

absl::Status RingCommunicator::Barrier(absl::Time deadline) {
  Call call;
  call.header.op = Op::kBarrier;
  call.deadline = deadline;
  RETURN_IF_ERROR(Begin(&call));
  if (size_ == 1) return absl::OkStatus();
  std::vector<Transfer> t(size_);
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    t[p].send = true;
    t[p].recv = true;
  }
  return Fail(Exchange(call, &t, nullptr));
}

// ---------------------------------------------------------------------------
// Rendezvous.

absl::Status ValidateOptions(const RingOptions& o) {
  if (o.size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("ring size must be >= 1, got ", o.size));
  }
  if (o.rank < 0 || o.rank >= o.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring rank ", o.rank, " is not in [0, ", o.size, ")"));
  }
  if (!o.peer_names.empty() && static_cast<int>(o.peer_names.size()) != o.size) {
    return absl::InvalidArgumentError(absl::StrCat("ring peer_names has ", o.peer_names.size(),
                                                   " names for ", o.size, " ranks"));
  }
  if (o.size > 1 && o.store == nullptr) {
    return absl::InvalidArgumentError("ring options: store is null");
  }
  if (o.prefix.empty()) return absl::InvalidArgumentError("ring options: prefix is empty");
  if (o.generation < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring generation must be >= 0, got ", o.generation));
  }
  if (o.host.empty()) return absl::InvalidArgumentError("ring options: host is empty");
  return absl::OkStatus();
}

class Rendezvous {
 public:
  explicit Rendezvous(const RingOptions& o) : o_(o), fds_(o.size) {
    hello_.prefix_hash = Fnv1a(o.prefix);
    hello_.generation = o.generation;
    hello_.rank = o.rank;
    hello_.size = o.size;
  }

  absl::StatusOr<std::vector<Fd>> Run() {
    int port = 0;
    ASSIGN_OR_RETURN(Fd listener, ring_internal::Listen(o_.host, &port));
    if (o_.token.empty() && !IsLoopbackAddress(o_.host)) {
      spdlog::warn("SECURITY WARNING: the ring data plane of {} listens on {}:{} (not "
                   "loopback) without a job token: any process that reaches it can try to join "
                   "the ring. Set security.token_file in the job file.",
                   Name(o_.rank), o_.host, port);
    }
    const std::string host = o_.host.find(':') != std::string::npos && o_.host.front() != '['
                                 ? absl::StrCat("[", o_.host, "]")
                                 : o_.host;
    RETURN_IF_ERROR(Annotate(o_.store->Set(AddrKey(o_, o_.rank), absl::StrCat(host, ":", port),
                                           o_.deadline)));
    // Connect to every lower rank (the kernel completes the connection
    // from its listen backlog) and send the hello; then accept every
    // higher rank and answer it; then read the lower ranks' answers. No
    // rank waits for an answer before it has answered its own peers, so
    // this cannot deadlock.
    std::vector<std::string> addresses;
    if (o_.rank > 0) {
      std::vector<std::string> keys;
      for (int r = 0; r < o_.rank; ++r) keys.push_back(AddrKey(o_, r));
      absl::StatusOr<std::vector<std::string>> got = o_.store->Wait(keys, o_.deadline);
      if (!got.ok()) return MissingAddresses(got.status(), keys);
      addresses = *std::move(got);
    }
    for (int r = 0; r < o_.rank; ++r) {
      absl::StatusOr<Fd> fd = ring_internal::Connect(addresses[r], o_.deadline, Name(r));
      if (!fd.ok()) return Annotate(fd.status());
      fds_[r] = *std::move(fd);
      RETURN_IF_ERROR(SendHello(r));
    }
    for (int waiting = o_.size - 1 - o_.rank; waiting > 0;) {
      absl::StatusOr<Fd> fd = ring_internal::Accept(listener.get(), o_.deadline);
      if (absl::IsDeadlineExceeded(fd.status())) return NeverConnected();
      if (!fd.ok()) return Annotate(fd.status());
      if (AcceptPeer(*std::move(fd))) --waiting;
    }
    for (int r = 0; r < o_.rank; ++r) RETURN_IF_ERROR(ReadReply(r, addresses[r]));
    RETURN_IF_ERROR(NegotiateSharedMemory());
    return std::move(fds_);
  }

  // The shared-memory channels (after Run; null: TCP).
  std::unique_ptr<ring_internal::ShmChannel> shm_out_;
  std::unique_ptr<ring_internal::ShmChannel> shm_in_;

 private:
  // The shared-memory negotiation (ring_communicator.h), after every
  // connection is authenticated. Never fails the ring for want of shared
  // memory (it stays on TCP); fails like the rendezvous when a peer's
  // connection does (deadline, hang-up).
  absl::Status NegotiateSharedMemory() {
    if (o_.size < 2) return absl::OkStatus();
    const int r = o_.rank;
    const int next = (r + 1) % o_.size;
    const int prev = (r + o_.size - 1) % o_.size;
    // This rank's edges, by edge number (the sending rank): out = r, in =
    // prev; an edge's creator is its higher rank (the one that connected).
    struct Edge {
      int number;
      int peer;
      bool out;
      std::unique_ptr<ring_internal::ShmChannel> channel;
      std::string name;  // the creator's segment, until unlinked
      std::string why;   // why not shared memory
    };
    std::vector<Edge> edges;
    edges.push_back(Edge{r, next, true, nullptr, "", ""});
    edges.push_back(Edge{prev, prev, false, nullptr, "", ""});
    std::sort(edges.begin(), edges.end(),
              [](const Edge& a, const Edge& b) { return a.number < b.number; });
    auto creator = [r](const Edge& e) { return r > e.peer; };
    // Whatever happens, no name stays linked.
    struct UnlinkAll {
      std::vector<Edge>* edges;
      ~UnlinkAll() {
        for (Edge& e : *edges) ring_internal::ShmChannel::Unlink(e.name);
      }
    } unlink_all{&edges};
    const std::string boot_id = ring_internal::BootId();
    // 1. Offers, on the edges this rank creates.
    for (Edge& e : edges) {
      if (!creator(e)) continue;
      ShmOffer offer;
      offer.edge = e.number;
      if (!o_.shared_memory) {
        e.why = "off (distribution.ring_shared_memory / ESTUARY_RING_SHM)";
      } else if (boot_id.empty()) {
        e.why = "no boot id (/proc/sys/kernel/random/boot_id)";
      } else if (boot_id.size() >= sizeof(offer.boot_id)) {
        e.why = "odd boot id";
      } else {
        absl::StatusOr<std::string> cookie = RandomBytes(offer.cookie.size());
        if (cookie.ok()) {
          std::memcpy(offer.cookie.data(), cookie->data(), offer.cookie.size());
          absl::StatusOr<std::unique_ptr<ring_internal::ShmChannel>> c =
              ring_internal::ShmChannel::Create(offer.cookie, &e.name);
          if (c.ok()) {
            e.channel = *std::move(c);
            offer.ok = 1;
            std::strncpy(offer.boot_id, boot_id.c_str(), sizeof(offer.boot_id) - 1);
            std::strncpy(offer.name, e.name.c_str(), sizeof(offer.name) - 1);
          } else {
            e.why = absl::StrCat("cannot create a segment: ", c.status().message());
          }
        } else {
          e.why = std::string(cookie.status().message());
        }
      }
      RETURN_IF_ERROR(Annotate(ring_internal::WriteFully(fds_[e.peer].get(), &offer,
                                                         sizeof(offer), o_.deadline,
                                                         Name(e.peer))));
    }
    // 2. Answers, on the edges the peers create.
    for (Edge& e : edges) {
      if (creator(e)) continue;
      ShmOffer offer;
      RETURN_IF_ERROR(Annotate(ring_internal::ReadFully(fds_[e.peer].get(), &offer, sizeof(offer),
                                                        o_.deadline, Name(e.peer))));
      offer.boot_id[sizeof(offer.boot_id) - 1] = '\0';
      offer.name[sizeof(offer.name) - 1] = '\0';
      if (offer.magic != kShmOfferMagic || offer.edge != e.number) {
        return absl::InternalError(absl::StrCat(Where(), ": garbled shared-memory offer from ",
                                                Name(e.peer)));
      }
      ShmAnswer answer;
      answer.edge = e.number;
      if (offer.ok == 0) {
        e.why = "the peer offered none";
      } else if (!o_.shared_memory) {
        e.why = "off (distribution.ring_shared_memory / ESTUARY_RING_SHM)";
      } else if (boot_id.empty() || boot_id != offer.boot_id) {
        e.why = "another host (boot ids differ)";
      } else if (o_.shm_fail_open_for_testing) {
        e.why = "cannot open the peer's segment (test)";
      } else {
        absl::StatusOr<std::unique_ptr<ring_internal::ShmChannel>> c =
            ring_internal::ShmChannel::Open(offer.name, offer.cookie);
        if (c.ok()) {
          e.channel = *std::move(c);
          answer.ok = 1;
        } else {
          e.why = absl::StrCat("cannot open the peer's segment (another container?): ",
                               c.status().message());
        }
      }
      RETURN_IF_ERROR(Annotate(ring_internal::WriteFully(fds_[e.peer].get(), &answer,
                                                         sizeof(answer), o_.deadline,
                                                         Name(e.peer))));
    }
    // 3. The answers to this rank's offers.
    for (Edge& e : edges) {
      if (!creator(e)) continue;
      ShmAnswer answer;
      RETURN_IF_ERROR(Annotate(ring_internal::ReadFully(fds_[e.peer].get(), &answer,
                                                        sizeof(answer), o_.deadline,
                                                        Name(e.peer))));
      if (answer.magic != kShmAnswerMagic || answer.edge != e.number) {
        return absl::InternalError(absl::StrCat(Where(), ": garbled shared-memory answer from ",
                                                Name(e.peer)));
      }
      ring_internal::ShmChannel::Unlink(e.name);
      e.name.clear();
      if (answer.ok == 0 && e.channel != nullptr) {
        e.channel.reset();
        e.why = "the peer could not map it (another host or container?)";
      }
    }
    // 4. Every rank's vote: shared memory only if every edge has it.
    ShmVote vote;
    vote.ok = edges[0].channel != nullptr && edges[1].channel != nullptr;
    for (int p = 0; p < o_.size; ++p) {
      if (p == r) continue;
      RETURN_IF_ERROR(Annotate(ring_internal::WriteFully(fds_[p].get(), &vote, sizeof(vote),
                                                         o_.deadline, Name(p))));
    }
    std::vector<std::string> without;
    for (int p = 0; p < o_.size; ++p) {
      if (p == r) continue;
      ShmVote theirs;
      RETURN_IF_ERROR(Annotate(ring_internal::ReadFully(fds_[p].get(), &theirs, sizeof(theirs),
                                                        o_.deadline, Name(p))));
      if (theirs.magic != kShmVoteMagic) {
        return absl::InternalError(absl::StrCat(Where(), ": garbled shared-memory vote from ",
                                                Name(p)));
      }
      if (theirs.ok == 0) without.push_back(Name(p));
    }
    if (vote.ok && without.empty()) {
      for (Edge& e : edges) (e.out ? shm_out_ : shm_in_) = std::move(e.channel);
      spdlog::info("{}: all-reduce data to {} and from {} through shared memory", Where(),
                   Name(next), Name(prev));
      return absl::OkStatus();
    }
    std::string why;
    for (const Edge& e : edges) {
      if (e.channel == nullptr) {
        absl::StrAppend(&why, why.empty() ? "" : "; ", e.out ? "to " : "from ", Name(e.peer),
                        ": ", e.why);
      }
    }
    if (why.empty()) {
      why = absl::StrCat("not every edge of the ring has it (",
                         absl::StrJoin(without, ", "), " without)");
    }
    spdlog::info("{}: all-reduce data over TCP ({})", Where(), why);
    return absl::OkStatus();
  }


  std::string Name(int r) const { return NameOf(o_.peer_names, r); }
  std::string Where() const {
    return absl::StrCat("ring rendezvous of ", Name(o_.rank), " (generation ", o_.generation,
                        ", ", o_.size, " ranks)");
  }
  absl::Status Annotate(const absl::Status& s) const {
    if (s.ok()) return s;
    return absl::Status(s.code(), absl::StrCat(Where(), ": ", s.message()));
  }

  absl::Status MissingAddresses(const absl::Status& s, const std::vector<std::string>& keys) {
    if (!absl::IsDeadlineExceeded(s)) return Annotate(s);
    std::vector<std::string> missing;
    for (size_t r = 0; r < keys.size(); ++r) {
      if (absl::IsNotFound(o_.store->Get(keys[r], absl::Now() + absl::Seconds(1)).status())) {
        missing.push_back(Name(static_cast<int>(r)));
      }
    }
    return absl::DeadlineExceededError(
        absl::StrCat(Where(), ": ", missing.empty() ? "some ranks" : absl::StrJoin(missing, ", "),
                     " never published an address (", o_.prefix, "/", o_.generation,
                     "/addr/<rank>) by the deadline"));
  }

  absl::Status NeverConnected() const {
    std::vector<std::string> missing;
    for (int r = o_.rank + 1; r < o_.size; ++r) {
      if (!fds_[r].valid()) missing.push_back(Name(r));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        Where(), ": ", absl::StrJoin(missing, ", "), " never connected by the deadline"));
  }

  // A fresh nonce (the challenge this rank sends, or the one its hello
  // carries).
  static absl::Status NewNonce(uint8_t* out) {
    ASSIGN_OR_RETURN(std::string nonce, RandomBytes(kNonceBytes));
    std::memcpy(out, nonce.data(), kNonceBytes);
    return absl::OkStatus();
  }

  // Connecting to lower rank r: reads its challenge, sends the hello with
  // this rank's nonce and proof of the token.
  absl::Status SendHello(int r) {
    Challenge challenge;
    RETURN_IF_ERROR(Annotate(ring_internal::ReadFully(fds_[r].get(), &challenge,
                                                      sizeof(challenge), o_.deadline, Name(r))));
    if (challenge.magic != kChallengeMagic || challenge.version != kProtocolVersion) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(), ": ", Name(r), " is not an Estuary ring peer of protocol ",
                       kProtocolVersion, " (a stale address, or another program?)"));
    }
    Hello hello = hello_;
    RETURN_IF_ERROR(Annotate(NewNonce(hello.nonce)));
    std::memcpy(sent_nonces_[r].data(), hello.nonce, kNonceBytes);
    const Sha256Digest mac = HelloMac(o_.token, kConnectRole, challenge.nonce, hello);
    std::memcpy(hello.mac, mac.data(), mac.size());
    return Annotate(
        ring_internal::WriteFully(fds_[r].get(), &hello, sizeof(hello), o_.deadline, Name(r)));
  }

  // Challenges a higher rank, reads its hello and answers it. Returns
  // whether it joined (a refused or broken connection is dropped, a refusal
  // logged; the rendezvous goes on).
  bool AcceptPeer(Fd fd) {
    const absl::Time hello_deadline = std::min(o_.deadline, absl::Now() + absl::Seconds(10));
    const std::string peer = PeerAddress(fd.get());
    Challenge challenge;
    if (!NewNonce(challenge.nonce).ok() ||
        !ring_internal::WriteFully(fd.get(), &challenge, sizeof(challenge), hello_deadline,
                                   "a connecting peer")
             .ok()) {
      return false;
    }
    Hello h;
    if (!ring_internal::ReadFully(fd.get(), &h, sizeof(h), hello_deadline, "a connecting peer")
             .ok()) {
      return false;
    }
    HelloReply reply;
    reply.hello = hello_;
    std::string reason;
    if (h.magic != kHelloMagic || h.version != kProtocolVersion) {
      reason = "not an Estuary ring peer of this protocol version";
    } else if (!MacMatches(HelloMac(o_.token, kConnectRole, challenge.nonce, h), h.mac)) {
      reason = o_.token.empty()
                   ? "wrong job token: this ring has none (security.token_file) and the peer "
                     "sent one"
                   : "wrong job token: the peer does not hold this job's token "
                     "(security.token_file)";
    } else if (h.prefix_hash != hello_.prefix_hash) {
      reason = absl::StrCat("it belongs to another group (prefix differs from '", o_.prefix, "')");
    } else if (h.generation != o_.generation) {
      reason = absl::StrCat("it is at generation ", h.generation, ", this ring at ",
                            o_.generation);
    } else if (h.size != o_.size) {
      reason = absl::StrCat("it counts ", h.size, " ranks, this ring ", o_.size);
    } else if (h.rank <= o_.rank || h.rank >= o_.size) {
      reason = absl::StrCat("rank ", h.rank, " must not connect to rank ", o_.rank);
    } else if (fds_[h.rank].valid()) {
      reason = absl::StrCat("rank ", h.rank, " is already connected");
    }
    if (!reason.empty()) {
      reply.code = 1;
      std::strncpy(reply.reason, reason.c_str(), sizeof(reply.reason) - 1);
      spdlog::warn("{}: refused a connection from {} (claims rank {}): {}", Where(), peer, h.rank,
                   reason);
    } else {
      if (!NewNonce(reply.hello.nonce).ok()) return false;
      const Sha256Digest mac = HelloMac(o_.token, kAcceptRole, h.nonce, reply.hello);
      std::memcpy(reply.hello.mac, mac.data(), mac.size());
    }
    const absl::Status w = ring_internal::WriteFully(fd.get(), &reply, sizeof(reply),
                                                     hello_deadline, "a connecting peer");
    if (!reason.empty() || !w.ok()) return false;
    fds_[h.rank] = std::move(fd);
    return true;
  }

  absl::Status ReadReply(int r, const std::string& address) {
    HelloReply reply;
    RETURN_IF_ERROR(Annotate(ring_internal::ReadFully(fds_[r].get(), &reply, sizeof(reply),
                                                      o_.deadline, Name(r))));
    reply.reason[sizeof(reply.reason) - 1] = '\0';
    if (reply.code != 0) {
      const absl::StatusCode code = absl::StartsWith(reply.reason, "wrong job token")
                                        ? absl::StatusCode::kUnauthenticated
                                        : absl::StatusCode::kInvalidArgument;
      return absl::Status(code, absl::StrCat(Where(), ": ", Name(r), " at ", address,
                                             " refused the connection: ", reply.reason));
    }
    const Hello& h = reply.hello;
    if (!MacMatches(HelloMac(o_.token, kAcceptRole, sent_nonces_[r].data(), h), h.mac)) {
      return absl::UnauthenticatedError(absl::StrCat(
          Where(), ": ", Name(r), " at ", address,
          " answered without this job's token (wrong job token, security.token_file): "
          "a stale address, or a process of another job?"));
    }
    if (h.magic != kHelloMagic || h.prefix_hash != hello_.prefix_hash ||
        h.generation != o_.generation || h.rank != r || h.size != o_.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(), ": the address of ", Name(r), " (", address, ") answered as rank ", h.rank,
          " of ", h.size, " at generation ", h.generation, " (a stale address?)"));
    }
    return absl::OkStatus();
  }

  const RingOptions& o_;
  Hello hello_;
  std::vector<Fd> fds_;
  // Per lower rank: the nonce this rank's hello carried.
  std::vector<std::array<uint8_t, kNonceBytes>> sent_nonces_{
      static_cast<size_t>(o_.size)};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateRingCommunicator(const RingOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  std::vector<Fd> fds(options.size);
  std::unique_ptr<ring_internal::ShmChannel> shm_out, shm_in;
  if (options.size > 1) {
    Rendezvous rendezvous(options);
    ASSIGN_OR_RETURN(fds, rendezvous.Run());
    shm_out = std::move(rendezvous.shm_out_);
    shm_in = std::move(rendezvous.shm_in_);
  }
  return std::unique_ptr<Communicator>(
      new RingCommunicator(options, std::move(fds), std::move(shm_out), std::move(shm_in)));
}

std::string RingDataPath(const Communicator& c) {
  const auto* ring = dynamic_cast<const RingCommunicator*>(&c);
  if (ring == nullptr) return "";
  return ring->shared_memory() ? "shared memory" : "tcp";
}

}  // namespace estuary
