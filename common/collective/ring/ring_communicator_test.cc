// The ring in threads over an in-memory Store: its own rendezvous and
// fault behaviour (the shared conformance suite is ring_conformance_test).
#include "common/collective/ring/ring_communicator.h"

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <functional>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/coordination/in_memory_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::Time In(absl::Duration d) { return absl::Now() + d; }
absl::Time Later() { return In(absl::Seconds(60)); }

std::vector<TaskId> Tasks(int n) {
  std::vector<TaskId> t;
  for (int i = 0; i < n; ++i) t.push_back(TaskId{"worker", i});
  return t;
}

// `world` ranks on threads, each with its own Store of one coordination.
class Group {
 public:
  // `tweak` adjusts each rank's options.
  explicit Group(int world, int64_t generation = 0,
                 std::function<void(RingOptions&)> tweak = nullptr)
      : coordination_(Tasks(world)), tweak_(std::move(tweak)) {
    for (int r = 0; r < world; ++r) {
      auto s = coordination_.Connect(TaskId{"worker", r});
      EXPECT_TRUE(s.ok()) << s.status();
      stores_.push_back(*std::move(s));
    }
    comms_ = Create(generation);
  }

  RingOptions Options(int rank, int64_t generation) {
    RingOptions o;
    o.store = stores_[rank].get();
    o.generation = generation;
    o.rank = rank;
    o.size = static_cast<int>(stores_.size());
    for (int r = 0; r < o.size; ++r) o.peer_names.push_back(absl::StrCat("worker:", r));
    o.deadline = Later();
    o.shared_memory = true;  // what most tests here exercise
    if (tweak_) tweak_(o);
    return o;
  }

  std::vector<std::unique_ptr<Communicator>> Create(int64_t generation) {
    const int world = static_cast<int>(stores_.size());
    std::vector<std::unique_ptr<Communicator>> comms(world);
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      threads.emplace_back([&, r] {
        auto c = CreateRingCommunicator(Options(r, generation));
        EXPECT_TRUE(c.ok()) << c.status();
        if (c.ok()) comms[r] = *std::move(c);
      });
    }
    for (auto& t : threads) t.join();
    return comms;
  }

  Communicator& operator[](int r) { return *comms_[r]; }
  int size() const { return static_cast<int>(comms_.size()); }
  std::unique_ptr<Communicator>& slot(int r) { return comms_[r]; }

  // Runs fn(rank) on a thread per rank; returns the statuses.
  std::vector<absl::Status> Run(const std::function<absl::Status(int)>& fn) {
    std::vector<absl::Status> out(size());
    std::vector<std::thread> threads;
    for (int r = 0; r < size(); ++r) threads.emplace_back([&, r] { out[r] = fn(r); });
    for (auto& t : threads) t.join();
    return out;
  }

 private:
  InMemoryCoordination coordination_;
  std::function<void(RingOptions&)> tweak_;
  std::vector<std::unique_ptr<InMemoryStore>> stores_;
  std::vector<std::unique_ptr<Communicator>> comms_;
};

void CheckAllReduce(int world, size_t n) {
  SCOPED_TRACE(absl::StrCat("world ", world, ", ", n, " floats"));
  Group g(world);
  std::vector<std::vector<float>> data(world, std::vector<float>(n));
  std::vector<double> expect(n, 0);
  std::mt19937 rng(n * 31 + world);
  std::uniform_real_distribution<float> dist(-1, 1);
  for (int r = 0; r < world; ++r) {
    for (size_t i = 0; i < n; ++i) {
      data[r][i] = dist(rng);
      expect[i] += data[r][i];
    }
  }
  auto st = g.Run([&](int r) { return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, Later()); });
  for (const auto& s : st) ASSERT_TRUE(s.ok()) << s;
  for (int r = 1; r < world; ++r) {
    if (n > 0) {
      ASSERT_EQ(std::memcmp(data[r].data(), data[0].data(), n * sizeof(float)), 0) << "rank " << r;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(data[0][i], expect[i], 1e-5) << "element " << i;
  }
}

TEST(RingCommunicatorTest, AllReduceSizes) {
  for (int world : {1, 2, 3, 4}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{1000}, size_t{16384},
                     size_t{100003}, size_t{(1 << 20) + 3}}) {
      CheckAllReduce(world, n);
    }
  }
}

