// The ring between real processes (tests/ring_process_test_child): each
// rank registers with a coordination service hosted by this test, joins the
// ring through it, and checks all-reduces of known data. Faults: kill -9 of
// a rank -> every other rank fails at once with Unavailable naming it (long
// before the call's deadline); SIGSTOP of a rank -> the others fail with
// DeadlineExceeded naming the stopped rank as stalled. No process is left
// behind (Proc kills its child on destruction; every test waits for the
// exits it expects). The processes share this host, so the ring's data
// goes through shared memory unless a test turns it off (--shm=0) or makes
// opening the peer's segment fail (--shm=2: the fallback to TCP); no test
// leaves a segment of its children in /dev/shm.
#include <dirent.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/coordination/coordination_service.h"
#include "common/coordination/grpc_service.h"
#include "common/rpc.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/process_harness.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

// A coordination service on a loopback port, for `world` workers.
class Coordinator {
 public:
  explicit Coordinator(int world) : service_(Options(world)), grpc_service_(&service_) {
    grpc::ServerBuilder b;
    ConfigureServerBuilder(&b, ServerOptions{}, &port_);
    b.RegisterService(&grpc_service_);
    server_ = b.BuildAndStart();
    EXPECT_NE(port_, 0);
  }
  ~Coordinator() {
    service_.Stop();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  static CoordinationServiceOptions Options(int world) {
    CoordinationServiceOptions o;
    for (int r = 0; r < world; ++r) o.cluster_tasks.push_back(TaskId{"worker", r});
    o.heartbeat_timeout = absl::InfiniteDuration();  // the children send none
    return o;
  }
  CoordinationService service_;
  GrpcCoordinationService grpc_service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

std::vector<std::unique_ptr<testing::Proc>> StartRanks(const Coordinator& c, int world,
                                                       std::vector<std::string> extra) {
  std::vector<std::unique_ptr<testing::Proc>> procs;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> argv = {testing::Runfile("tests/ring_process_test_child"),
                                     absl::StrCat("--coordinator=", c.address()),
                                     absl::StrCat("--rank=", r), absl::StrCat("--size=", world)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    procs.push_back(testing::Proc::Start(argv, {}, absl::StrCat("rank", r)));
  }
  return procs;
}

// Segments in /dev/shm created by `procs` (named after the creator's pid).
std::vector<std::string> SegmentsOf(const std::vector<std::unique_ptr<testing::Proc>>& procs) {
  std::vector<std::string> found;
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d)) {
      for (const auto& p : procs) {
        const std::string mine = absl::StrCat("estuary-ring-", p->pid(), "-");
        if (std::string(e->d_name).rfind(mine, 0) == 0) found.push_back(e->d_name);
      }
    }
    closedir(d);
  }
  return found;
}

void AllReduces(int world, const std::string& shm, const std::string& path) {
  SCOPED_TRACE(absl::StrCat("world ", world, ", --shm=", shm));
  Coordinator coordinator(world);
  auto procs = StartRanks(coordinator, world,
                          {"--iterations=20", "--elements=1500007", "--shm=" + shm});
  for (int r = 0; r < world; ++r) {
    absl::StatusOr<int> rc = procs[r]->Wait(absl::Seconds(120));
    ASSERT_TRUE(rc.ok()) << rc.status() << procs[r]->Output();
    EXPECT_EQ(*rc, 0) << procs[r]->Output();
    EXPECT_TRUE(procs[r]->HasLine("ring done")) << procs[r]->Output();
    EXPECT_TRUE(procs[r]->HasLine("ring path: " + path)) << procs[r]->Output();
  }
  EXPECT_THAT(SegmentsOf(procs), ::testing::IsEmpty());
}

TEST(RingProcessTest, AllReducesAcrossProcesses) {
  AllReduces(2, "1", "shared memory");
  AllReduces(4, "1", "shared memory");
  AllReduces(3, "0", "tcp");
}

TEST(RingProcessTest, SegmentThatCannotBeOpenedFallsBackToTcp) {
  AllReduces(2, "2", "tcp");
  AllReduces(3, "2", "tcp");
}

