#include "serving/batcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace estuary {
namespace serving {
namespace {

// Requests batch together only if this key matches.
std::string QueueKey(const LoadedExport* model, const std::string& signature,
                     const std::map<std::string, Tensor>& inputs) {
  std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(model), "|", signature);
  for (const auto& [name, t] : inputs) {
    std::vector<int64_t> row(t.shape.size() > 1 ? t.shape.begin() + 1 : t.shape.end(),
                             t.shape.end());
    absl::StrAppend(&key, "|", name, ":", static_cast<int>(t.dtype), ":", t.shape.size(), ":",
                    absl::StrJoin(row, ","));
  }
  return key;
}

void Append(const Tensor& from, Tensor* to) {
  to->floats.insert(to->floats.end(), from.floats.begin(), from.floats.end());
  to->ints.insert(to->ints.end(), from.ints.begin(), from.ints.end());
  to->strings.insert(to->strings.end(), from.strings.begin(), from.strings.end());
}

// Rows [begin, begin + n) of `t` (row_size elements each).
Tensor Rows(const Tensor& t, int64_t begin, int64_t n) {
  Tensor out;
  out.dtype = t.dtype;
  out.shape = t.shape;
  out.shape[0] = n;
  const int64_t rs = t.row_size();
  switch (t.dtype) {
    case DType::kFloat:
      out.floats.assign(t.floats.begin() + begin * rs, t.floats.begin() + (begin + n) * rs);
      break;
    case DType::kInt64:
      out.ints.assign(t.ints.begin() + begin * rs, t.ints.begin() + (begin + n) * rs);
      break;
    case DType::kString:
      out.strings.assign(t.strings.begin() + begin * rs, t.strings.begin() + (begin + n) * rs);
      break;
  }
  return out;
}

}  // namespace

Batcher::Batcher(BatchingOptions options, prometheus::Histogram* batch_sizes)
    : options_(std::move(options)), batch_sizes_(batch_sizes) {
  const int n = std::max(1, options_.num_batch_threads);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

Batcher::~Batcher() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  for (std::thread& t : threads_) t.join();
}

int64_t Batcher::batches_run() const {
  absl::MutexLock l(&mu_);
  return batches_run_;
}

int64_t Batcher::largest_batch() const {
  absl::MutexLock l(&mu_);
  return largest_batch_;
}

absl::StatusOr<std::map<std::string, Tensor>> Batcher::Run(
    std::shared_ptr<const LoadedExport> model, const std::string& signature,
    std::map<std::string, Tensor> inputs) {
  int64_t rows = -1;
  for (const auto& [name, t] : inputs) {
    if (t.shape.empty()) {
      rows = -1;
      break;
    }
    if (rows >= 0 && t.shape[0] != rows) {
      rows = -1;
      break;
    }
    rows = t.shape[0];
  }
  // Scalars, ragged batches and big requests run alone (Run reports any error).
  if (rows <= 0 || rows > options_.max_batch_size) return model->Run(signature, inputs);

  Task task;
  task.rows = rows;
  const std::string key = QueueKey(model.get(), signature, inputs);
  task.inputs = std::move(inputs);
  {
    absl::MutexLock l(&mu_);
    if (stop_) return absl::UnavailableError("the server is shutting down");
    if (queued_rows_ + rows > options_.max_batch_size * options_.max_enqueued_batches) {
      return absl::UnavailableError(
          "The batch scheduling queue to which this task was submitted is full");
    }
    Queue& q = queues_[key];
    if (q.tasks.empty()) {
      q.model = std::move(model);
      q.signature = signature;
      q.oldest = absl::Now();
    }
    q.tasks.push_back(&task);
    q.rows += rows;
    queued_rows_ += rows;
    cv_.Signal();
  }
  task.done.WaitForNotification();
  return std::move(task.result);
}

void Batcher::Loop() {
  absl::MutexLock l(&mu_);
  while (true) {
    const absl::Time now = absl::Now();
    absl::Time earliest = absl::InfiniteFuture();
    auto ready = queues_.end();
    for (auto it = queues_.begin(); it != queues_.end(); ++it) {
      const absl::Time due = it->second.oldest + options_.batch_timeout;
      if (stop_ || it->second.rows >= options_.max_batch_size || now >= due) {
        ready = it;
        break;
      }
      earliest = std::min(earliest, due);
    }
    if (ready == queues_.end()) {
      if (stop_) return;
      cv_.WaitWithDeadline(&mu_, earliest);
      continue;
    }
    Queue& q = ready->second;
    std::vector<Task*> tasks;
    int64_t rows = 0;
    while (!q.tasks.empty() &&
           (tasks.empty() || rows + q.tasks.front()->rows <= options_.max_batch_size)) {
      rows += q.tasks.front()->rows;
      tasks.push_back(q.tasks.front());
      q.tasks.pop_front();
    }
    q.rows -= rows;
    queued_rows_ -= rows;
    std::shared_ptr<const LoadedExport> model = q.model;
    const std::string signature = q.signature;
    if (q.tasks.empty()) {
      queues_.erase(ready);
    } else {
      q.oldest = now;  // the rest waits for the next batch
    }
    ++batches_run_;
    largest_batch_ = std::max(largest_batch_, rows);
    mu_.Unlock();
    if (batch_sizes_ != nullptr) batch_sizes_->Observe(static_cast<double>(rows));
    RunBatch(model, signature, tasks);
    mu_.Lock();
  }
}

void Batcher::RunBatch(const std::shared_ptr<const LoadedExport>& model,
                       const std::string& signature, const std::vector<Task*>& tasks) {
  absl::StatusOr<std::map<std::string, Tensor>> out;
  int64_t total = 0;
  for (const Task* t : tasks) total += t->rows;
  if (tasks.size() == 1) {
    out = model->Run(signature, tasks[0]->inputs);
  } else {
    std::map<std::string, Tensor> inputs = tasks[0]->inputs;
    for (auto& [name, t] : inputs) t.shape[0] = total;
    for (size_t i = 1; i < tasks.size(); ++i) {
      for (const auto& [name, t] : tasks[i]->inputs) Append(t, &inputs[name]);
    }
    out = model->Run(signature, inputs);
  }
  if (!out.ok() || tasks.size() == 1) {
    for (Task* t : tasks) {
      t->result = out;
      t->done.Notify();
    }
    return;
  }
  for (const auto& [name, t] : *out) {
    if (t.shape.empty() || t.shape[0] != total) {
      const absl::Status st = absl::InternalError(absl::StrCat(
          "batched output '", name, "' has ", t.shape.empty() ? 0 : t.shape[0],
          " rows; the batch has ", total));
      for (Task* task : tasks) {
        task->result = st;
        task->done.Notify();
      }
      return;
    }
  }
  int64_t begin = 0;
  for (Task* task : tasks) {
    std::map<std::string, Tensor> mine;
    for (const auto& [name, t] : *out) mine[name] = Rows(t, begin, task->rows);
    begin += task->rows;
    task->result = std::move(mine);
    task->done.Notify();
  }
}

}  // namespace serving
}  // namespace estuary
