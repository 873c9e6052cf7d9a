// A quick tuning loop for the ring (not a test, not the benchmark of
// record: bench/allreduce_bench measures against gloo, MPI and iperf3).
// Forks --size processes on loopback; rank 0 hosts a coordination service;
// every rank all-reduces each size --iterations times; rank 0 prints the
// median time, algbw and busbw (nccl-tests' definitions) per size.
//
//   bazel run -c opt //common/collective/ring:ring_perf -- --size=2
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/collective/ring/ring_communicator.h"
#include "common/coordination/coordination_client.h"
#include "common/coordination/coordination_service.h"
#include "common/coordination/grpc_service.h"
#include "common/coordination/types.h"
#include "common/flags.h"
#include "common/rpc.h"
#include "grpcpp/grpcpp.h"

namespace estuary {
namespace {

int RunRank(int rank, int size, int port, int iterations, const std::string& sizes_kib) {
  const std::string address = absl::StrCat("127.0.0.1:", port);
  CoordinationClient store(CreateChannel(address), TaskId{"worker", rank}, NewIncarnation(),
                           address);
  if (auto r = store.Register("", absl::Now() + absl::Seconds(30)); !r.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, r.status().ToString().c_str());
    return 1;
  }
  RingOptions o;
  o.store = &store;
  o.rank = rank;
  o.size = size;
  o.deadline = absl::Now() + absl::Seconds(30);
  auto ring = CreateRingCommunicator(o);
  if (!ring.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, ring.status().ToString().c_str());
    return 1;
  }
  std::vector<size_t> sizes;
  for (absl::string_view s : absl::StrSplit(sizes_kib, ',')) {
    size_t kib = 0;
    if (absl::SimpleAtoi(s, &kib)) sizes.push_back(kib << 10);
  }
  for (size_t bytes : sizes) {
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    std::vector<double> us;
    rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    const int reps = bytes >= (16u << 20) ? std::max(5, iterations / 10) : iterations;
    for (int i = 0; i < reps + 3; ++i) {
      const absl::Time start = absl::Now();
      absl::Status s = (*ring)->AllReduce(absl::MakeSpan(data), ReduceOp::kSum,
                                          absl::Now() + absl::Seconds(60));
      const double t = absl::ToDoubleMicroseconds(absl::Now() - start);
      if (!s.ok()) {
        std::fprintf(stderr, "rank %d: %s\n", rank, s.ToString().c_str());
        return 1;
      }
      if (i >= 3) us.push_back(t);
    }
    rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    auto cpu = [](const rusage& r) {
      return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 +
             r.ru_stime.tv_usec;
    };
    const double cpu_per_call = (cpu(ru1) - cpu(ru0)) / (reps + 3);
    std::sort(us.begin(), us.end());
    const double median = us[us.size() / 2];
    const double algbw = bytes / median / 1e3;  // GB/s
    const double busbw = algbw * 2 * (size - 1) / size;
    if (rank == 0) {
      std::printf(
          "size %8zu KiB  median %10.1f us  algbw %6.2f GB/s  busbw %6.2f GB/s  cpu %10.1f "
          "us/call\n",
          bytes >> 10, median, algbw, busbw, cpu_per_call);
      std::fflush(stdout);
    }
  }
  return 0;
}

int Main(int argc, char** argv) {
  int size = 2, iterations = 200;
  std::string sizes = "4,64,1024,16384,65536";
  FlagSet flags("ring_perf [flags]", "Ring all-reduce timings between local processes.");
  flags.Int("size", &size, "processes");
  flags.Int("iterations", &iterations, "calls per size (a tenth for >= 16 MiB)");
  flags.String("sizes_kib", &sizes, "comma-separated sizes in KiB");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 2;
  }
  int pipes[2];
  if (pipe(pipes) != 0) return 1;
  std::vector<pid_t> children;
  int rank = 0;
  for (int r = 1; r < size; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      rank = r;
      children.clear();
      break;
    }
    children.push_back(pid);
  }
  if (rank != 0) {
    close(pipes[1]);
    int port = 0;
    if (read(pipes[0], &port, sizeof(port)) != sizeof(port)) return 1;
    _exit(RunRank(rank, size, port, iterations, sizes));
  }
  close(pipes[0]);
  CoordinationServiceOptions so;
  for (int r = 0; r < size; ++r) so.cluster_tasks.push_back(TaskId{"worker", r});
  so.heartbeat_timeout = absl::InfiniteDuration();
  CoordinationService service(so);
  GrpcCoordinationService grpc_service(&service);
  int port = 0;
  grpc::ServerBuilder b;
  ConfigureServerBuilder(&b, ServerOptions{}, &port);
  b.RegisterService(&grpc_service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  for (int r = 1; r < size; ++r) {
    if (write(pipes[1], &port, sizeof(port)) != sizeof(port)) return 1;
  }
  const int rc = RunRank(0, size, port, iterations, sizes);
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  service.Stop();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  return rc;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Main(argc, argv); }
