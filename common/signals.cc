#include "common/signals.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace estuary {

absl::StatusOr<std::unique_ptr<SignalWatcher>> SignalWatcher::Start() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
    return absl::InternalError("pthread_sigmask failed");
  }
  // A peer closing a connection must not kill the process.
  signal(SIGPIPE, SIG_IGN);
  const int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) return absl::InternalError(absl::StrCat("signalfd: ", std::strerror(errno)));
  const int efd = eventfd(0, EFD_CLOEXEC);
  if (efd < 0) {
    close(sfd);
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<SignalWatcher>(new SignalWatcher(sfd, efd));
}

SignalWatcher::SignalWatcher(int signal_fd, int stop_fd)
    : signal_fd_(signal_fd), stop_fd_(stop_fd), thread_([this] { Loop(); }) {}

SignalWatcher::~SignalWatcher() {
  const uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
  thread_.join();
  close(signal_fd_);
  close(stop_fd_);
}

void SignalWatcher::OnSignal(std::function<void(int)> fn) {
  int already;
  {
    absl::MutexLock l(&mu_);
    callbacks_.push_back(fn);
    already = received_;
  }
  if (already != 0) fn(already);
}

void SignalWatcher::ClearCallbacks() {
  absl::MutexLock c(&calling_mu_);
  absl::MutexLock l(&mu_);
  callbacks_.clear();
}

int SignalWatcher::received() const {
  absl::MutexLock l(&mu_);
  return received_;
}

void SignalWatcher::Loop() {
  pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    signalfd_siginfo info;
    if (read(signal_fd_, &info, sizeof(info)) != sizeof(info)) continue;
    const int signo = static_cast<int>(info.ssi_signo);
    absl::MutexLock c(&calling_mu_);
    std::vector<std::function<void(int)>> callbacks;
    {
      absl::MutexLock l(&mu_);
      if (received_ == 0) received_ = signo;
      callbacks = callbacks_;
    }
    for (auto& fn : callbacks) fn(signo);
  }
}

}  // namespace estuary
