// Env: the one interface through which Estuary touches the file system
// (after leveldb's Env). The checkpoint, the summary writer, the record
// readers and the job loader take an Env (explicitly or in their options
// struct), so that tests can inject faults (fault_injecting_env.h) and a
// later remote file system can plug in.
//
// Env::Default() is the local POSIX file system: a process-wide, stateless,
// immutable object (like leveldb's Env::Default()); it is never null and never
// destroyed. Every method is const: an Env is a handle on a file system, not
// its state.
//
// Thread-safety: implementations are thread-safe. The streams they return
// are thread-compatible (common/io/file.h).
//
// Errors. Every error message names the path (and, for RenameFile, both
// paths). Codes follow io::ErrnoToStatus (file.h): NotFound for a missing
// file or directory, PermissionDenied, ResourceExhausted (disk full, out of
// file descriptors), FailedPrecondition (a directory where a file is expected
// or the reverse), Unavailable (EIO, EINTR), Internal otherwise.
#ifndef ESTUARY_COMMON_IO_ENV_H_
#define ESTUARY_COMMON_IO_ENV_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/io/file.h"

namespace estuary {
namespace io {

struct WritableFileOptions {
  // Close() fsyncs the file before closing it (and fails if fsync fails).
  bool sync_on_close = false;
};

struct FileInfo {
  uint64_t size = 0;  // bytes; for a directory, whatever stat(2) says
  bool is_directory = false;
};

class Env {
 public:
  virtual ~Env() = default;

  // The local POSIX file system (see the file comment).
  static const Env& Default();

  // Opens `path` for reading front to back. NotFound if absent.
  virtual absl::StatusOr<std::unique_ptr<InputStream>> NewSequentialFile(
      const std::string& path) const = 0;
  // Creates `path` (or truncates it), mode 0644, for writing front to back.
  // NotFound if its directory does not exist.
  virtual absl::StatusOr<std::unique_ptr<OutputStream>> NewWritableFile(
      const std::string& path, const WritableFileOptions& options = {}) const = 0;

  // Creates `dir` and every missing parent (mode 0755). Idempotent: OK if it
  // already exists as a directory; FailedPrecondition if it or a parent is a
  // file. OK for "".
  virtual absl::Status MakeDirs(const std::string& dir) const = 0;
  // The names (not paths) in directory `dir`, without "." and "..", in no
  // particular order. NotFound if `dir` does not exist.
  virtual absl::StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) const = 0;
  // Removes a file. NotFound if absent.
  virtual absl::Status DeleteFile(const std::string& path) const = 0;
  // rename(2): atomically replaces `to` (on one file system). Not durable
  // until the directory is synced (SyncDir). NotFound if `from` is absent.
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) const = 0;
  // fsyncs directory `dir`, making creations, renames and deletions in it
  // durable. NotFound if absent.
  virtual absl::Status SyncDir(const std::string& dir) const = 0;
  // Size and kind of `path` (following links). NotFound if absent.
  virtual absl::StatusOr<FileInfo> Stat(const std::string& path) const = 0;

  // True if `path` exists (Stat succeeds).
  bool FileExists(const std::string& path) const { return Stat(path).ok(); }
  // Size of `path` in bytes. NotFound if absent.
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) const;
};

// ---- Helpers built on an Env (the only copies of these in the tree).

// "dir/name"; `name` alone if `dir` is empty; no doubled slash.
std::string JoinPath(absl::string_view dir, absl::string_view name);
// The directory part of `path`: "a/b" -> "a", "b" -> ".", "/b" -> "/".
std::string DirName(absl::string_view path);
// The part after the last slash.
std::string BaseName(absl::string_view path);

// Everything left in `in`. Errors of its Read.
absl::StatusOr<std::string> ReadAll(InputStream& in);

// The whole contents of `path`. Errors of NewSequentialFile / reading.
absl::StatusOr<std::string> ReadWholeFile(const Env& env, const std::string& path);

// `<path>.tmp-<pid>-<random hex>`: a fresh name beside `path` for a
// temporary file that is renamed to `path` once complete.
std::string TempFileName(const std::string& path);

// Makes a complete temporary file visible under its final name, durably:
// RenameFile(tmp, path), then SyncDir(DirName(path)). If the rename fails,
// deletes `tmp` (best effort). Errors of RenameFile / SyncDir (its message
// then ends "after renaming '<tmp>' to '<path>'"); after a SyncDir error
// `path` exists but may not survive a crash.
absl::Status PublishFile(const Env& env, const std::string& tmp, const std::string& path);

// Replaces `path` with `contents` atomically and durably: writes
// TempFileName(path), fsyncs and closes it, then PublishFile. At every
// instant (a crash included) `path` is either the old or the new file. On
// error the temporary file is deleted (best effort). Errors of the file
// operations, naming the file.
absl::Status WriteFileDurably(const Env& env, const std::string& path,
                              absl::string_view contents);
// The same with the contents written by `write` into the temporary file
// (opened with sync_on_close): `write` must Close the stream (directly or
// through a writer that owns it, e.g. TFRecordWriter::Close) before
// returning OK; its error is returned as is.
absl::Status WriteFileDurably(
    const Env& env, const std::string& path,
    const std::function<absl::Status(std::unique_ptr<OutputStream>)>& write);

}  // namespace io
}  // namespace estuary

#endif  // ESTUARY_COMMON_IO_ENV_H_
