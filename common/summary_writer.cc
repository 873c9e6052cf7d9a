#include "common/summary_writer.h"

#include <unistd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/histogram.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

double NowSeconds() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

template <typename T>
absl::Status AddHistogramImpl(EventFileWriter* w, absl::string_view tag, absl::Span<const T> values,
                              int64_t step) {
  Histogram h;
  for (T v : values) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat("Nan in summary histogram for: ", tag));
    }
    h.Add(static_cast<double>(v));
  }
  tensorflow::Event event;
  event.set_step(step);
  tensorflow::Summary::Value* value = event.mutable_summary()->add_value();
  value->set_tag(std::string(tag));
  *value->mutable_histo() = h.ToProto();
  return w->AddEvent(std::move(event));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventFileWriter>> EventFileWriter::Create(
    const std::string& dir, const EventFileWriterOptions& options) {
  const io::Env& env = *options.env;
  RETURN_IF_ERROR(env.MakeDirs(dir));
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  const double now = NowSeconds();
  const std::string base = absl::StrFormat("%s/events.out.tfevents.%010d.%s%s", dir,
                                           static_cast<int64_t>(now), host,
                                           options.filename_suffix);
  std::string path = base;
  for (int i = 1; env.FileExists(path); ++i) path = absl::StrCat(base, ".", i);
  io::TFRecordOptions record_options;
  record_options.env = &env;
  ASSIGN_OR_RETURN(auto writer, io::TFRecordWriter::Create(path, record_options));
  std::unique_ptr<EventFileWriter> w(new EventFileWriter(path, std::move(writer), options));
  tensorflow::Event first;
  first.set_wall_time(now);
  first.set_file_version("brain.Event:2");
  RETURN_IF_ERROR(w->AddEvent(std::move(first)));
  RETURN_IF_ERROR(w->Flush());
  return w;
}

EventFileWriter::EventFileWriter(std::string path, std::unique_ptr<io::TFRecordWriter> writer,
                                 const EventFileWriterOptions& options)
    : path_(std::move(path)), options_(options), writer_(std::move(writer)) {
  flusher_ = std::thread([this] { FlushLoop(); });
}

EventFileWriter::~EventFileWriter() {
  absl::Status s = Close();
  if (!s.ok()) spdlog::error("event file {}: {}", path_, s.ToString());
}

void EventFileWriter::FlushLoop() {
  absl::MutexLock lock(&mu_);
  while (!closed_) {
    // Waits for Close, or times out to flush.
    const bool closing = mu_.AwaitWithTimeout(
        absl::Condition(+[](bool* closed) { return *closed; }, &closed_),
        options_.flush_interval);
    if (closing) break;
    absl::Status s = FlushLocked();
    if (!s.ok()) spdlog::error("event file {}: {}", path_, s.ToString());
  }
}

absl::Status EventFileWriter::AddScalar(absl::string_view tag, double value, int64_t step) {
  tensorflow::Event event;
  event.set_step(step);
  tensorflow::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(std::string(tag));
  v->set_simple_value(static_cast<float>(value));
  return AddEvent(std::move(event));
}

absl::Status EventFileWriter::AddHistogram(absl::string_view tag, absl::Span<const double> values,
                                           int64_t step) {
  return AddHistogramImpl(this, tag, values, step);
}

absl::Status EventFileWriter::AddHistogram(absl::string_view tag, absl::Span<const float> values,
                                           int64_t step) {
  return AddHistogramImpl(this, tag, values, step);
}

absl::Status EventFileWriter::AddEvent(tensorflow::Event event) {
  if (event.wall_time() == 0) event.set_wall_time(NowSeconds());
  std::string record = event.SerializeAsString();
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::FailedPreconditionError(absl::StrCat(path_, ": writer is closed"));
  RETURN_IF_ERROR(status_);
  pending_.push_back(std::move(record));
  if (static_cast<int>(pending_.size()) >= options_.max_queue) return FlushLocked();
  return absl::OkStatus();
}

absl::Status EventFileWriter::FlushLocked() {
  RETURN_IF_ERROR(status_);
  for (const std::string& r : pending_) {
    status_ = writer_->Write(r);
    if (!status_.ok()) break;
  }
  pending_.clear();
  if (status_.ok()) status_ = writer_->Flush();
  return status_;
}

absl::Status EventFileWriter::Flush() {
  absl::MutexLock lock(&mu_);
  if (closed_) return status_;
  return FlushLocked();
}

absl::Status EventFileWriter::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return status_;
    FlushLocked().IgnoreError();
    if (status_.ok()) status_ = writer_->Close();
    closed_ = true;
  }
  if (flusher_.joinable()) flusher_.join();
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace estuary