TEST(RingCommunicatorTest, Int64MeanAndOthers) {
  Group g(3);
  std::vector<std::vector<int64_t>> v(3, std::vector<int64_t>(70000));
  for (int r = 0; r < 3; ++r) {
    for (size_t i = 0; i < v[r].size(); ++i) v[r][i] = static_cast<int64_t>(i) * (r + 1) - 7;
  }
  auto st = g.Run([&](int r) -> absl::Status {
    if (absl::Status s = g[r].AllReduce(absl::MakeSpan(v[r]), ReduceOp::kMean, Later()); !s.ok()) {
      return s;
    }
    std::string buf = r == 1 ? "hello from 1" : std::string(12, '\0');
    if (absl::Status s = g[r].Broadcast(absl::MakeSpan(buf), 1, Later()); !s.ok()) return s;
    if (buf != "hello from 1") return absl::InternalError("broadcast: " + buf);
    auto all = g[r].AllGather(std::string(r, 'x'), Later());
    if (!all.ok()) return all.status();
    for (int p = 0; p < 3; ++p) {
      if ((*all)[p] != std::string(p, 'x')) return absl::InternalError("allgather");
    }
    return g[r].Barrier(Later());
  });
  for (const auto& s : st) ASSERT_TRUE(s.ok()) << s;
  for (size_t i = 0; i < v[0].size(); ++i) {
    const int64_t sum = static_cast<int64_t>(i) * 6 - 21;
    ASSERT_EQ(v[0][i], sum / 3);
    ASSERT_EQ(v[2][i], sum / 3);
  }
}

TEST(RingCommunicatorTest, StalledRankIsNamed) {
  Group g(3);
  std::vector<float> x(100000, 1.f);
  std::vector<std::vector<float>> data(3, x);
  auto st = g.Run([&](int r) -> absl::Status {
    if (r == 2) return absl::OkStatus();  // never calls
    return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, In(absl::Seconds(2)));
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(st[r].code(), absl::StatusCode::kDeadlineExceeded) << st[r];
    EXPECT_THAT(std::string(st[r].message()), HasSubstr("stalled: worker:2 (rank 2)")) << st[r];
  }
  // Broken afterwards.
  EXPECT_EQ(g[0].Barrier(Later()).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RingCommunicatorTest, StalledRankIsNamedInABigCall) {
  // Big enough for the ring's sender thread.
  Group g(3);
  std::vector<std::vector<float>> data(3, std::vector<float>(3 << 20, 1.f));
  auto st = g.Run([&](int r) -> absl::Status {
    if (r == 1) return absl::OkStatus();  // never calls
    return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, In(absl::Seconds(2)));
  });
  for (int r : {0, 2}) {
    EXPECT_EQ(st[r].code(), absl::StatusCode::kDeadlineExceeded) << st[r];
    EXPECT_THAT(std::string(st[r].message()), HasSubstr("stalled: worker:1 (rank 1)")) << st[r];
  }
}

TEST(RingCommunicatorTest, BigCallsInARow) {
  // The sender thread's hand-offs, repeatedly, with odd sizes.
  for (int world : {2, 3}) {
    Group g(world);
    for (size_t n : {size_t{(1 << 20) + 7}, size_t{3 << 20}, size_t{(5 << 20) + 1}}) {
      std::vector<std::vector<float>> data(world, std::vector<float>(n));
      for (int r = 0; r < world; ++r) {
        for (size_t i = 0; i < n; ++i) data[r][i] = static_cast<float>((i + 3 * r) % 1000);
      }
      auto st = g.Run([&](int r) {
        return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, Later());
      });
      for (const auto& s : st) ASSERT_TRUE(s.ok()) << s;
      for (int r = 0; r < world; ++r) {
        for (size_t i = 0; i < n; ++i) {
          float expect = 0;
          for (int q = 0; q < world; ++q) expect += static_cast<float>((i + 3 * q) % 1000);
          ASSERT_EQ(data[r][i], expect) << "world " << world << " rank " << r << " element " << i;
        }
      }
    }
  }
}

