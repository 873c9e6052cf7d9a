#include "common/collective/communicator_conformance.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {

std::string ConformanceParamName(const testing::TestParamInfo<ConformanceParam>& info) {
  return info.param.name;
}

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateInThreads(
    int world, const std::function<absl::StatusOr<std::unique_ptr<Communicator>>(int rank)>& create) {
  std::vector<absl::StatusOr<std::unique_ptr<Communicator>>> created;
  for (int r = 0; r < world; ++r) created.emplace_back(absl::UnknownError("not created"));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&created, &create, r] { created[r] = create(r); });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::unique_ptr<Communicator>> communicators;
  for (int r = 0; r < world; ++r) {
    if (!created[r].ok()) {
      return absl::Status(created[r].status().code(),
                          absl::StrCat("creating rank ", r, ": ", created[r].status().message()));
    }
    communicators.push_back(std::move(created[r]).value());
  }
  return communicators;
}

namespace {

using Group = std::vector<std::unique_ptr<Communicator>>;
using ::testing::HasSubstr;

constexpr size_t kSizes[] = {1, 2, 3, 7, 1000, 4097, (size_t{1} << 20) + 3};
constexpr size_t kBigSize = size_t{16} << 20;  // 64 MiB of floats

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Bits(uint64_t seed, int rank, size_t j) {
  return Mix(Mix(seed * 131 + static_cast<uint64_t>(rank)) ^ static_cast<uint64_t>(j));
}

// Exactly representable floats of both signs spanning 2^-30 .. 2^8, so
// that the order of a sum changes its rounding.
float FloatInput(uint64_t seed, int rank, size_t j) {
  const uint64_t bits = Bits(seed, rank, j);
  const int32_t mantissa = static_cast<int32_t>(bits >> 40) - (1 << 23);
  return static_cast<float>(mantissa) / static_cast<float>(1u << (30 - (bits & 15)));
}

// Mostly large values of both signs, some small ones (mean's truncation).
int64_t Int64Input(uint64_t seed, int rank, size_t j) {
  const uint64_t bits = Bits(seed, rank, j);
  if ((bits & 7) == 0) return static_cast<int64_t>(bits >> 60) - 8;
  return static_cast<int64_t>(bits >> 24) - (int64_t{1} << 39);
}

char ByteInput(uint64_t seed, int rank, size_t j) {
  return static_cast<char>(Bits(seed, rank, j) & 0xff);
}

const char* OpName(ReduceOp op) { return op == ReduceOp::kSum ? "sum" : "mean"; }

// Runs fn(rank) on a thread per rank; returns each rank's status.
std::vector<absl::Status> RunRanks(int world, const std::function<absl::Status(int rank)>& fn) {
  std::vector<absl::Status> statuses(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&statuses, &fn, r] { statuses[r] = fn(r); });
  }
  for (std::thread& thread : threads) thread.join();
  return statuses;
}

// Which worlds a test could make (a factory answers Unimplemented for a
// world it cannot make, e.g. more ranks than GPUs).
struct Worlds {
  int made = 0;
  std::string unavailable;  // the factory's reasons
};

// Makes a group of `world` ranks, or leaves `group` empty when the factory
// answers Unimplemented.
void MakeGroup(const ConformanceParam& param, int world, Group* group, Worlds* worlds) {
  absl::StatusOr<Group> made = param.make(world);
  if (absl::IsUnimplemented(made.status())) {
    const std::string reason = absl::StrCat("world ", world, ": ", made.status().message());
    if (worlds->unavailable.find(std::string(made.status().message())) == std::string::npos) {
      absl::StrAppend(&worlds->unavailable, worlds->unavailable.empty() ? "" : "; ", reason);
    }
    return;
  }
  ++worlds->made;
  ASSERT_TRUE(made.ok()) << "creating a group of " << world << ": " << made.status();
  ASSERT_EQ(made->size(), static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    ASSERT_NE((*made)[r], nullptr);
    ASSERT_EQ((*made)[r]->rank(), r);
    ASSERT_EQ((*made)[r]->size(), world);
  }
  *group = std::move(made).value();
}

