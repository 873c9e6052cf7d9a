// The parameter-server binary (TF_CONFIG task ps:N).
#include "common/role_main.h"

int main(int argc, char** argv) {
  return estuary::RoleMain(
      argc, argv,
      {"ps",
       {"ps"},
       "Runs a parameter server of an Estuary cluster: joins the chief, holds its "
       "shard of the variables, and exits when the chief ends the job (unlike "
       "TensorFlow's, which never exit)."},
      [](const estuary::RoleContext& ctx) { return estuary::RunMember(ctx); });
}
