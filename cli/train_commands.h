// `estuary train | train_and_evaluate | evaluate | predict JOB.json`: the
// Estimator in one process, driven by a job file.
#ifndef ESTUARY_CLI_TRAIN_COMMANDS_H_
#define ESTUARY_CLI_TRAIN_COMMANDS_H_

namespace estuary {

// argv[1] is the verb. Exit codes: 0 ok, 1 failed at run time, 2 bad input.
int TrainCommand(int argc, char** argv);
// tf.estimator.train_and_evaluate in one process (TF's local mode).
int TrainAndEvaluateCommand(int argc, char** argv);
int EvaluateCommand(int argc, char** argv);
int PredictCommand(int argc, char** argv);

}  // namespace estuary

#endif  // ESTUARY_CLI_TRAIN_COMMANDS_H_
