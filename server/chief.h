// The coordinator role: hosts the coordination service on its own gRPC
// server, waits for every task at the start barrier, runs the job, then
// shuts the whole cluster down (every task, ps included, leaves) and exits.
// Run by the `chief` binary (task chief:0 or legacy master:0) and by the
// `worker` binary for worker:0 when the cluster has no chief.
#ifndef ESTUARY_SERVER_CHIEF_H_
#define ESTUARY_SERVER_CHIEF_H_

#include "common/role_main.h"

namespace estuary {

// Returns the process exit code.
int RunChief(const RoleContext& ctx);

}  // namespace estuary

#endif  // ESTUARY_SERVER_CHIEF_H_