TEST(RingCommunicatorTest, DeadPeerIsNamedByEveryRank) {
  // Rank 2 of 4 goes away mid-call (abort shuts its sockets, like a crash):
  // rank 0, not its neighbour, must name it too, quickly.
  Group g(4);
  std::vector<std::vector<float>> data(4, std::vector<float>(1 << 20, 1.f));
  const absl::Time start = absl::Now();
  auto st = g.Run([&](int r) -> absl::Status {
    if (r == 2) {
      g[2].Abort();
      return absl::OkStatus();
    }
    return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, In(absl::Seconds(60)));
  });
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  for (int r : {0, 1, 3}) {
    EXPECT_EQ(st[r].code(), absl::StatusCode::kUnavailable) << st[r];
    EXPECT_THAT(std::string(st[r].message()), HasSubstr("worker:2 (rank 2)")) << st[r];
  }
  EXPECT_EQ(g[2].Barrier(Later()).code(), absl::StatusCode::kCancelled);
}

TEST(RingCommunicatorTest, PeerThatLeftCleanlyIsNotAnError) {
  // Rank 3 finishes the last call and destroys its communicator while the
  // others still finish theirs: not a failure.
  Group g(4);
  for (int round = 0; round < 5; ++round) {
    std::vector<std::vector<float>> data(4, std::vector<float>(300000, 1.f));
    auto st = g.Run([&](int r) -> absl::Status {
      absl::Status s = g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, Later());
      return s;
    });
    for (const auto& s : st) ASSERT_TRUE(s.ok()) << s;
  }
  std::vector<float> last(4 << 10, 1.f);
  std::vector<std::vector<float>> data(4, last);
  auto st = g.Run([&](int r) -> absl::Status {
    absl::Status s = g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, Later());
    if (r == 3) g.slot(3).reset();
    return s;
  });
  for (const auto& s : st) EXPECT_TRUE(s.ok()) << s;
}

TEST(RingCommunicatorTest, MismatchIsInvalidArgument) {
  Group g(2);
  std::vector<float> a(10), b(11);
  auto st = g.Run([&](int r) -> absl::Status {
    return g[r].AllReduce(absl::MakeSpan(r == 0 ? a : b), ReduceOp::kSum, In(absl::Seconds(20)));
  });
  EXPECT_EQ(st[0].code(), absl::StatusCode::kInvalidArgument) << st[0];
  EXPECT_THAT(std::string(st[0].message()), HasSubstr("11 elements")) << st[0];
  EXPECT_EQ(g[0].Barrier(Later()).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RingCommunicatorTest, AbortCancelsACallInFlight) {
  Group g(2);
  std::vector<float> x(1000);
  std::thread aborter([&] {
    absl::SleepFor(absl::Milliseconds(200));  // let the call block first
    g[0].Abort();
  });
  absl::Status s = g[0].AllReduce(absl::MakeSpan(x), ReduceOp::kSum, Later());
  aborter.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_EQ(g[0].Barrier(Later()).code(), absl::StatusCode::kCancelled);
  // The peer sees it close (its first call may still complete with what
  // rank 0 sent before the abort).
  absl::Status peer = g[1].AllReduce(absl::MakeSpan(x), ReduceOp::kSum, Later());
  if (peer.ok()) peer = g[1].AllReduce(absl::MakeSpan(x), ReduceOp::kSum, Later());
  EXPECT_EQ(peer.code(), absl::StatusCode::kUnavailable) << peer;
  EXPECT_THAT(std::string(peer.message()), HasSubstr("worker:0 (rank 0)"));
}

TEST(RingCommunicatorTest, RendezvousRefusesAnotherGeneration) {
  InMemoryCoordination coordination(Tasks(2));
  auto s0 = coordination.Connect(TaskId{"worker", 0});
  auto s1 = coordination.Connect(TaskId{"worker", 1});
  ASSERT_TRUE(s0.ok() && s1.ok());
  // Rank 0 of generation 1 publishes; a stale rank 1 of generation 0 finds
  // that address under generation 0's key (as a reused address would).
  RingOptions o0;
  o0.store = s0->get();
  o0.generation = 1;
  o0.rank = 0;
  o0.size = 2;
  o0.deadline = In(absl::Seconds(3));
  absl::StatusOr<std::unique_ptr<Communicator>> c0;
  std::thread t0([&] { c0 = CreateRingCommunicator(o0); });
  auto addr = (*s1)->Wait({"estuary/collective/1/addr/0"}, Later());
  ASSERT_TRUE(addr.ok()) << addr.status();
  ASSERT_TRUE((*s1)->Set("estuary/collective/0/addr/0", (*addr)[0], Later()).ok());
  RingOptions o1 = o0;
  o1.store = s1->get();
  o1.generation = 0;
  o1.rank = 1;
  auto c1 = CreateRingCommunicator(o1);
  t0.join();
  EXPECT_EQ(c1.status().code(), absl::StatusCode::kInvalidArgument) << c1.status();
  EXPECT_THAT(std::string(c1.status().message()), HasSubstr("generation 0, this ring at 1"));
  EXPECT_EQ(c0.status().code(), absl::StatusCode::kDeadlineExceeded) << c0.status();
  EXPECT_THAT(std::string(c0.status().message()), HasSubstr("rank 1 never connected"));
}

// Two ranks holding the job token; a process with another token dials rank
// 0 first, claiming rank 1: it is refused (Unauthenticated, both sides say
// "wrong job token"), and the real rank 1 still joins.
TEST(RingCommunicatorTest, HandshakeRefusesAWrongTokenAndTheRingGoesOn) {
  InMemoryCoordination coordination(Tasks(2));
  auto s0 = coordination.Connect(TaskId{"worker", 0});
  auto s1 = coordination.Connect(TaskId{"worker", 1});
  ASSERT_TRUE(s0.ok() && s1.ok());
  RingOptions o0;
  o0.store = s0->get();
  o0.rank = 0;
  o0.size = 2;
  o0.deadline = Later();
  o0.token = "the-job-token-0123456789";
  absl::StatusOr<std::unique_ptr<Communicator>> c0;
  std::thread t0([&] { c0 = CreateRingCommunicator(o0); });

  RingOptions intruder = o0;
  intruder.store = s1->get();
  intruder.rank = 1;
  intruder.token = "a-guessed-token";
  auto bad = CreateRingCommunicator(intruder);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("refused the connection: wrong job token"));

  RingOptions missing = intruder;  // no token at all
  missing.token.clear();
  auto none = CreateRingCommunicator(missing);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated) << none.status();

  RingOptions o1 = intruder;
  o1.token = o0.token;
  auto c1 = CreateRingCommunicator(o1);
  t0.join();
  ASSERT_TRUE(c0.ok()) << c0.status();
  ASSERT_TRUE(c1.ok()) << c1.status();
  std::vector<float> a = {1, 2}, b = {10, 20};
  absl::Status r0;
  std::thread t([&] { r0 = (*c0)->AllReduce(absl::MakeSpan(a), ReduceOp::kSum, Later()); });
  EXPECT_TRUE((*c1)->AllReduce(absl::MakeSpan(b), ReduceOp::kSum, Later()).ok());
  t.join();
  EXPECT_TRUE(r0.ok()) << r0;
  EXPECT_EQ(a[1], 22);
  EXPECT_EQ(b[0], 11);
}

