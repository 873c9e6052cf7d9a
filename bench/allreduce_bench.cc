// All-reduce (float32, sum) between N processes on loopback through
// Estuary's RingCommunicator (issue 10, bench/ side of the ring). Rank 0
// hosts a coordination service (the Store the ring meets through) on a
// loopback port and starts ranks 1..N-1 as copies of this binary; every
// rank then runs the same schedule:
//   for each size: one all-reduce of known values, checked against the
//   expected sum on every rank; --warmup (default iters/10, >= 2) untimed
//   calls; `iters` calls, each timed on its own.
// Rank 0 prints one figure per line (nccl-tests' definitions, GB = 1e9 B):
//   time_us_<bytes>     median time of one call
//   algbw_gbps_<bytes>  bytes / time
//   busbw_gbps_<bytes>  algbw * 2(n-1)/n
//   cpu_us_<bytes>      CPU time (user + system, every thread) of all ranks
//                       together per call, over the timed calls: steadier
//                       than wall time on a shared machine
//   checked_sizes K     every size passed the check
//
//   bazel build -c opt //bench:allreduce_bench
//   bazel-bin/bench/allreduce_bench [--world 2] [--sizes 4096,...] [--iters 2000,...] [--tls]
//                                   [--shm=false]
//
// --shm=false: the ring's data over TCP only (RingOptions::shared_memory;
// by default ranks on one host use shared memory). Prints
// "# data path: shared memory|tcp" on stderr.
//
// --tls: the job's security on: mutual TLS on the coordination channels and
// the job token there and in the ring's handshake (rank 0 writes a CA,
// certificates and a token with cert_gen.h to a temporary directory; every
// rank loads its own with LoadTaskSecurity). The ring's data plane itself
// is not encrypted, so only set-up costs change.
//
// bench/allreduce_bench.py runs it next to torch gloo
// (bench/allreduce_bench_gloo.py), Open MPI (bench/allreduce_bench_mpi.c)
// and iperf3, and prints the medians side by side.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cert_gen.h"
#include "common/cluster.h"
#include "common/collective/communicator.h"
#include "common/collective/ring/ring_communicator.h"
#include "common/coordination/coordination_client.h"
#include "common/coordination/coordination_service.h"
#include "common/coordination/grpc_service.h"
#include "common/coordination/types.h"
#include "common/flags.h"
#include "common/rpc.h"
#include "common/security.h"
#include "common/subprocess.h"
#include "grpcpp/grpcpp.h"

