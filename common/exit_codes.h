// Exit codes of every Estuary binary.
#ifndef ESTUARY_COMMON_EXIT_CODES_H_
#define ESTUARY_COMMON_EXIT_CODES_H_

namespace estuary {

inline constexpr int kExitOk = 0;
// The job failed at run time (lost the chief, a peer died, a deadline passed).
inline constexpr int kExitFailure = 1;
// Bad input: flags, TF_CONFIG, job file, or a chief that cannot be reached.
inline constexpr int kExitBadInput = 2;

}  // namespace estuary

#endif  // ESTUARY_COMMON_EXIT_CODES_H_