void ExpectAllOk(const Group& group, const std::vector<absl::Status>& statuses) {
  for (size_t r = 0; r < statuses.size(); ++r) {
    EXPECT_TRUE(statuses[r].ok()) << group[r]->PeerName(r) << ": " << statuses[r];
  }
}

absl::Time Deadline(absl::Duration timeout) { return absl::Now() + timeout; }

void CheckAllReduceFloat(Group& group, size_t n, ReduceOp op, uint64_t seed, absl::Duration timeout) {
  SCOPED_TRACE(absl::StrCat("AllReduce float32 ", OpName(op), ", world ", group.size(), ", ", n,
                            " elements"));
  const int world = static_cast<int>(group.size());
  std::vector<std::vector<float>> data(world);
  std::vector<absl::Status> statuses = RunRanks(world, [&](int r) {
    data[r].resize(n);
    for (size_t j = 0; j < n; ++j) data[r][j] = FloatInput(seed, r, j);
    return group[r]->AllReduce(absl::MakeSpan(data[r]), op, Deadline(timeout));
  });
  ExpectAllOk(group, statuses);
  for (int r = 0; r < world; ++r) {
    if (!statuses[r].ok()) return;
  }
  for (int r = 1; r < world; ++r) {
    if (std::memcmp(data[r].data(), data[0].data(), n * sizeof(float)) == 0) continue;
    size_t j = 0;
    while (std::memcmp(&data[r][j], &data[0][j], sizeof(float)) == 0) ++j;
    ADD_FAILURE() << "rank " << r << " differs from rank 0 (not bit-identical) at element " << j
                  << ": " << data[r][j] << " vs " << data[0][j];
    return;
  }
  const double divisor = op == ReduceOp::kMean ? world : 1;
  size_t bad = 0;
  size_t first_bad = 0;
  double first_ref = 0;
  double first_tol = 0;
  for (size_t j = 0; j < n; ++j) {
    double sum = 0;
    double sum_abs = 0;
    for (int r = 0; r < world; ++r) {
      const double x = FloatInput(seed, r, j);
      sum += x;
      sum_abs += std::fabs(x);
    }
    const double reference = sum / divisor;
    const double tolerance = (world + 1) * static_cast<double>(FLT_EPSILON) * sum_abs / divisor;
    if (!(std::fabs(data[0][j] - reference) <= tolerance)) {
      if (bad++ == 0) {
        first_bad = j;
        first_ref = reference;
        first_tol = tolerance;
      }
    }
  }
  EXPECT_EQ(bad, 0u) << bad << " elements off the reference; the first, element " << first_bad
                     << ": " << data[0][first_bad] << " vs " << first_ref << " (tolerance "
                     << first_tol << ")";
}

void CheckAllReduceInt64(Group& group, size_t n, ReduceOp op, uint64_t seed, absl::Duration timeout) {
  SCOPED_TRACE(absl::StrCat("AllReduce int64 ", OpName(op), ", world ", group.size(), ", ", n,
                            " elements"));
  const int world = static_cast<int>(group.size());
  std::vector<std::vector<int64_t>> data(world);
  std::vector<absl::Status> statuses = RunRanks(world, [&](int r) {
    data[r].resize(n);
    for (size_t j = 0; j < n; ++j) data[r][j] = Int64Input(seed, r, j);
    return group[r]->AllReduce(absl::MakeSpan(data[r]), op, Deadline(timeout));
  });
  ExpectAllOk(group, statuses);
  for (int r = 0; r < world; ++r) {
    if (!statuses[r].ok()) return;
    for (size_t j = 0; j < n; ++j) {
      int64_t reference = 0;
      for (int i = 0; i < world; ++i) reference += Int64Input(seed, i, j);
      if (op == ReduceOp::kMean) reference /= world;
      if (data[r][j] != reference) {
        ADD_FAILURE() << "rank " << r << " element " << j << ": " << data[r][j] << " vs "
                      << reference;
        return;
      }
    }
  }
}