// The connecting rank checks the accepting one too: an address that
// answers without the token is refused there.
TEST(RingCommunicatorTest, HandshakeRefusesAnAcceptorWithoutTheToken) {
  InMemoryCoordination coordination(Tasks(2));
  auto s0 = coordination.Connect(TaskId{"worker", 0});
  auto s1 = coordination.Connect(TaskId{"worker", 1});
  ASSERT_TRUE(s0.ok() && s1.ok());
  RingOptions o0;
  o0.store = s0->get();
  o0.rank = 0;
  o0.size = 2;
  o0.deadline = In(absl::Seconds(3));
  o0.token = "not-this-job";
  absl::StatusOr<std::unique_ptr<Communicator>> c0;
  std::thread t0([&] { c0 = CreateRingCommunicator(o0); });
  RingOptions o1 = o0;
  o1.store = s1->get();
  o1.rank = 1;
  o1.token = "the-job-token-0123456789";
  auto c1 = CreateRingCommunicator(o1);
  t0.join();
  // The acceptor refuses first (the connector's proof fails its check).
  EXPECT_EQ(c1.status().code(), absl::StatusCode::kUnauthenticated) << c1.status();
  EXPECT_THAT(std::string(c1.status().message()), HasSubstr("wrong job token"));
  EXPECT_EQ(c0.status().code(), absl::StatusCode::kDeadlineExceeded) << c0.status();
}

