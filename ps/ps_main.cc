// The parameter-server binary (TF_CONFIG task ps:N): serves the PS service
// (common/ps/ps_service.h) on the task's own gRPC port from the moment it
// joins the cluster, holds its shard of the variables (placed and
// initialised by the chief through PsClient), and exits 0 when the chief
// ends the job (unlike TensorFlow's, which never exit).
#include "common/ps/ps_service.h"
#include "common/ps/ps_shard.h"
#include "common/role_main.h"

namespace estuary {
namespace {

int RunPs(const RoleContext& ctx) {
  PsShard shard;
  PsGrpcService service(&shard);
  return RunMember(ctx, {}, {{&service}});
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) {
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
