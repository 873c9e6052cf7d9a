#include "common/subprocess.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace estuary {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(SubprocessOptions options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("Subprocess: empty argv");
  if (access(options.argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot execute '", options.argv[0],
                                            "': ", std::strerror(errno)));
  }
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  // Everything the child needs is prepared before fork (no allocation after).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (options.env.count(key) == 0) env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : options.env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : options.argv) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const bool kill_with_parent = options.kill_with_parent;

  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (kill_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // undo the parent's SignalWatcher
    signal(SIGPIPE, SIG_DFL);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  const int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    close(out[0]);
    close(err[0]);
    return absl::InternalError(absl::StrCat("pidfd_open: ", std::strerror(errno)));
  }
  return std::unique_ptr<Subprocess>(
      new Subprocess(pid, pidfd, out[0], err[0], std::move(options)));
}

Subprocess::Subprocess(pid_t pid, int pidfd, int out_fd, int err_fd,
                       SubprocessOptions options)
    : pid_(pid), pidfd_(pidfd), options_(std::move(options)) {
  out_reader_ = std::thread([this, out_fd] { ReadLines(out_fd, false); });
  err_reader_ = std::thread([this, err_fd] { ReadLines(err_fd, true); });
}

Subprocess::~Subprocess() {
  if (!Poll().has_value()) {
    Signal(SIGKILL);
  }
  (void)Wait();
  close(pidfd_);
}

void Subprocess::ReadLines(int fd, bool is_stderr) {
  std::string pending;
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      const std::string line = pending.substr(start, nl - start);
      if (options_.on_line) {
        options_.on_line(line, is_stderr);
      } else {
        std::fprintf(is_stderr ? stderr : stdout, "%s\n", line.c_str());
      }
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) {
    if (options_.on_line) {
      options_.on_line(pending, is_stderr);
    } else {
      std::fprintf(is_stderr ? stderr : stdout, "%s\n", pending.c_str());
    }
  }
  close(fd);
}

bool Subprocess::Reap(int options) {
  absl::MutexLock l(&mu_);
  if (exit_code_.has_value()) return true;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, options);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return true;
  }
  return false;
}

void Subprocess::Signal(int signo) {
  absl::MutexLock l(&mu_);
  if (!exit_code_.has_value()) kill(pid_, signo);
}

std::optional<int> Subprocess::Poll() {
  Reap(WNOHANG);
  absl::MutexLock l(&mu_);
  return exit_code_;
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  while (!Reap(WNOHANG)) {
    pollfd p = {pidfd_, POLLIN, 0};
    int wait_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(
            absl::StrCat("process ", pid_, " (", options_.argv[0], ") still running after ",
                         absl::FormatDuration(timeout)));
      }
      wait_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    }
    poll(&p, 1, wait_ms);
  }
  bool join = false;
  {
    absl::MutexLock l(&mu_);
    if (!joined_) join = joined_ = true;
  }
  if (join) {
    out_reader_.join();
    err_reader_.join();
  }
  absl::MutexLock l(&mu_);
  return *exit_code_;
}

absl::StatusOr<PortReservation> PortReservation::Reserve() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string msg = std::strerror(errno);
    close(fd);
    return absl::InternalError(absl::StrCat("reserving a port: ", msg));
  }
  return PortReservation(fd, ntohs(addr.sin_port));
}

PortReservation::~PortReservation() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace estuary
