// The chief binary: coordinator of a cluster (TF_CONFIG task chief:0, or the
// legacy master:0), and a trainer (distribute/trainer.h) when the job has a
// train_input; without one it holds the cluster up for --hold_secs.
#include "common/coordination/coordinator.h"
#include "common/role_main.h"
#include "distribute/trainer.h"

int main(int argc, char** argv) {
  return estuary::RoleMain(
      argc, argv,
      {"chief",
       {"chief", "master"},
       "Runs the chief of an Estuary cluster: the coordination service every task "
       "registers with (heartbeats, key-value store, barriers), the start barrier, "
       "training (it initialises the parameter servers, trains its shard of the "
       "input, writes checkpoints and summaries), and the clean shutdown of every "
       "task at the end."},
      [](const estuary::RoleContext& ctx) {
        return estuary::RunCoordinator(
            ctx, estuary::HasTraining(ctx.job) ? estuary::RoleJob(estuary::RunTrainer)
                                               : estuary::RoleJob());
      });
}
