#include "common/io/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace estuary {
namespace io {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return ErrnoToStatus(errno, absl::StrCat(what, " '", path, "'"));
}

class PosixEnv : public Env {
 public:
  absl::StatusOr<std::unique_ptr<InputStream>> NewSequentialFile(
      const std::string& path) const override {
    return FileInputStream::Open(path);
  }

  absl::StatusOr<std::unique_ptr<OutputStream>> NewWritableFile(
      const std::string& path, const WritableFileOptions& options) const override {
    return FileOutputStream::Create(path, options.sync_on_close);
  }

  absl::Status MakeDirs(const std::string& dir) const override {
    if (dir.empty()) return absl::OkStatus();
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return absl::OkStatus();
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create directory '", dir, "': a file is in the way"));
    }
    const std::string parent = DirName(dir);
    if (parent != dir) {
      RETURN_IF_ERROR(MakeDirs(parent));
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno("cannot create directory", dir);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) const override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Errno("cannot list directory", dir);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      const absl::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoToStatus(err, absl::StrCat("cannot list directory '", dir, "'"));
    return names;
  }

  absl::Status DeleteFile(const std::string& path) const override {
    if (::unlink(path.c_str()) != 0) return Errno("cannot delete", path);
    return absl::OkStatus();
  }

  absl::Status RenameFile(const std::string& from, const std::string& to) const override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("cannot rename '", from, "' to '", to, "'"));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) const override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open directory", dir);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoToStatus(err, absl::StrCat("cannot fsync directory '", dir, "'"));
    return absl::OkStatus();
  }

  absl::StatusOr<FileInfo> Stat(const std::string& path) const override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
    FileInfo info;
    info.size = static_cast<uint64_t>(st.st_size);
    info.is_directory = S_ISDIR(st.st_mode);
    return info;
  }
};

}  // namespace

const Env& Env::Default() {
  static const PosixEnv* const env = new PosixEnv();
  return *env;
}

absl::StatusOr<uint64_t> Env::GetFileSize(const std::string& path) const {
  ASSIGN_OR_RETURN(FileInfo info, Stat(path));
  return info.size;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

std::string DirName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string BaseName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

absl::StatusOr<std::string> ReadAll(InputStream& in) {
  std::string data;
  char buf[65536];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, in.Read(buf, sizeof(buf)));
    if (n == 0) break;
    data.append(buf, n);
  }
  return data;
}

absl::StatusOr<std::string> ReadWholeFile(const Env& env, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<InputStream> in, env.NewSequentialFile(path));
  return ReadAll(*in);
}

std::string TempFileName(const std::string& path) {
  absl::BitGen gen;  // seeded from the OS entropy pool: no shared state
  return absl::StrFormat("%s.tmp-%d-%016x", path, ::getpid(), absl::Uniform<uint64_t>(gen));
}

absl::Status PublishFile(const Env& env, const std::string& tmp, const std::string& path) {
  if (absl::Status s = env.RenameFile(tmp, path); !s.ok()) {
    env.DeleteFile(tmp).IgnoreError();
    return s;
  }
  absl::Status s = env.SyncDir(DirName(path));
  if (s.ok()) return s;
  // Name the file too: the directory alone does not say which write failed.
  absl::Status named(s.code(), absl::StrCat(s.message(), " after renaming '", tmp, "' to '",
                                            path, "'"));
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    named.SetPayload(url, payload);
  });
  return named;
}

absl::Status WriteFileDurably(
    const Env& env, const std::string& path,
    const std::function<absl::Status(std::unique_ptr<OutputStream>)>& write) {
  const std::string tmp = TempFileName(path);
  absl::StatusOr<std::unique_ptr<OutputStream>> file =
      env.NewWritableFile(tmp, WritableFileOptions{/*sync_on_close=*/true});
  absl::Status s = file.status();
  if (s.ok()) s = write(*std::move(file));  // the stream is closed when write returns
  if (!s.ok()) {
    env.DeleteFile(tmp).IgnoreError();
    return s;
  }
  return PublishFile(env, tmp, path);
}

absl::Status WriteFileDurably(const Env& env, const std::string& path,
                              absl::string_view contents) {
  return WriteFileDurably(env, path, [&](std::unique_ptr<OutputStream> out) -> absl::Status {
    RETURN_IF_ERROR(out->Append(contents));
    return out->Close();
  });
}

}  // namespace io
}  // namespace estuary