// Every operation fails at once with `code`, the message containing `first`.
void ExpectBroken(Communicator& communicator, absl::StatusCode code, absl::string_view first) {
  SCOPED_TRACE(absl::StrCat(communicator.PeerName(communicator.rank()), " after a failure"));
  const absl::Time deadline = Deadline(absl::Seconds(30));
  std::vector<float> floats(5);
  std::vector<int64_t> ints(5);
  std::vector<char> bytes(5);
  std::vector<absl::Status> statuses = {
      communicator.AllReduce(absl::MakeSpan(floats), ReduceOp::kSum, deadline),
      communicator.AllReduce(absl::MakeSpan(ints), ReduceOp::kMean, deadline),
      communicator.Broadcast(absl::MakeSpan(bytes), 0, deadline),
      communicator.AllGather("abc", deadline).status(),
      communicator.Barrier(deadline),
  };
  for (const absl::Status& status : statuses) {
    EXPECT_EQ(status.code(), code) << status;
    if (code == absl::StatusCode::kFailedPrecondition) {
      EXPECT_THAT(std::string(status.message()), HasSubstr(std::string(first)));
    }
  }
}

TEST_P(CommunicatorConformanceTest, PeerNamesAreDistinct) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  for (int world = 1; world <= param.options.max_world; ++world) {
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    for (int r = 0; r < world; ++r) {
      for (int i = 0; i < world; ++i) {
        EXPECT_FALSE(group[r]->PeerName(i).empty());
        EXPECT_EQ(group[r]->PeerName(i), group[0]->PeerName(i));
        if (i != r) {
          EXPECT_NE(group[r]->PeerName(i), group[r]->PeerName(r));
        }
      }
    }
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, AllReduceFloat) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  uint64_t seed = 1;
  for (int world = 1; world <= param.options.max_world; ++world) {
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    for (size_t n : kSizes) {
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMean}) {
        CheckAllReduceFloat(group, n, op, seed++, param.options.deadline);
      }
    }
    if (world == 2 && param.options.big) {
      CheckAllReduceFloat(group, kBigSize, ReduceOp::kSum, seed++, param.options.deadline);
    }
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, AllReduceInt64) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  uint64_t seed = 1000;
  for (int world = 1; world <= param.options.max_world; ++world) {
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{1000}, size_t{4097},
                     size_t{100003}}) {
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMean}) {
        CheckAllReduceInt64(group, n, op, seed++, param.options.deadline);
      }
    }
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, BroadcastFromEveryRoot) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  uint64_t seed = 2000;
  for (int world = 1; world <= param.options.max_world; ++world) {
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{4097}, (size_t{1} << 20) + 3}) {
      for (int root = 0; root < world; ++root) {
        SCOPED_TRACE(absl::StrCat("Broadcast world ", world, ", root ", root, ", ", n, " bytes"));
        ++seed;
        std::vector<std::string> data(world);
        std::vector<absl::Status> statuses = RunRanks(world, [&](int r) {
          data[r].assign(n, static_cast<char>(0xa5));
          if (r == root) {
            for (size_t j = 0; j < n; ++j) data[r][j] = ByteInput(seed, root, j);
          }
          return group[r]->Broadcast(absl::MakeSpan(data[r]), root, Deadline(param.options.deadline));
        });
        ExpectAllOk(group, statuses);
        std::string expected(n, '\0');
        for (size_t j = 0; j < n; ++j) expected[j] = ByteInput(seed, root, j);
        for (int r = 0; r < world; ++r) EXPECT_TRUE(data[r] == expected) << "rank " << r;
      }
    }
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, AllGatherOfDifferentLengths) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  constexpr size_t kLengths[] = {0, 1, 13, 4097, 100003};
  constexpr int kNumLengths = sizeof(kLengths) / sizeof(kLengths[0]);
  for (int world = 1; world <= param.options.max_world; ++world) {
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    // Round kNumLengths: every rank contributes nothing.
    for (int round = 0; round <= kNumLengths; ++round) {
      SCOPED_TRACE(absl::StrCat("AllGather world ", world, ", round ", round));
      const uint64_t seed = 3000 + round;
      auto contribution = [&](int r) {
        const size_t n = round == kNumLengths ? 0 : kLengths[(r + round) % kNumLengths];
        std::string bytes(n, '\0');
        for (size_t j = 0; j < n; ++j) bytes[j] = ByteInput(seed, r, j);
        return bytes;
      };
      std::vector<std::vector<std::string>> gathered(world);
      std::vector<absl::Status> statuses = RunRanks(world, [&](int r) {
        const std::string mine = contribution(r);
        absl::StatusOr<std::vector<std::string>> all =
            group[r]->AllGather(mine, Deadline(param.options.deadline));
        if (!all.ok()) return all.status();
        gathered[r] = std::move(all).value();
        return absl::OkStatus();
      });
      ExpectAllOk(group, statuses);
      for (int r = 0; r < world; ++r) {
        if (!statuses[r].ok()) continue;
        ASSERT_EQ(gathered[r].size(), static_cast<size_t>(world)) << "rank " << r;
        for (int i = 0; i < world; ++i) {
          EXPECT_TRUE(gathered[r][i] == contribution(i))
              << "rank " << r << " got " << gathered[r][i].size() << " bytes from rank " << i;
        }
      }
    }
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, BarrierWaitsForEveryRank) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  constexpr int kRounds = 20;
  for (int world = 1; world <= param.options.max_world; ++world) {
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    std::atomic<int> arrivals{0};
    std::vector<absl::Status> statuses = RunRanks(world, [&](int r) {
      for (int round = 0; round < kRounds; ++round) {
        arrivals.fetch_add(1);
        absl::Status status = group[r]->Barrier(Deadline(param.options.deadline));
        if (!status.ok()) return status;
        const int seen = arrivals.load();
        if (seen < world * (round + 1)) {
          return absl::InternalError(absl::StrCat("left barrier ", round, " after ", seen,
                                                  " arrivals; expected ", world * (round + 1)));
        }
      }
      return absl::OkStatus();
    });
    ExpectAllOk(group, statuses);
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

// Many small operations of every kind in a row: no cross-talk between
// consecutive operations.
TEST_P(CommunicatorConformanceTest, MixedSequence) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  constexpr int kSteps = 200;
  for (int world : {2, param.options.max_world}) {
    if (world > param.options.max_world) continue;
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    std::vector<absl::Status> statuses = RunRanks(world, [&](int r) -> absl::Status {
      Communicator& c = *group[r];
      for (int step = 0; step < kSteps; ++step) {
        const absl::Time deadline = Deadline(param.options.deadline);
        const size_t n = 1 + step % 9;
        const auto fail = [&](absl::string_view what) {
          return absl::InternalError(absl::StrCat("step ", step, ": wrong ", what));
        };
        switch (step % 5) {
          case 0: {  // small integers: exact float sums
            std::vector<float> x(n);
            for (size_t j = 0; j < n; ++j) x[j] = static_cast<float>(r * 100 + step + j);
            absl::Status status = c.AllReduce(absl::MakeSpan(x), ReduceOp::kSum, deadline);
            if (!status.ok()) return status;
            for (size_t j = 0; j < n; ++j) {
              if (x[j] != static_cast<float>(100 * world * (world - 1) / 2 + world * (step + j))) {
                return fail("float sum");
              }
            }
            break;
          }
          case 1: {
            std::vector<int64_t> x(n, r - step);
            absl::Status status = c.AllReduce(absl::MakeSpan(x), ReduceOp::kSum, deadline);
            if (!status.ok()) return status;
            for (int64_t v : x) {
              if (v != world * (world - 1) / 2 - int64_t{world} * step) return fail("int64 sum");
            }
            break;
          }
          case 2: {
            const int root = step % world;
            std::string x(n, static_cast<char>(r == root ? 'a' + step % 26 : '?'));
            absl::Status status = c.Broadcast(absl::MakeSpan(x), root, deadline);
            if (!status.ok()) return status;
            if (x != std::string(n, static_cast<char>('a' + step % 26))) return fail("broadcast");
            break;
          }
          case 3: {
            absl::StatusOr<std::vector<std::string>> all =
                c.AllGather(absl::StrCat(r, ":", step), deadline);
            if (!all.ok()) return all.status();
            if (all->size() != static_cast<size_t>(world)) return fail("gather count");
            for (int i = 0; i < world; ++i) {
              if ((*all)[i] != absl::StrCat(i, ":", step)) return fail("gather");
            }
            break;
          }
          case 4: {
            absl::Status status = c.Barrier(deadline);
            if (!status.ok()) return status;
            break;
          }
        }
      }
      return absl::OkStatus();
    });
    ExpectAllOk(group, statuses);
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

// The last rank never calls: the others fail with DeadlineExceeded naming
// it, and are broken afterwards.
TEST_P(CommunicatorConformanceTest, StalledRankIsNamed) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  for (int world : {2, 3}) {
    if (world > param.options.max_world) continue;
    SCOPED_TRACE(absl::StrCat("world ", world));
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
    if (group.empty()) continue;
    const int stalled = world - 1;
    std::vector<absl::Status> statuses = RunRanks(stalled, [&](int r) -> absl::Status {
      const absl::Time deadline = Deadline(param.options.stall_deadline);
      if (world == 2) {
        std::vector<float> x(1000, 1.0f);
        return group[r]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum, deadline);
      }
      return group[r]->AllGather("mine", deadline).status();
    });
    for (int r = 0; r < stalled; ++r) {
      EXPECT_EQ(statuses[r].code(), absl::StatusCode::kDeadlineExceeded)
          << group[r]->PeerName(r) << ": " << statuses[r];
      EXPECT_THAT(std::string(statuses[r].message()), HasSubstr(group[r]->PeerName(stalled)));
    }
    for (int r = 0; r < stalled; ++r) {
      ExpectBroken(*group[r], absl::StatusCode::kFailedPrecondition, statuses[r].message());
    }
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, AbortCancelsThisRank) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  if (param.options.max_world < 2) GTEST_SKIP() << "needs world 2";
  Group group;
  ASSERT_NO_FATAL_FAILURE(MakeGroup(param, 2, &group, &worlds));
  if (group.empty()) GTEST_SKIP() << worlds.unavailable;
  // Abort races with the call: in flight or before it, the call is Cancelled.
  absl::Status in_flight;
  std::thread rank0([&] {
    std::vector<float> x(1000, 1.0f);
    in_flight = group[0]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum, Deadline(param.options.deadline));
  });
  group[0]->Abort();
  rank0.join();
  EXPECT_EQ(in_flight.code(), absl::StatusCode::kCancelled) << in_flight;
  group[0]->Abort();  // idempotent
  ExpectBroken(*group[0], absl::StatusCode::kCancelled, "");
  // The peer cannot complete with an aborted rank.
  std::vector<float> x(1000, 1.0f);
  const absl::Status peer =
      group[1]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum, Deadline(param.options.stall_deadline));
  EXPECT_TRUE(peer.code() == absl::StatusCode::kUnavailable ||
              peer.code() == absl::StatusCode::kDeadlineExceeded)
      << peer;
  EXPECT_THAT(std::string(peer.message()), HasSubstr(group[1]->PeerName(0)));
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, AbortOfAPeerEndsACallInFlight) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  if (param.options.max_world < 2) GTEST_SKIP() << "needs world 2";
  Group group;
  ASSERT_NO_FATAL_FAILURE(MakeGroup(param, 2, &group, &worlds));
  if (group.empty()) GTEST_SKIP() << worlds.unavailable;
  absl::Status in_flight;
  std::thread rank0([&] {
    std::vector<float> x(1000, 1.0f);
    in_flight = group[0]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum, Deadline(param.options.deadline));
  });
  group[1]->Abort();
  rank0.join();
  EXPECT_TRUE(in_flight.code() == absl::StatusCode::kUnavailable ||
              in_flight.code() == absl::StatusCode::kDeadlineExceeded)
      << in_flight;
  EXPECT_THAT(std::string(in_flight.message()), HasSubstr(group[0]->PeerName(1)));
  ExpectBroken(*group[0], absl::StatusCode::kFailedPrecondition, in_flight.message());
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

