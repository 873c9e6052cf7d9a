// The threads that compute a step's local replicas 1..n-1 while the
// caller's thread computes replica 0: RunTrainLoop's replicas (training)
// and Estimator::Evaluate's under eval_distribute (evaluation).
//
// Thread-safety: Run is called from one thread at a time (the owner's).
// Starts n-1 threads at construction, which wait for Run's rounds and are
// joined by the destructor.
#ifndef ESTUARY_ESTIMATOR_REPLICA_THREADS_H_
#define ESTUARY_ESTIMATOR_REPLICA_THREADS_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace estuary {

class ReplicaThreads {
 public:
  explicit ReplicaThreads(int replicas) {
    for (int i = 1; i < replicas; ++i) threads_.emplace_back([this, i] { Serve(i); });
  }
  ~ReplicaThreads() {
    {
      absl::MutexLock lock(&mu_);
      shutdown_ = true;
      start_.SignalAll();
    }
    for (std::thread& t : threads_) t.join();
  }
  ReplicaThreads(const ReplicaThreads&) = delete;
  ReplicaThreads& operator=(const ReplicaThreads&) = delete;

  // Runs fn(i) for every replica i, fn(0) on this thread; returns when
  // every call has returned.
  void Run(const std::function<void(int)>& fn) {
    {
      absl::MutexLock lock(&mu_);
      fn_ = &fn;
      pending_ = static_cast<int>(threads_.size());
      ++round_;
      start_.SignalAll();
    }
    fn(0);
    absl::MutexLock lock(&mu_);
    while (pending_ > 0) done_.Wait(&mu_);
    fn_ = nullptr;
  }

 private:
  void Serve(int replica) {
    int64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* fn = nullptr;
      {
        absl::MutexLock lock(&mu_);
        while (round_ == seen && !shutdown_) start_.Wait(&mu_);
        if (shutdown_) return;
        seen = round_;
        fn = fn_;
      }
      (*fn)(replica);
      absl::MutexLock lock(&mu_);
      if (--pending_ == 0) done_.Signal();
    }
  }

  absl::Mutex mu_;
  absl::CondVar start_;
  absl::CondVar done_;
  const std::function<void(int)>* fn_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t round_ ABSL_GUARDED_BY(mu_) = 0;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // last: started after the fields above
};


}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_REPLICA_THREADS_H_
