// Push + pull of a 1M-float variable through the parameter-server service:
// one PS (a child process serving PsGrpcService over loopback gRPC, and
// Push/Pull over its TCP data plane unless --nodata_plane or --tls), N
// client threads in this process, each with its own PsClient (own channel
// and connection). A "pair" is Push(1M-float gradient, SGD applied on the
// PS) then Pull(the 1M-float variable). Prints one line per figure:
//   pairs_per_sec <aggregate over all clients>
//   pair_ms_median <per client, median over pairs>
//
//   bazel run -c opt //bench:ps_bench -- --clients 2 --seconds 5 [--nomallopt] [--tls]
//
// --tls: mutual TLS (a CA and certificates made in memory) and the job
// token on every call, as a job with `security` runs.
//
// bench/ps_bench.py runs it next to bench/ps_bench_torch.py (the same with
// torch.distributed.rpc over TCP) and prints the medians side by side.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cert_gen.h"
#include "common/flags.h"
#include "common/ps/ps_client.h"
#include "common/ps/ps_service.h"
#include "common/ps/ps_shard.h"
#include "grpcpp/grpcpp.h"

namespace estuary {
namespace {

constexpr int64_t kRows = 1024, kCols = 1024;  // 1 Mi floats

// The PS child: serves until its parent closes the pipe.
[[noreturn]] void Serve(int port_fd, int stop_fd, SecurityPtr security, bool data_plane) {
  PsShard shard;
  PsGrpcService service(&shard);
  // As the ps binary: the data plane only without security.
  if (data_plane && security == nullptr && !service.StartDataPlane("127.0.0.1").ok()) _exit(1);
  grpc::ServerBuilder b;
  ServerOptions options;
  options.security = std::move(security);
  int port = 0;
  ConfigureServerBuilder(&b, options, &port);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (write(port_fd, &port, sizeof(port)) != sizeof(port)) _exit(1);
  close(port_fd);
  char c;
  while (read(stop_fd, &c, 1) > 0) {
  }
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  _exit(0);
}

int Main(int argc, char** argv) {
  int clients = 2;
  double seconds = 5;
  bool nomallopt = false;
  FlagSet flags("ps_bench [--clients N] [--seconds S] [--nomallopt]",
                "Push + pull of 1M floats through one parameter server.");
  flags.Int("clients", &clients, "client threads, each with its own connection");
  flags.Double("seconds", &seconds, "timed seconds (after 1 s of warm-up)");
  flags.Bool("nomallopt", &nomallopt, "leave glibc's malloc thresholds as they are");
  bool tls = false;
  flags.Bool("tls", &tls, "mutual TLS and the job token on every call");
  bool data_plane = true;
  flags.Bool("data_plane", &data_plane,
             "push and pull over the PS's TCP data plane (--nodata_plane: gRPC; "
             "--tls: always gRPC)");
  if (absl::Status s = flags.Parse(argc, argv, 1); !s.ok()) {
    std::fprintf(stderr, "ps_bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (!nomallopt) TuneMallocForBulkTransfers();
  SecurityPtr server_security, client_security;
  if (tls) {
    const absl::Duration day = absl::Hours(24);
    absl::StatusOr<PemPair> ca = MakeCertificateAuthority("ps_bench CA", day);
    absl::StatusOr<PemPair> server =
        ca.ok() ? MakeSignedCertificate(*ca, "ps:0", {"127.0.0.1"}, day) : ca.status();
    absl::StatusOr<PemPair> client =
        ca.ok() ? MakeSignedCertificate(*ca, "worker:0", {"localhost"}, day) : ca.status();
    if (!server.ok() || !client.ok()) {
      std::fprintf(stderr, "ps_bench: %s\n", (server.ok() ? client : server).status().ToString().c_str());
      return 1;
    }
    auto make = [&](const PemPair& own, const char* task) {
      auto s = std::make_shared<TransportSecurity>();
      s->ca_pem = ca->cert;
      s->cert_pem = own.cert;
      s->key_pem = own.key;
      s->token = "ps-bench-job-token-0123456789abcdef";
      s->task = task;
      return SecurityPtr(std::move(s));
    };
    server_security = make(*server, "ps:0");
    client_security = make(*client, "worker:0");
  }
  PsClientOptions client_options;
  client_options.channel.security = client_security;
  int port_pipe[2], stop_pipe[2];
  if (pipe(port_pipe) != 0 || pipe(stop_pipe) != 0) return 1;
  const pid_t child = fork();  // before any gRPC state exists
  if (child == 0) {
    close(port_pipe[0]);
    close(stop_pipe[1]);
    Serve(port_pipe[1], stop_pipe[0], server_security, data_plane);
  }
  close(port_pipe[1]);
  close(stop_pipe[0]);
  int port = 0;
  if (read(port_pipe[0], &port, sizeof(port)) != sizeof(port)) return 1;
  const std::string address = absl::StrCat("127.0.0.1:", port);

  OptimizerConfig sgd;
  sgd.learning_rate = 1e-6;
  std::unique_ptr<PsClient> chief = *PsClient::Create({address}, client_options);
  absl::Status init = chief->Initialize(
      1, {{"w", RowMatrixXf::Random(kRows, kCols), false, true, sgd, {}, 0}}, 0,
      absl::Now() + absl::Seconds(30));
  if (!init.ok()) {
    std::fprintf(stderr, "ps_bench: %s\n", init.ToString().c_str());
    return 1;
  }
  std::vector<std::vector<double>> latencies(clients);
  std::vector<int64_t> timed_pairs(clients, 0);
  std::vector<absl::Status> errors(clients);
  const absl::Time start = absl::Now() + absl::Seconds(1);
  const absl::Time end = start + absl::Seconds(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::unique_ptr<PsClient> client = *PsClient::Create({address}, client_options);
      absl::StatusOr<uint64_t> gen = client->WaitInitialized(1, absl::Now() + absl::Seconds(30));
      if (!gen.ok()) {
        errors[c] = gen.status();
        return;
      }
      Gradients g;
      g.dense["w"] = RowMatrixXf::Constant(kRows, kCols, 1.0f);
      Variables mirror;
      while (true) {
        const absl::Time t0 = absl::Now();
        if (t0 >= end) break;
        const absl::Time deadline = t0 + absl::Seconds(30);
        absl::StatusOr<int64_t> step = client->Push(g, deadline);
        absl::Status pulled = step.ok() ? client->Pull({"w"}, {}, &mirror, deadline) : step.status();
        if (!pulled.ok()) {
          errors[c] = pulled;
          return;
        }
        const absl::Time t1 = absl::Now();
        if (t0 >= start) {
          latencies[c].push_back(absl::ToDoubleMilliseconds(t1 - t0));
          if (t1 <= end) ++timed_pairs[c];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  close(stop_pipe[1]);
  waitpid(child, nullptr, 0);
  for (const absl::Status& e : errors) {
    if (!e.ok()) {
      std::fprintf(stderr, "ps_bench: %s\n", e.ToString().c_str());
      return 1;
    }
  }
  int64_t pairs = 0;
  std::vector<double> all;
  for (int c = 0; c < clients; ++c) {
    pairs += timed_pairs[c];
    all.insert(all.end(), latencies[c].begin(), latencies[c].end());
  }
  std::sort(all.begin(), all.end());
  std::printf("pairs_per_sec %.1f\n", pairs / seconds);
  std::printf("pair_ms_median %.3f\n", all.empty() ? 0.0 : all[all.size() / 2]);
  std::printf("mb_per_sec %.0f\n", pairs / seconds * 2 * kRows * kCols * sizeof(float) / 1e6);
  return 0;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Main(argc, argv); }
