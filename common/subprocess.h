// Child processes with their output streamed line by line: used by the
// `estuary local` launcher and by multi-process tests.
//
// Thread-safe. Each Subprocess owns two reader threads (stdout, stderr)
// that call `on_line` for every complete line; the destructor kills the
// child (SIGKILL) if it still runs and joins the readers.
#ifndef ESTUARY_COMMON_SUBPROCESS_H_
#define ESTUARY_COMMON_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace estuary {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0] is the executable path
  // Added to (or replacing in) the parent's environment.
  std::map<std::string, std::string> env;
  // The child gets SIGKILL when the parent dies (PR_SET_PDEATHSIG), so a
  // killed launcher never leaves a cluster behind.
  bool kill_with_parent = true;
  // Called from a reader thread for each line (without '\n'), with
  // is_stderr. If unset, output goes to the parent's stdout/stderr.
  std::function<void(const std::string& line, bool is_stderr)> on_line;
};

class Subprocess {
 public:
  // Starts the child. NotFound / Internal naming the executable on failure.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(SubprocessOptions options);
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // Sends `signo`; no-op once the child has been reaped.
  void Signal(int signo);

  // Waits up to `timeout` for the child to exit and for its output to be
  // drained. Returns its exit code, or 128+signal if killed by a signal.
  // DeadlineExceeded if it is still running at the timeout.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::InfiniteDuration());
  // The exit code if the child has exited (non-blocking).
  std::optional<int> Poll();
  // Fd that becomes readable when the child exits (a pidfd), for poll().
  int exit_fd() const { return pidfd_; }

 private:
  Subprocess(pid_t pid, int pidfd, int out_fd, int err_fd, SubprocessOptions options);
  void ReadLines(int fd, bool is_stderr);
  bool Reap(int options);

  const pid_t pid_;
  const int pidfd_;
  SubprocessOptions options_;
  std::thread out_reader_;
  std::thread err_reader_;
  absl::Mutex mu_;
  std::optional<int> exit_code_ ABSL_GUARDED_BY(mu_);
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
};

// Reserves a free TCP port on 127.0.0.1: binds port 0 with SO_REUSEPORT and
// keeps the socket (not listening) open until the returned object dies, so
// no other process takes the port while a child that also sets
// SO_REUSEPORT (gRPC does) binds it.
class PortReservation {
 public:
  static absl::StatusOr<PortReservation> Reserve();
  PortReservation(PortReservation&& o) noexcept : fd_(o.fd_), port_(o.port_) { o.fd_ = -1; }
  PortReservation& operator=(PortReservation&&) = delete;
  ~PortReservation();
  int port() const { return port_; }

 private:
  PortReservation(int fd, int port) : fd_(fd), port_(port) {}
  int fd_;
  int port_;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_SUBPROCESS_H_