void KillOneRank(int world, int victim, const std::string& elements = "1500007",
                 const std::string& shm = "1") {
  SCOPED_TRACE(absl::StrCat("world ", world, ", victim rank ", victim, ", ", elements,
                            " floats, --shm=", shm));
  Coordinator coordinator(world);
  // A call deadline far longer than the test waits: the survivors must
  // notice the death from the connections, not from the deadline.
  auto procs = StartRanks(coordinator, world,
                          {"--iterations=0", "--elements=" + elements, "--timeout_secs=300",
                           "--shm=" + shm});
  for (auto& p : procs) {
    ASSERT_TRUE(p->WaitForLine("iteration 4 ok", absl::Seconds(120))) << p->Output();
  }
  procs[victim]->Signal(SIGKILL);
  const std::string name = absl::StrCat("worker:", victim, " (rank ", victim, ")");
  for (int r = 0; r < world; ++r) {
    absl::StatusOr<int> rc = procs[r]->Wait(absl::Seconds(30));
    ASSERT_TRUE(rc.ok()) << "rank " << r << " did not exit: " << rc.status() << procs[r]->Output();
    if (r == victim) {
      EXPECT_EQ(*rc, 128 + SIGKILL);
      continue;
    }
    EXPECT_EQ(*rc, 3) << procs[r]->Output();
    const std::string error = procs[r]->FindLine("ring error:");
    EXPECT_THAT(error, HasSubstr("UNAVAILABLE")) << procs[r]->Output();
    EXPECT_THAT(error, HasSubstr(name)) << procs[r]->Output();
  }
  EXPECT_THAT(SegmentsOf(procs), ::testing::IsEmpty());
}

TEST(RingProcessTest, KilledRankIsNamedByEveryOtherRank) {
  KillOneRank(3, 1);
  // Rank 0 is not a neighbour of rank 2 in a ring of 4.
  KillOneRank(4, 2);
  // Mid 64 MiB all-reduce through shared memory, and over TCP.
  KillOneRank(2, 1, "16777216");
  KillOneRank(3, 2, "16777216");
  KillOneRank(2, 0, "16777216", "0");
}

void StopOneRank(const std::string& elements) {
  SCOPED_TRACE(absl::StrCat(elements, " floats"));
  constexpr int kWorld = 3;
  constexpr int kVictim = 2;
  Coordinator coordinator(kWorld);
  auto procs = StartRanks(coordinator, kWorld,
                          {"--iterations=0", "--elements=" + elements, "--timeout_secs=5"});
  for (auto& p : procs) ASSERT_TRUE(p->WaitForLine("iteration 10 ok", absl::Seconds(60))) << p->Output();
  for (auto& p : procs) ASSERT_TRUE(p->HasLine("ring path: shared memory")) << p->Output();
  procs[kVictim]->Signal(SIGSTOP);
  for (int r = 0; r < kWorld; ++r) {
    if (r == kVictim) continue;
    // The deadline (5 s) plus the stall-report wait (2 s), with room for a
    // loaded machine.
    absl::StatusOr<int> rc = procs[r]->Wait(absl::Seconds(60));
    ASSERT_TRUE(rc.ok()) << "rank " << r << " did not exit: " << rc.status() << procs[r]->Output();
    EXPECT_EQ(*rc, 3) << procs[r]->Output();
    const std::string error = procs[r]->FindLine("ring error:");
    EXPECT_THAT(error, HasSubstr("DEADLINE_EXCEEDED")) << procs[r]->Output();
    EXPECT_THAT(error, HasSubstr("stalled: worker:2 (rank 2)")) << procs[r]->Output();
  }
  procs[kVictim]->Signal(SIGKILL);
  procs[kVictim]->Signal(SIGCONT);
  absl::StatusOr<int> rc = procs[kVictim]->Wait(absl::Seconds(30));
  ASSERT_TRUE(rc.ok()) << rc.status();
  EXPECT_THAT(SegmentsOf(procs), ::testing::IsEmpty());
}

TEST(RingProcessTest, StoppedRankIsNamedAsStalled) {
  StopOneRank("300000");
  StopOneRank("16777216");  // 64 MiB calls: stopped mid-call on shared memory
}

}  // namespace
}  // namespace estuary
