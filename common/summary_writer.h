// TensorBoard event files, as tf.summary.FileWriter / the Estimator write
// them: `<dir>/events.out.tfevents.<unix seconds, 10 digits>.<hostname><suffix>`,
// a TFRecord file of tensorflow.Event protos (proto/event.proto) whose first
// event has file_version "brain.Event:2". Scalars are written as
// Summary.Value.simple_value and histograms as Summary.Value.histo with TF's
// default buckets (common/histogram.h) — the TF1 summaries Estimator writes,
// which TensorBoard's scalars and histograms dashboards read.
//
// Thread-safe: any thread may add events, flush or close concurrently.
// Events reach the file on Flush, every `flush_interval` (a background
// thread), when `max_queue` events are pending, and on Close/destruction.
#ifndef ESTUARY_COMMON_SUMMARY_WRITER_H_
#define ESTUARY_COMMON_SUMMARY_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/io/env.h"
#include "common/io/tfrecord.h"
#include "proto/event.pb.h"

namespace estuary {

struct EventFileWriterOptions {
  // TF's FileWriter defaults: flush_secs=120, max_queue=10.
  absl::Duration flush_interval = absl::Seconds(120);
  int max_queue = 10;
  // Appended to the file name (e.g. ".v2"), as TF's filename_suffix.
  std::string filename_suffix;
  // Creates the directory and the file; not owned, never null.
  const io::Env* env = &io::Env::Default();
};

class EventFileWriter {
 public:
  // Creates `dir` if needed and a new event file in it (a name already taken
  // gets ".1", ".2", ... appended), and writes the file_version event.
  static absl::StatusOr<std::unique_ptr<EventFileWriter>> Create(
      const std::string& dir, const EventFileWriterOptions& options = {});
  // Closes (errors are logged).
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // A Summary.Value{tag, simple_value} at `step`.
  absl::Status AddScalar(absl::string_view tag, double value, int64_t step);
  // A Summary.Value{tag, histo} of `values` at `step`; InvalidArgument
  // naming the tag for NaN or infinite values (TF: "Nan in summary
  // histogram for: <tag>").
  absl::Status AddHistogram(absl::string_view tag, absl::Span<const double> values, int64_t step);
  absl::Status AddHistogram(absl::string_view tag, absl::Span<const float> values, int64_t step);
  // Any event; wall_time is set to now if 0.
  absl::Status AddEvent(tensorflow::Event event);

  // Writes pending events and flushes them to the file (not fsync).
  absl::Status Flush();
  // Flushes and closes; later Add* return FailedPrecondition. Idempotent.
  absl::Status Close();

  const std::string& path() const { return path_; }

 private:
  EventFileWriter(std::string path, std::unique_ptr<io::TFRecordWriter> writer,
                  const EventFileWriterOptions& options);
  absl::Status FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FlushLoop();

  const std::string path_;
  const EventFileWriterOptions options_;
  absl::Mutex mu_;
  std::unique_ptr<io::TFRecordWriter> writer_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);  // first write error; sticky
  std::thread flusher_;
};

}  // namespace estuary

#endif  // ESTUARY_COMMON_SUMMARY_WRITER_H_
