// The chief binary: coordinator of a cluster (TF_CONFIG task chief:0, or the
// legacy master:0).
#include "common/coordination/coordinator.h"
#include "common/role_main.h"

int main(int argc, char** argv) {
  return estuary::RoleMain(
      argc, argv,
      {"chief",
       {"chief", "master"},
       "Runs the chief of an Estuary cluster: the coordination service every task "
       "registers with (heartbeats, key-value store, barriers), the start barrier, "
       "the job itself, and the clean shutdown of every task at the end."},
      [](const estuary::RoleContext& ctx) { return estuary::RunCoordinator(ctx); });
}