namespace estuary {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(60);

// A CA, worker-<r>.crt/.key for every rank and a token in a new temporary
// directory (*dir).
absl::Status WriteBenchCertificates(int world, std::string* dir) {
  char tmpl[] = "/tmp/allreduce_bench_tls.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  *dir = tmpl;
  const absl::Duration day = absl::Hours(24);
  absl::StatusOr<PemPair> ca = MakeCertificateAuthority("allreduce_bench CA", day);
  if (!ca.ok()) return ca.status();
  auto write = [&](const std::string& name, const std::string& text) {
    FILE* f = std::fopen((*dir + "/" + name).c_str(), "w");
    if (f == nullptr) return absl::InternalError(absl::StrCat("cannot write ", *dir, "/", name));
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return absl::OkStatus();
  };
  if (absl::Status s = write("ca.crt", ca->cert); !s.ok()) return s;
  if (absl::Status s = write("token", "allreduce-bench-token-0123456789abcdef\n"); !s.ok()) {
    return s;
  }
  for (int r = 0; r < world; ++r) {
    absl::StatusOr<PemPair> p =
        MakeSignedCertificate(*ca, absl::StrCat("worker:", r), {"127.0.0.1", "localhost"}, day);
    if (!p.ok()) return p.status();
    if (absl::Status s = write(absl::StrCat("worker-", r, ".crt"), p->cert); !s.ok()) return s;
    if (absl::Status s = write(absl::StrCat("worker-", r, ".key"), p->key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ParseList(const std::string& flag, const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", part, "' is not a positive integer"));
    }
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  return out;
}

// The check's values: element i of rank r is (i % 13) + r, so the sum over n
// ranks is n * (i % 13) + n(n-1)/2, exact in float32.
absl::Status CheckOnce(Communicator* comm, int64_t floats) {
  const int n = comm->size();
  std::vector<float> data(floats);
  for (int64_t i = 0; i < floats; ++i) data[i] = static_cast<float>(i % 13 + comm->rank());
  if (absl::Status s = comm->AllReduce(absl::MakeSpan(data), ReduceOp::kSum,
                                       absl::Now() + kCallTimeout);
      !s.ok()) {
    return s;
  }
  for (int64_t i = 0; i < floats; ++i) {
    const float want = static_cast<float>(n * (i % 13) + n * (n - 1) / 2);
    if (data[i] != want) {
      return absl::InternalError(absl::StrCat("rank ", comm->rank(), ": element ", i, " of ",
                                              floats * 4, " bytes is ", data[i], ", want ", want));
    }
  }
  return absl::OkStatus();
}

struct Figure {
  int64_t bytes;
  double median_s;
  double cpu_us_per_call;  // all ranks together
};

// User + system CPU time of this process (every thread) so far.
int64_t CpuMicros() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * int64_t{1000000} + u.ru_utime.tv_usec +
         u.ru_stime.tv_usec;
}

absl::StatusOr<std::vector<Figure>> Run(Communicator* comm, const std::vector<int64_t>& sizes,
                                        const std::vector<int64_t>& iters, int warmup) {
  std::vector<Figure> figures;
  for (size_t k = 0; k < sizes.size(); ++k) {
    const int64_t floats = sizes[k] / 4;
    if (absl::Status s = CheckOnce(comm, floats); !s.ok()) return s;
    // Timed on zeros: the sum stays finite however many calls run.
    std::vector<float> data(floats, 0.0f);
    const int64_t n_warm = warmup >= 0 ? warmup : std::max<int64_t>(2, iters[k] / 10);
    std::vector<double> times;
    times.reserve(iters[k]);
    int64_t cpu[1] = {0};
    for (int64_t i = 0; i < n_warm + iters[k]; ++i) {
      if (i == n_warm) cpu[0] = -CpuMicros();
      const absl::Time t0 = absl::Now();
      if (absl::Status s =
              comm->AllReduce(absl::MakeSpan(data), ReduceOp::kSum, t0 + kCallTimeout);
          !s.ok()) {
        return s;
      }
      if (i >= n_warm) times.push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    }
    cpu[0] += CpuMicros();
    if (absl::Status s = comm->AllReduce(absl::MakeSpan(cpu), ReduceOp::kSum,
                                         absl::Now() + kCallTimeout);
        !s.ok()) {
      return s;
    }
    std::sort(times.begin(), times.end());
    figures.push_back({floats * 4, times[times.size() / 2],
                       static_cast<double>(cpu[0]) / static_cast<double>(iters[k])});
  }
  return figures;
}

int Main(int argc, char** argv) {
  int world = 2;
  int rank = 0;
  std::string store;
  std::string sizes_text = "4096,65536,1048576,16777216,67108864";
  std::string iters_text = "2000,1000,200,30,10";
  int warmup = -1;
  FlagSet flags("allreduce_bench [--world N] [--sizes B,...] [--iters I,...]",
                "All-reduce of float32 sums through the TCP ring between N local processes.");
  flags.Int("world", &world, "processes (rank 0 starts the others)");
  bool shm = true;
  flags.Bool("shm", &shm, "ranks on one host exchange through shared memory (false: TCP only)");
  flags.String("sizes", &sizes_text, "message sizes in bytes (multiples of 4)");
  flags.String("iters", &iters_text, "timed calls per size (one number per size)");
  flags.Int("warmup", &warmup, "untimed calls per size (-1: iters/10, at least 2)");
  flags.Int("rank", &rank, "(internal) this process's rank");
  flags.String("store", &store, "(internal) the coordination service rank 0 hosts");
  std::string tls_dir;
  bool tls = false;
  flags.Bool("tls", &tls, "mutual TLS + job token on the coordination channels and the ring");
  flags.String("tls_dir", &tls_dir, "(internal) where rank 0 wrote the certificates");
  if (absl::Status s = flags.Parse(argc, argv, 1); !s.ok()) {
    std::fprintf(stderr, "allreduce_bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return 0;
  }
  absl::StatusOr<std::vector<int64_t>> sizes = ParseList("sizes", sizes_text);
  absl::StatusOr<std::vector<int64_t>> iters = ParseList("iters", iters_text);
  absl::Status bad = !sizes.ok() ? sizes.status() : iters.status();
  if (bad.ok() && sizes->size() != iters->size()) {
    bad = absl::InvalidArgumentError(absl::StrCat("--iters has ", iters->size(),
                                                  " numbers for ", sizes->size(), " sizes"));
  }
  if (bad.ok() && (world < 1 || rank < 0 || rank >= world)) {
    bad = absl::InvalidArgumentError(absl::StrCat("--rank ", rank, " / --world ", world));
  }
  for (size_t k = 0; bad.ok() && k < sizes->size(); ++k) {
    if ((*sizes)[k] % 4 != 0) {
      bad = absl::InvalidArgumentError(
          absl::StrCat("--sizes: ", (*sizes)[k], " is not a multiple of 4"));
    }
  }
  if (!bad.ok()) {
    std::fprintf(stderr, "allreduce_bench: %s\n", std::string(bad.message()).c_str());
    return 2;
  }

  std::vector<TaskId> tasks;
  for (int r = 0; r < world; ++r) tasks.push_back({"worker", r});
  // Rank 0: the coordination service and the other ranks.
  if (tls && rank == 0) {
    absl::Status made = WriteBenchCertificates(world, &tls_dir);
    if (!made.ok()) {
      std::fprintf(stderr, "allreduce_bench: %s\n", made.ToString().c_str());
      return 1;
    }
  }
  SecurityPtr security;
  if (!tls_dir.empty()) {
    SecurityConfig sc;
    sc.ca = tls_dir + "/ca.crt";
    sc.cert = tls_dir + "/";
    sc.key = tls_dir + "/";
    sc.token_file = tls_dir + "/token";
    absl::StatusOr<SecurityPtr> loaded = LoadTaskSecurity(sc, tasks[rank]);
    if (!loaded.ok()) {
      std::fprintf(stderr, "allreduce_bench: %s\n", loaded.status().ToString().c_str());
      return 1;
    }
    security = *std::move(loaded);
  }
  std::unique_ptr<CoordinationService> service;
  std::unique_ptr<GrpcCoordinationService> grpc_service;
  std::unique_ptr<grpc::Server> server;
  std::vector<std::unique_ptr<Subprocess>> children;
  if (rank == 0) {
    CoordinationServiceOptions o;
    o.cluster_tasks = tasks;
    o.heartbeat_timeout = absl::InfiniteDuration();  // the ranks send no heartbeats
    service = std::make_unique<CoordinationService>(o);
    grpc_service = std::make_unique<GrpcCoordinationService>(service.get());
    grpc::ServerBuilder b;
    ServerOptions server_options;
    server_options.security = security;
    int port = 0;
    ConfigureServerBuilder(&b, server_options, &port);
    b.RegisterService(grpc_service.get());
    server = b.BuildAndStart();
    if (!server || port == 0) {
      std::fprintf(stderr, "allreduce_bench: cannot start the coordination service\n");
      return 1;
    }
    store = absl::StrCat("127.0.0.1:", port);
    for (int r = 1; r < world; ++r) {
      SubprocessOptions so;
      so.argv = {"/proc/self/exe", "--rank", absl::StrCat(r), "--world", absl::StrCat(world),
                 "--store", store, "--sizes", sizes_text, "--iters", iters_text,
                 "--warmup", absl::StrCat(warmup), "--tls_dir", tls_dir,
                 absl::StrCat("--shm=", shm ? "true" : "false")};
      absl::StatusOr<std::unique_ptr<Subprocess>> child = Subprocess::Start(std::move(so));
      if (!child.ok()) {
        std::fprintf(stderr, "allreduce_bench: %s\n", child.status().ToString().c_str());
        return 1;
      }
      children.push_back(*std::move(child));
    }
  }

  const absl::Time rendezvous = absl::Now() + absl::Seconds(60);
  ChannelOptions channel_options;
  channel_options.security = security;
  CoordinationClient client(CreateChannel(store, channel_options), tasks[rank], NewIncarnation(),
                            store);
  absl::Status status = client.Register(store, rendezvous).status();
  std::unique_ptr<Communicator> comm;
  if (status.ok()) {
    RingOptions ro;
    ro.store = &client;
    ro.prefix = "allreduce_bench";
    ro.rank = rank;
    ro.size = world;
    ro.deadline = rendezvous;
    if (security != nullptr) ro.token = security->token;
    ro.shared_memory = shm;
    absl::StatusOr<std::unique_ptr<Communicator>> ring = CreateRingCommunicator(ro);
    if (ring.ok()) {
      comm = *std::move(ring);
      if (rank == 0) std::fprintf(stderr, "# data path: %s\n", RingDataPath(*comm).c_str());
    } else {
      status = ring.status();
    }
  }
  absl::StatusOr<std::vector<Figure>> figures =
      status.ok() ? Run(comm.get(), *sizes, *iters, warmup) : status;
  if (figures.ok() && comm) status = comm->Barrier(absl::Now() + kCallTimeout);
  if (!figures.ok()) status = figures.status();
  if (!status.ok()) {
    std::fprintf(stderr, "allreduce_bench: rank %d: %s\n", rank, status.ToString().c_str());
    if (comm) comm->Abort();
  }
  comm.reset();
  int rc = status.ok() ? 0 : 1;
  for (size_t i = 0; i < children.size(); ++i) {
    absl::StatusOr<int> code = children[i]->Wait(absl::Seconds(90));
    if (!code.ok() || *code != 0) {
      std::fprintf(stderr, "allreduce_bench: rank %zu exited with %s\n", i + 1,
                   code.ok() ? absl::StrCat(*code).c_str() : code.status().ToString().c_str());
      rc = 1;
    }
  }
  if (server) {
    service->Stop();
    server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  if (rank == 0 && rc == 0) {
    const double bus = 2.0 * (world - 1) / world;
    for (const Figure& f : *figures) {
      const double algbw = f.bytes / f.median_s / 1e9;
      std::printf("time_us_%lld %.2f\n", static_cast<long long>(f.bytes), f.median_s * 1e6);
      std::printf("algbw_gbps_%lld %.3f\n", static_cast<long long>(f.bytes), algbw);
      std::printf("busbw_gbps_%lld %.3f\n", static_cast<long long>(f.bytes), algbw * bus);
      std::printf("cpu_us_%lld %.2f\n", static_cast<long long>(f.bytes), f.cpu_us_per_call);
    }
    std::printf("checked_sizes %zu\n", figures->size());
  }
  return rc;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Main(argc, argv); }
