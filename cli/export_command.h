// `estuary export JOB.json [flags]`: an export for serving of the job's
// model (estimator/export/export.h).
#ifndef ESTUARY_CLI_EXPORT_COMMAND_H_
#define ESTUARY_CLI_EXPORT_COMMAND_H_

namespace estuary {

// argv[1] is the verb. Prints the new export directory as the last line of
// stdout. Exit codes: 0 ok, 1 failed at run time, 2 bad input (flags, job,
// no checkpoint).
int ExportCommand(int argc, char** argv);

}  // namespace estuary

#endif  // ESTUARY_CLI_EXPORT_COMMAND_H_
