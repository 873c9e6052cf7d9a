// `estuary inspect CHECKPOINT`: the variables of a checkpoint of either
// format (Estuary's or a TF V2 bundle), like TF's inspect_checkpoint.
#ifndef ESTUARY_CLI_INSPECT_COMMAND_H_
#define ESTUARY_CLI_INSPECT_COMMAND_H_

namespace estuary {

// argv[1] is the verb. Prints "<name> (<dtype>) [<shape>]" per tensor
// (TF's CheckpointReader::DebugString lines), sorted by name, after a
// "# checkpoint <prefix> (<format>)" line; --tensor_name / --all_tensors
// also print values. Exit codes: 0 ok, 1 unreadable data (DataLoss), 2 bad
// input (flags, no such checkpoint or tensor).
int InspectCommand(int argc, char** argv);

}  // namespace estuary

#endif  // ESTUARY_CLI_INSPECT_COMMAND_H_
