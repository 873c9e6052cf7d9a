// One rank of ring_process_test: registers with a coordination service as
// worker:<rank>, joins the TCP ring, runs all-reduces of known data and
// checks every result.
//
// Output: "ring ready", "ring path: shared memory|tcp", "iteration N ok" after each call, "ring done" at the
// end; on failure "ring error: <status>" and exit code 3 (2: bad flags or no
// coordinator).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/collective/ring/ring_communicator.h"
#include "common/coordination/coordination_client.h"
#include "common/coordination/types.h"
#include "common/flags.h"
#include "common/rpc.h"

namespace estuary {
namespace {

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Data of `rank` at iteration `it`: small integers, so every sum is exact.
float Input(int rank, int it, size_t j) {
  return static_cast<float>(static_cast<int>((j * 7 + static_cast<size_t>(rank) * 13 + it) % 97) - 48);
}

int Run(int argc, char** argv) {
  std::string coordinator;
  int rank = 0, size = 0, iterations = 10, elements = 100000, timeout_secs = 30, generation = 0;
  FlagSet flags("ring_process_test_child [flags]", "One rank of ring_process_test.");
  flags.String("coordinator", &coordinator, "host:port of the coordination service");
  flags.Int("rank", &rank, "this rank");
  flags.Int("size", &size, "ranks in the ring");
  flags.Int("iterations", &iterations, "all-reduces to run (0: until one fails)");
  flags.Int("elements", &elements, "floats per all-reduce (alternates with a 1 KiB one)");
  flags.Int("timeout_secs", &timeout_secs, "deadline of each call");
  flags.Int("generation", &generation, "ring generation");
  int shm = 1;
  flags.Int("shm", &shm,
            "shared memory between neighbours: 1 on, 0 off, 2 on but opening the peer's "
            "segment fails (as on another host)");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    Say(absl::StrCat("ring error: ", s.ToString()));
    return 2;
  }
  const TaskId self{"worker", rank};
  CoordinationClient store(CreateChannel(coordinator), self, NewIncarnation(),
                           absl::StrCat("coordinator at ", coordinator));
  if (auto r = store.Register("", absl::Now() + absl::Seconds(30)); !r.ok()) {
    Say(absl::StrCat("ring error: ", r.status().ToString()));
    return 2;
  }
  RingOptions options;
  options.store = &store;
  options.generation = generation;
  options.rank = rank;
  options.size = size;
  for (int r = 0; r < size; ++r) options.peer_names.push_back(absl::StrCat("worker:", r));
  options.deadline = absl::Now() + absl::Seconds(60);
  options.shared_memory = shm != 0;
  options.shm_fail_open_for_testing = shm == 2;
  absl::StatusOr<std::unique_ptr<Communicator>> ring = CreateRingCommunicator(options);
  if (!ring.ok()) {
    Say(absl::StrCat("ring error: ", ring.status().ToString()));
    return 3;
  }
  Say("ring ready");
  Say(absl::StrCat("ring path: ", RingDataPath(**ring)));
  for (int it = 0; iterations == 0 || it < iterations; ++it) {
    // Alternate the ring path (big) and the direct path (1 KiB).
    const size_t n = it % 2 == 0 ? static_cast<size_t>(elements) : 256;
    std::vector<float> data(n);
    for (size_t j = 0; j < n; ++j) data[j] = Input(rank, it, j);
    const absl::Status s = (*ring)->AllReduce(absl::MakeSpan(data), ReduceOp::kSum,
                                              absl::Now() + absl::Seconds(timeout_secs));
    if (!s.ok()) {
      Say(absl::StrCat("ring error: ", s.ToString()));
      return 3;
    }
    for (size_t j = 0; j < n; ++j) {
      float expect = 0;
      for (int r = 0; r < size; ++r) expect += Input(r, it, j);
      if (data[j] != expect) {
        Say(absl::StrCat("ring error: iteration ", it, " element ", j, ": ", data[j], " != ",
                         expect));
        return 3;
      }
    }
    Say(absl::StrCat("iteration ", it, " ok"));
  }
  if (absl::Status s = (*ring)->Barrier(absl::Now() + absl::Seconds(timeout_secs)); !s.ok()) {
    Say(absl::StrCat("ring error: ", s.ToString()));
    return 3;
  }
  Say("ring done");
  return 0;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Run(argc, argv); }
