// Batches concurrent requests to one signature of one loaded model (TF
// Serving's --enable_batching): a request's inputs are queued with the others
// of the same model, signature, input names, dtypes and row shapes; a queue
// runs as one LoadedExport::Run (inputs concatenated along dimension 0) once
// it holds max_batch_size rows, or batch_timeout after its oldest request
// arrived, on one of num_batch_threads threads; every output is then split
// back by rows. A request larger than max_batch_size runs on its own.
//
// Thread-safe. Owns num_batch_threads threads; the destructor runs what is
// queued, then joins them.
#ifndef ESTUARY_SERVING_BATCHER_H_
#define ESTUARY_SERVING_BATCHER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/histogram.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/tensor.h"
#include "estimator/export/export.h"

namespace estuary {
namespace serving {

// TF Serving's BatchingParameters (the subset read).
struct BatchingOptions {
  int64_t max_batch_size = 32;
  absl::Duration batch_timeout = absl::Milliseconds(1);
  int num_batch_threads = 2;
  // Queued rows beyond max_batch_size * max_enqueued_batches are refused.
  int64_t max_enqueued_batches = 100;
};

class Batcher {
 public:
  // `batch_sizes` (may be null): observes the rows of every batch run
  // (ServingMetrics::batch_size).
  explicit Batcher(BatchingOptions options, prometheus::Histogram* batch_sizes = nullptr);
  ~Batcher();

  // Runs `signature` of `model` on `inputs` as part of a batch and returns
  // this request's rows of every output. Errors: those of Run (for the
  // whole batch), Unavailable (the queue is full, or the batcher is
  // stopping), Internal (an output without the batch's row count).
  absl::StatusOr<std::map<std::string, Tensor>> Run(std::shared_ptr<const LoadedExport> model,
                                                    const std::string& signature,
                                                    std::map<std::string, Tensor> inputs);

  // Batches run so far and the largest one (rows): for tests and logs.
  int64_t batches_run() const;
  int64_t largest_batch() const;

 private:
  struct Task {
    std::map<std::string, Tensor> inputs;
    int64_t rows = 0;
    absl::Notification done;
    absl::StatusOr<std::map<std::string, Tensor>> result;
  };
  struct Queue {
    std::shared_ptr<const LoadedExport> model;
    std::string signature;
    std::deque<Task*> tasks;
    int64_t rows = 0;
    absl::Time oldest;
  };

  void Loop();
  void RunBatch(const std::shared_ptr<const LoadedExport>& model, const std::string& signature,
                const std::vector<Task*>& tasks);

  const BatchingOptions options_;
  prometheus::Histogram* const batch_sizes_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, Queue> queues_ ABSL_GUARDED_BY(mu_);
  int64_t queued_rows_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_run_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t largest_batch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace serving
}  // namespace estuary

#endif  // ESTUARY_SERVING_BATCHER_H_
