// `estuary serve`: TF Serving's model server over Estuary exports
// (serving/model_server.h), with TF Serving's flag names.
#ifndef ESTUARY_CLI_SERVE_COMMAND_H_
#define ESTUARY_CLI_SERVE_COMMAND_H_

#include "common/signals.h"

namespace estuary {

// argv[1] is "serve". Serves until SIGINT/SIGTERM (then drains and exits 0).
// Exit codes: 0 ok, 1 failed at run time (a port cannot be bound), 2 bad
// input (flags, config files).
int ServeCommand(int argc, char** argv, SignalWatcher* signals);

}  // namespace estuary

#endif  // ESTUARY_CLI_SERVE_COMMAND_H_
