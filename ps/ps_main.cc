// The parameter-server binary (TF_CONFIG task ps:N): serves the PS service
// (common/ps/ps_service.h) on the task's own gRPC port from the moment it
// joins the cluster, holds its shard of the variables (placed and
// initialised by the chief through PsClient), and exits 0 when the chief
// ends the job (unlike TensorFlow's, which never exit).
#include <sys/resource.h>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/ps/ps_service.h"
#include "common/ps/ps_shard.h"
#include "common/role_main.h"
#include "common/rpc.h"

namespace estuary {
namespace {

int RunPs(const RoleContext& ctx) {
  const absl::Time start = absl::Now();
  PsShard shard;
  PsGrpcService service(&shard, ctx.metrics);
  // Push and Pull also over the data plane, unless the job is secured (it
  // has neither TLS nor the token: ps_data_plane.h) or it is turned off.
  const bool secured = ctx.security != nullptr && ctx.security->any();
  if (!secured && ctx.job.distribution.ps_data_plane) {
    absl::StatusOr<std::string> own = ctx.tf_config.OwnAddress();
    const std::string host = own.ok() ? HostOf(*own) : std::string("127.0.0.1");
    if (absl::Status s = service.StartDataPlane(host); s.ok()) {
      spdlog::info("ps data plane on {}", JoinHostPort(host, service.data_port()));
    } else {
      spdlog::warn("no ps data plane ({}): push and pull go over gRPC", s.message());
    }
  }
  RoleServices extra;
  extra.services.push_back(&service);
  // The live view: the shard's sizes travel with every heartbeat.
  extra.report_source = [&shard](coordination::TaskReport* r) {
    const PsShardSizes sizes = shard.Sizes();
    coordination::PsShardSize* out = r->mutable_ps_shard();
    out->set_variables(sizes.variables);
    out->set_rows(sizes.rows);
    out->set_bytes(sizes.bytes);
  };
  const int code = RunMember(ctx, {}, std::move(extra));
  // Where the PS's time went (bench/ps_train_bench.py reads these lines).
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  spdlog::info("ps process: wall {:.1f} ms, cpu user {:.1f} ms, sys {:.1f} ms",
               absl::ToDoubleMilliseconds(absl::Now() - start), ms(usage.ru_utime),
               ms(usage.ru_stime));
  spdlog::info("{}", service.TimingSummary());
  return code;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) {
  estuary::TuneMallocForBulkTransfers();
  return estuary::RoleMain(
      argc, argv,
      {"ps",
       {"ps"},
       "Runs a parameter server of an Estuary cluster: joins the chief, serves its "
       "shard of the variables (the chief places and initialises them; workers pull "
       "and push), and exits when the chief ends the job (unlike TensorFlow's, which "
       "never exit)."},
      estuary::RunPs);
}