TEST_P(CommunicatorConformanceTest, BroadcastRootOutOfRangeIsInvalidArgument) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  for (int world = 1; world <= std::min(2, param.options.max_world); ++world) {
    for (int root : {-1, world}) {
      SCOPED_TRACE(absl::StrCat("world ", world, ", root ", root));
      Group group;
      ASSERT_NO_FATAL_FAILURE(MakeGroup(param, world, &group, &worlds));
      if (group.empty()) continue;
      std::vector<absl::Status> statuses = RunRanks(world, [&](int r) {
        std::vector<char> x(10);
        return group[r]->Broadcast(absl::MakeSpan(x), root, Deadline(param.options.deadline));
      });
      for (int r = 0; r < world; ++r) {
        EXPECT_EQ(statuses[r].code(), absl::StatusCode::kInvalidArgument) << statuses[r];
        ExpectBroken(*group[r], absl::StatusCode::kFailedPrecondition, statuses[r].message());
      }
    }
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

// Ranks that disagree fail (at least one of them with InvalidArgument, the
// others InvalidArgument or Unavailable), within the deadline.
TEST_P(CommunicatorConformanceTest, DisagreementIsInvalidArgument) {
  const ConformanceParam& param = GetParam();
  Worlds worlds;
  if (!param.options.detects_mismatch) GTEST_SKIP() << "the implementation cannot tell";
  if (param.options.max_world < 2) GTEST_SKIP() << "needs world 2";
  for (int variant = 0; variant < 2; ++variant) {
    SCOPED_TRACE(variant == 0 ? "AllReduce of 10 vs 11 floats" : "AllReduce vs Broadcast");
    Group group;
    ASSERT_NO_FATAL_FAILURE(MakeGroup(param, 2, &group, &worlds));
    if (group.empty()) continue;
    std::vector<absl::Status> statuses = RunRanks(2, [&](int r) {
      const absl::Time deadline = Deadline(param.options.deadline);
      if (variant == 0) {
        std::vector<float> x(10 + r);
        return group[r]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum, deadline);
      }
      if (r == 0) {
        std::vector<float> x(4);
        return group[r]->AllReduce(absl::MakeSpan(x), ReduceOp::kSum, deadline);
      }
      std::vector<char> x(16);
      return group[r]->Broadcast(absl::MakeSpan(x), 0, deadline);
    });
    int invalid = 0;
    for (int r = 0; r < 2; ++r) {
      EXPECT_TRUE(statuses[r].code() == absl::StatusCode::kInvalidArgument ||
                  statuses[r].code() == absl::StatusCode::kUnavailable)
          << statuses[r];
      if (statuses[r].code() == absl::StatusCode::kInvalidArgument) ++invalid;
    }
    EXPECT_GE(invalid, 1);
  }
  if (worlds.made == 0) GTEST_SKIP() << worlds.unavailable;
}

}  // namespace
}  // namespace estuary
