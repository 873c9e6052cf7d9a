// The coordinator's life: host the coordination service on this task's
// gRPC server, wait for every task at the start barrier, run the job, then
// shut the whole cluster down (every task, ps included, leaves) and exit.
// Run by the `chief` binary (task chief:0 or legacy master:0) and by the
// `worker` binary for worker:0 when the cluster has no chief (TensorFlow's
// convention), so it lives here, in no role's package.
#ifndef ESTUARY_COMMON_COORDINATION_COORDINATOR_H_
#define ESTUARY_COMMON_COORDINATION_COORDINATOR_H_

#include "common/role_main.h"

namespace estuary {

// Runs `job` after the start barrier (no job: holds the cluster up for
// ctx.hold, as the chief did before training landed), then shuts the
// cluster down (job_failed when the job returned an error). Returns the
// process exit code (see common/role_main.h).
int RunCoordinator(const RoleContext& ctx, const RoleJob& job = {});

}  // namespace estuary

#endif  // ESTUARY_COMMON_COORDINATION_COORDINATOR_H_