TEST(RingCommunicatorTest, RendezvousNamesMissingRanks) {
  InMemoryCoordination coordination(Tasks(3));
  auto s2 = coordination.Connect(TaskId{"worker", 2});
  ASSERT_TRUE(s2.ok());
  RingOptions o;
  o.store = s2->get();
  o.rank = 2;
  o.size = 3;
  o.peer_names = {"chief:0", "worker:0", "worker:1"};
  o.deadline = In(absl::Milliseconds(500));
  auto c = CreateRingCommunicator(o);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDeadlineExceeded) << c.status();
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("chief:0 (rank 0), worker:0 (rank 1) never published an address"));
}

TEST(RingCommunicatorTest, BadOptions) {
  RingOptions o;
  o.size = 2;
  o.rank = 2;
  EXPECT_EQ(CreateRingCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.rank = 0;
  EXPECT_EQ(CreateRingCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.size = 1;  // one rank needs no store
  auto c = CreateRingCommunicator(o);
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<float> x = {1, 2};
  EXPECT_TRUE((*c)->AllReduce(absl::MakeSpan(x), ReduceOp::kMean, Later()).ok());
  EXPECT_EQ(x[1], 2);
  EXPECT_EQ((*c)->PeerName(0), "rank 0");
}

}  // namespace
}  // namespace estuary

namespace estuary {
namespace {

// Segments this process created that are still linked in /dev/shm.
std::vector<std::string> OurSegments() {
  std::vector<std::string> found;
  const std::string mine = absl::StrCat("estuary-ring-", getpid(), "-");
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name).rfind(mine, 0) == 0) found.push_back(e->d_name);
    }
    closedir(d);
  }
  return found;
}

std::vector<std::string> Paths(Group& g) {
  std::vector<std::string> p;
  for (int r = 0; r < g.size(); ++r) p.push_back(RingDataPath(g[r]));
  return p;
}

void CheckBigAllReduce(Group& g, size_t n) {
  std::vector<std::vector<float>> data(g.size(), std::vector<float>(n));
  for (int r = 0; r < g.size(); ++r) {
    for (size_t i = 0; i < n; ++i) data[r][i] = static_cast<float>((i + 7 * r) % 1000);
  }
  auto st = g.Run([&](int r) {
    return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, Later());
  });
  for (const auto& s : st) ASSERT_TRUE(s.ok()) << s;
  for (int r = 0; r < g.size(); ++r) {
    for (size_t i = 0; i < n; i += 997) {
      float expect = 0;
      for (int q = 0; q < g.size(); ++q) expect += static_cast<float>((i + 7 * q) % 1000);
      ASSERT_EQ(data[r][i], expect) << "rank " << r << " element " << i;
    }
  }
}

TEST(RingSharedMemoryTest, RanksOfOneHostUseSharedMemoryAndLeaveNoSegment) {
  for (int world : {2, 3, 4}) {
    SCOPED_TRACE(absl::StrCat("world ", world));
    {
      Group g(world);
      EXPECT_THAT(Paths(g), testing::Each(std::string("shared memory")));
      EXPECT_THAT(OurSegments(), testing::IsEmpty());  // unlinked once mapped
      CheckBigAllReduce(g, (8 << 20) + 3);  // threaded
      CheckBigAllReduce(g, 300001);         // one thread
    }
    EXPECT_THAT(OurSegments(), testing::IsEmpty());
  }
}

// Issue 10's deadlock: a producer that found its ring full slept on a
// fresh load of the consumer's counter, so a consumer that emptied the ring
// in between left both waiting until the deadline (shm_channel_test has the
// interleaving itself). Here: many back-to-back 64 MiB calls between 2
// ranks (threaded sender; 2 x 32 MiB halves, 256 slots per phase) with a
// short deadline each, then sizes on either side of the slot (32768
// floats), the per-rank block and the sender thread's threshold (4 MiB).
TEST(RingSharedMemoryTest, ManyLargeCallsAndSizesAroundSlotBoundaries) {
  Group g(2);
  ASSERT_THAT(Paths(g), testing::Each(std::string("shared memory")));
  const size_t big = size_t{16} << 20;  // 64 MiB of floats
  std::vector<std::vector<float>> data(2, std::vector<float>(big, 0.f));
  // Fewer under the sanitizers (CI's asan and tsan sets), whose memcpy and
  // adds are several times slower; the interleaving itself is
  // shm_channel_test's.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  const int calls = 20;
#else
  const int calls = 150;
#endif
  for (int call = 0; call < calls; ++call) {
    auto st = g.Run([&](int r) {
      return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, In(absl::Seconds(20)));
    });
    for (const auto& s : st) ASSERT_TRUE(s.ok()) << "call " << call << ": " << s;
  }
  data.clear();
  const size_t slot = 32768;
  for (size_t n : {2 * slot - 1, 2 * slot + 1, 2 * 16 * slot - 1, 2 * 16 * slot + 3,
                   2 * 17 * slot + 1, (size_t{1} << 20) - 1, size_t{1} << 20,
                   (size_t{1} << 20) + 1, 2 * 130 * slot + 5}) {
    SCOPED_TRACE(absl::StrCat(n, " floats"));
    for (int i = 0; i < 3; ++i) CheckBigAllReduce(g, n);
  }
}

