#include "estimator/data/csv_reader.h"

#include "absl/strings/str_cat.h"
#include "common/io/gzip_stream.h"
#include "common/status_macros.h"

namespace estuary {
namespace {

// Buffered reader over a (possibly decompressing) stream.
class CsvReader : public RecordReader {
 public:
  CsvReader(std::string file, std::unique_ptr<io::InputStream> in, CsvReaderOptions options)
      : file_(std::move(file)), in_(std::move(in)), options_(options) {}

  absl::StatusOr<bool> Next(std::string* record, RecordOrigin* origin) override {
    if (options_.header && !header_skipped_) {
      header_skipped_ = true;
      std::string header;
      int64_t unused;
      ASSIGN_OR_RETURN(bool got, ReadRecordSticky(&header, &unused));
      if (!got) return false;
    }
    int64_t line = 0;
    ASSIGN_OR_RETURN(bool got, ReadRecordSticky(record, &line));
    if (!got) return false;
    origin->file = file_;
    origin->line = line;
    origin->offset = -1;
    origin->index = index_++;
    return true;
  }

 private:
  // ReadRecord, remembering the end of the file and the first error.
  absl::StatusOr<bool> ReadRecordSticky(std::string* record, int64_t* start_line) {
    if (!status_.ok()) return status_;
    if (done_) return false;
    absl::StatusOr<bool> got = ReadRecord(record, start_line);
    if (!got.ok()) {
      status_ = got.status();
    } else if (!*got) {
      done_ = true;
    }
    return got;
  }

  // One record: up to a "\n" outside a quoted field (a preceding "\r" is
  // dropped). Quotes are tracked like RFC 4180: a quote opens a quoted field
  // only at a field start; inside one, "" is an escaped quote. Scans the
  // buffer in place and appends whole spans of it (this is the input
  // pipeline's hot path: no per-byte call or push_back).
  absl::StatusOr<bool> ReadRecord(std::string* record, int64_t* start_line) {
    enum State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };
    record->clear();
    *start_line = next_line_;
    State state = kFieldStart;
    bool any = false;
    const char delim = options_.field_delim;
    while (true) {
      if (pos_ == end_) {
        ASSIGN_OR_RETURN(size_t n, in_->Read(buf_, sizeof(buf_)));
        if (n == 0) break;
        pos_ = 0;
        end_ = static_cast<int>(n);
      }
      any = true;
      for (int i = pos_; i < end_; ++i) {
        const char c = buf_[i];
        if (c == '\n') {
          ++next_line_;
          if (state != kQuoted) {
            record->append(buf_ + pos_, i - pos_);
            pos_ = i + 1;
            if (!record->empty() && record->back() == '\r') record->pop_back();
            return true;
          }
        }
        switch (state) {
          case kFieldStart:
            state = c == '"' ? kQuoted : c == delim ? kFieldStart : kUnquoted;
            break;
          case kUnquoted:
            if (c == delim) state = kFieldStart;
            break;
          case kQuoted:
            if (c == '"') state = kQuoteInQuoted;
            break;
          case kQuoteInQuoted:
            state = c == '"' ? kQuoted : c == delim ? kFieldStart : kUnquoted;
            break;
        }
      }
      record->append(buf_ + pos_, end_ - pos_);
      pos_ = end_;
    }
    if (state == kQuoted) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_, ":", *start_line,
                       ": reached the end of the file inside a quoted field"));
    }
    if (!any) return false;
    if (!record->empty() && record->back() == '\r') record->pop_back();
    return true;
  }

  const std::string file_;
  std::unique_ptr<io::InputStream> in_;
  const CsvReaderOptions options_;
  char buf_[1 << 16];
  int pos_ = 0;
  int end_ = 0;
  int64_t next_line_ = 1;
  int64_t index_ = 0;
  bool header_skipped_ = false;
  bool done_ = false;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RecordReader>> OpenCsvReader(const std::string& file,
                                                            const CsvReaderOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<io::InputStream> in, options.env->NewSequentialFile(file));
  ASSIGN_OR_RETURN(in, io::MaybeDecompressGzip(std::move(in)));
  return std::unique_ptr<RecordReader>(new CsvReader(file, std::move(in), options));
}

absl::StatusOr<std::string> ReadCsvHeader(const std::string& file, char field_delim,
                                          const io::Env& env) {
  CsvReaderOptions options;
  options.field_delim = field_delim;
  options.env = &env;
  ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> reader, OpenCsvReader(file, options));
  std::string header;
  RecordOrigin origin;
  ASSIGN_OR_RETURN(bool got, reader->Next(&header, &origin));
  if (!got) return absl::InvalidArgumentError(absl::StrCat(file, ": empty file, expected a header line"));
  return header;
}

}  // namespace estuary
