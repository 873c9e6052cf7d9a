// The worker binary (TF_CONFIG task worker:N): trains its shard of the input
// (distribute/trainer.h) when the job has a train_input. Worker 0 of a
// cluster without a chief (or master) is the coordinator, as in TensorFlow.
#include "common/coordination/coordinator.h"
#include "common/role_main.h"
#include "distribute/trainer.h"

int main(int argc, char** argv) {
  return estuary::RoleMain(
      argc, argv,
      {"worker",
       {"worker"},
       "Runs a worker of an Estuary cluster: joins the chief and trains on its shard "
       "of the input. Worker 0 coordinates the cluster when it has no chief."},
      [](const estuary::RoleContext& ctx) {
        const estuary::RoleJob job = estuary::HasTraining(ctx.job)
                                         ? estuary::RoleJob(estuary::RunTrainer)
                                         : estuary::RoleJob();
        return ctx.tf_config.IsCoordinator() ? estuary::RunCoordinator(ctx, job)
                                             : estuary::RunMember(ctx, job);
      });
}
