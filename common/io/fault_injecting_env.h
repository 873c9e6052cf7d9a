// An Env for tests that forwards to another Env and fails chosen operations:
// the N-th write, fsync, rename, ... or every operation a predicate selects.
// A failed operation does nothing (except a failed fsync, which closes the
// file: the data may or may not have reached the disk, as after a real
// fsync error) and returns InjectedFault(...): Unavailable, message
// "injected fault: <op> '<path>'", recognisable with IsInjectedFault.
//
// Operations are counted per kind from construction (or Reset), failed ones
// included:
//   kOpenRead  NewSequentialFile          kRead    each InputStream::Read
//   kCreate    NewWritableFile            kWrite   each OutputStream::Append
//   kSync      Close of a sync_on_close file (its fsync)
//   kMakeDirs  MakeDirs   kList GetChildren   kDelete DeleteFile
//   kRename    RenameFile kSyncDir SyncDir    kStat   Stat (and FileExists,
//                                                     GetFileSize)
//
// Thread-safe. Streams it returns must not outlive it.
#ifndef ESTUARY_COMMON_IO_FAULT_INJECTING_ENV_H_
#define ESTUARY_COMMON_IO_FAULT_INJECTING_ENV_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/io/env.h"

namespace estuary {
namespace io {

enum class FaultOp {
  kOpenRead,
  kRead,
  kCreate,
  kWrite,
  kSync,
  kMakeDirs,
  kList,
  kDelete,
  kRename,
  kSyncDir,
  kStat,
};
inline constexpr int kNumFaultOps = 11;
// "open", "read", "create", "write", "fsync", "mkdir", "list", "delete",
// "rename", "fsync dir", "stat".
const char* FaultOpName(FaultOp op);

// One operation as the predicate sees it.
struct FaultPoint {
  FaultOp op;
  std::string path;  // for kRename: the source
  int64_t n = 0;     // 1-based: this is the n-th operation of its kind
};

// Unavailable "injected fault: <op> '<path>'" carrying a payload that
// IsInjectedFault recognises.
absl::Status InjectedFault(FaultOp op, const std::string& path);
bool IsInjectedFault(const absl::Status& status);

class FaultInjectingEnv : public Env {
 public:
  // `base` (not owned) does the real work; it must outlive this Env.
  explicit FaultInjectingEnv(const Env* base = &Env::Default()) : base_(base) {}
  FaultInjectingEnv(const FaultInjectingEnv&) = delete;
  FaultInjectingEnv& operator=(const FaultInjectingEnv&) = delete;

  // Fails the n-th (1-based, counted as described above) operation of `op`.
  void FailNth(FaultOp op, int64_t n);
  // Fails every operation for which `predicate` returns true. The predicate
  // runs under the Env's lock: it must not call the Env.
  void FailIf(std::function<bool(const FaultPoint&)> predicate);
  // Forgets the rules and zeroes the counts.
  void Reset();
  // Operations of `op` so far (failed ones included).
  int64_t count(FaultOp op) const;
  // Faults injected so far.
  int64_t injected() const;

  absl::StatusOr<std::unique_ptr<InputStream>> NewSequentialFile(
      const std::string& path) const override;
  absl::StatusOr<std::unique_ptr<OutputStream>> NewWritableFile(
      const std::string& path, const WritableFileOptions& options) const override;
  absl::Status MakeDirs(const std::string& dir) const override;
  absl::StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) const override;
  absl::Status DeleteFile(const std::string& path) const override;
  absl::Status RenameFile(const std::string& from, const std::string& to) const override;
  absl::Status SyncDir(const std::string& dir) const override;
  absl::StatusOr<FileInfo> Stat(const std::string& path) const override;

  // Counts one `op` on `path`; InjectedFault if a rule selects it, else OK.
  // (For the streams this Env returns.)
  absl::Status Check(FaultOp op, const std::string& path) const;

 private:
  struct NthRule {
    FaultOp op;
    int64_t n;
  };

  const Env* const base_;
  mutable absl::Mutex mu_;
  // The counts change on every (const) operation: they describe the
  // operations seen, not the Env's behaviour.
  mutable std::array<int64_t, kNumFaultOps> counts_ ABSL_GUARDED_BY(mu_) = {};
  mutable int64_t injected_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<NthRule> nth_rules_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<bool(const FaultPoint&)>> predicates_ ABSL_GUARDED_BY(mu_);
};

}  // namespace io
}  // namespace estuary

#endif  // ESTUARY_COMMON_IO_FAULT_INJECTING_ENV_H_
