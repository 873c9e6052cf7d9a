// The shared Communicator conformance suite (communicator_conformance.h)
// over the ring: ranks are threads of this process, each creating its
// communicator on its own thread (the rendezvous blocks), over an
// in-memory Store; every group is a new generation. Twice: with the
// shared-memory data path (the default; threads of one process are on one
// host) and with TCP only.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/collective/communicator_conformance.h"
#include "common/collective/ring/ring_communicator.h"
#include "common/coordination/in_memory_store.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

constexpr int kMaxWorld = 4;

// The Stores of kMaxWorld tasks, shared by every group of the test binary.
class Stores {
 public:
  Stores() : coordination_(Tasks()) {
    for (const TaskId& t : Tasks()) stores_.push_back(coordination_.Connect(t));
  }
  absl::StatusOr<Store*> get(int rank) {
    if (!stores_[rank].ok()) return stores_[rank].status();
    return stores_[rank]->get();
  }
  int64_t NextGeneration() { return generation_.fetch_add(1); }

 private:
  static std::vector<TaskId> Tasks() {
    std::vector<TaskId> t;
    for (int i = 0; i < kMaxWorld; ++i) t.push_back(TaskId{"worker", i});
    return t;
  }
  InMemoryCoordination coordination_;
  std::vector<absl::StatusOr<std::unique_ptr<InMemoryStore>>> stores_;
  std::atomic<int64_t> generation_{0};
};

Stores* SharedStores() {
  static Stores* const stores = new Stores();  // lives as long as the test binary
  return stores;
}

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> MakeRing(int world,
                                                                    bool shared_memory) {
  Stores* const stores = SharedStores();
  const int64_t generation = stores->NextGeneration();
  auto comms = CreateInThreads(world, [stores, world, generation, shared_memory](int rank)
                                    -> absl::StatusOr<std::unique_ptr<Communicator>> {
    absl::StatusOr<Store*> store = stores->get(rank);
    if (!store.ok()) return store.status();
    RingOptions o;
    o.store = *store;
    o.generation = generation;
    o.rank = rank;
    o.size = world;
    for (int r = 0; r < world; ++r) o.peer_names.push_back(absl::StrCat("worker:", r));
    o.deadline = absl::Now() + absl::Seconds(60);
    o.shared_memory = shared_memory;
    return CreateRingCommunicator(o);
  });
  if (comms.ok() && world > 1) {
    // The path under test is the one taken.
    for (const auto& c : *comms) {
      const std::string path = RingDataPath(*c);
      if (path != (shared_memory ? "shared memory" : "tcp")) {
        return absl::InternalError(absl::StrCat("the ring's data path is ", path));
      }
    }
  }
  return comms;
}

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> MakeShmRing(int world) {
  return MakeRing(world, true);
}
absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> MakeTcpRing(int world) {
  return MakeRing(world, false);
}

ConformanceOptions RingOptionsForTest() {
  ConformanceOptions options;
  options.max_world = kMaxWorld;
  // The stall tests wait this long, then up to 2 s for the stall reports.
  options.stall_deadline = absl::Seconds(3);
  return options;
}

INSTANTIATE_TEST_SUITE_P(Ring, CommunicatorConformanceTest,
                         testing::Values(ConformanceParam{"ring", MakeShmRing,
                                                          RingOptionsForTest()},
                                         ConformanceParam{"ring_tcp", MakeTcpRing,
                                                          RingOptionsForTest()}),
                         ConformanceParamName);

}  // namespace
}  // namespace estuary
