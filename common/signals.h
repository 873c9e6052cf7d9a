// SIGINT/SIGTERM delivered to a thread instead of an async handler.
//
// SignalWatcher::Start() blocks SIGINT and SIGTERM in the calling thread;
// call it first in main, before any other thread exists, so that every
// thread inherits the mask. It then starts one thread that reads the
// signals from a signalfd and runs the registered callbacks there.
// Thread-safe. Owns its thread; the destructor stops and joins it.
#ifndef ESTUARY_COMMON_SIGNALS_H_
#define ESTUARY_COMMON_SIGNALS_H_

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace estuary {

class SignalWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> Start();
  ~SignalWatcher();

  // Runs `fn(signo)` on the watcher thread for every SIGINT/SIGTERM. If a
  // signal already arrived, runs it at once on the calling thread.
  void OnSignal(std::function<void(int)> fn);
  // Drops every callback; returns after any callback in flight finished, so
  // the objects they captured may be destroyed.
  void ClearCallbacks();
  // The first signal received, or 0.
  int received() const;

 private:
  SignalWatcher(int signal_fd, int stop_fd);
  void Loop();

  const int signal_fd_;
  const int stop_fd_;
  absl::Mutex calling_mu_;  // held while callbacks run
  mutable absl::Mutex mu_;
  std::vector<std::function<void(int)>> callbacks_ ABSL_GUARDED_BY(mu_);
  int received_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_SIGNALS_H_