TEST(RingSharedMemoryTest, OffOnOneRankMeansTcpForAll) {
  Group g(3, 0, [](RingOptions& o) { o.shared_memory = o.rank != 1; });
  EXPECT_THAT(Paths(g), testing::Each(std::string("tcp")));
  EXPECT_THAT(OurSegments(), testing::IsEmpty());
  CheckBigAllReduce(g, (8 << 20) + 3);
}

TEST(RingSharedMemoryTest, SegmentThatCannotBeOpenedFallsBackToTcp) {
  for (int world : {2, 3}) {
    SCOPED_TRACE(absl::StrCat("world ", world));
    // Rank 0 accepts every segment it is offered: as if on another host.
    Group g(world, 0, [](RingOptions& o) { o.shm_fail_open_for_testing = o.rank == 0; });
    EXPECT_THAT(Paths(g), testing::Each(std::string("tcp")));
    EXPECT_THAT(OurSegments(), testing::IsEmpty());  // the creators unlinked them
    CheckBigAllReduce(g, (8 << 20) + 3);
    CheckBigAllReduce(g, 300001);
  }
}

TEST(RingSharedMemoryTest, RankAbortedMidCallIsNamed) {
  // 64 MiB through shared memory; rank 1 goes away (its sockets reset, as
  // in a crash) once the others are waiting on its slots.
  for (size_t n : {size_t{16} << 20, size_t{600000}}) {
    SCOPED_TRACE(absl::StrCat(n, " floats"));
    Group g(3);
    std::vector<std::vector<float>> data(3, std::vector<float>(n, 1.f));
    const absl::Time start = absl::Now();
    auto st = g.Run([&](int r) -> absl::Status {
      if (r == 1) {
        absl::SleepFor(absl::Milliseconds(20));  // not synchronisation: "mid-call"
        g[1].Abort();
        return absl::OkStatus();
      }
      return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, In(absl::Seconds(60)));
    });
    EXPECT_LT(absl::Now() - start, absl::Seconds(20));
    for (int r : {0, 2}) {
      EXPECT_EQ(st[r].code(), absl::StatusCode::kUnavailable) << st[r];
      EXPECT_THAT(std::string(st[r].message()), HasSubstr("worker:1 (rank 1)")) << st[r];
    }
  }
}

TEST(RingSharedMemoryTest, StalledRankIsNamedOnSharedMemory) {
  Group g(3);
  ASSERT_EQ(RingDataPath(g[0]), "shared memory");
  std::vector<std::vector<float>> data(3, std::vector<float>(2 << 20, 1.f));
  auto st = g.Run([&](int r) -> absl::Status {
    if (r == 2) return absl::OkStatus();  // never calls
    return g[r].AllReduce(absl::MakeSpan(data[r]), ReduceOp::kSum, In(absl::Seconds(1)));
  });
  for (int r : {0, 1}) {
    EXPECT_EQ(st[r].code(), absl::StatusCode::kDeadlineExceeded) << st[r];
    EXPECT_THAT(std::string(st[r].message()), HasSubstr("stalled: worker:2 (rank 2)")) << st[r];
  }
}

TEST(RingSharedMemoryTest, MismatchIsInvalidArgument) {
  Group g(2);
  std::vector<float> a(1 << 20), b((1 << 20) + 1);
  auto st = g.Run([&](int r) -> absl::Status {
    return g[r].AllReduce(absl::MakeSpan(r == 0 ? a : b), ReduceOp::kSum, In(absl::Seconds(20)));
  });
  EXPECT_EQ(st[0].code(), absl::StatusCode::kInvalidArgument) << st[0];
  EXPECT_EQ(st[1].code(), absl::StatusCode::kInvalidArgument) << st[1];
}

}  // namespace
}  // namespace estuary
