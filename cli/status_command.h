// `estuary status TF_CONFIG-or-address [--watch]`: the cluster's live view
// (common/status/) as a terminal table. Where the status comes from:
//  - TF_CONFIG (a JSON string, a file holding one, or, with no argument,
//    $TF_CONFIG): the coordinator's address from its cluster (chief:0,
//    master:0, else worker:0), asked over gRPC (CoordinationService.
//    GetStatus) — every coordinator answers, with or without a
//    --status_port;
//  - host:port: the coordinator's gRPC address, asked the same way;
//  - http://host:port[/]: the chief's status page, its /status.json.
#ifndef ESTUARY_CLI_STATUS_COMMAND_H_
#define ESTUARY_CLI_STATUS_COMMAND_H_

#include "common/signals.h"

namespace estuary {

// argv[1] is "status". With --watch, redraws every --interval seconds
// until SIGINT/SIGTERM (then exits 0), showing errors in place of the
// table while the chief cannot be reached. Exit codes: 0 ok, 1 the chief
// could not be reached (or answered an error), 2 bad input.
int StatusCommand(int argc, char** argv, SignalWatcher* signals);

}  // namespace estuary

#endif  // ESTUARY_CLI_STATUS_COMMAND_H_
