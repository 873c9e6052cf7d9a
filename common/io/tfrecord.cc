#include "common/io/tfrecord.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/io/gzip_stream.h"
#include "common/status_macros.h"

namespace estuary {
namespace io {
namespace {

constexpr size_t kReadBufferSize = 256 * 1024;
// Records are read in pieces of at most this much, so that a length field
// that points far past the end of a (truncated) file does not allocate it.
constexpr size_t kMaxReadPiece = 16 << 20;

void EncodeFixed64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void EncodeFixed32(char* dst, uint32_t v) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t DecodeFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t DecodeFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

absl::StatusOr<Compression> ParseCompression(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  if (upper.empty() || upper == "NONE") return Compression::kNone;
  if (upper == "GZIP") return Compression::kGzip;
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported compression '", name, "': expected \"\", \"NONE\" or \"GZIP\""));
}

const char* CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "NONE";
    case Compression::kGzip: return "GZIP";
  }
  return "?";
}

// ---------------------------------------------------------------- writer

absl::StatusOr<std::unique_ptr<TFRecordWriter>> TFRecordWriter::Create(
    const std::string& path, const TFRecordOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<OutputStream> file,
                   options.env->NewWritableFile(path, {options.fsync_on_close}));
  return Create(std::move(file), options);
}

absl::StatusOr<std::unique_ptr<TFRecordWriter>> TFRecordWriter::Create(
    std::unique_ptr<OutputStream> out, const TFRecordOptions& options) {
  if (options.compression == Compression::kGzip) {
    ASSIGN_OR_RETURN(std::unique_ptr<GzipOutputStream> gz,
                     GzipOutputStream::Create(std::move(out), options.gzip_level));
    out = std::move(gz);
  }
  return std::unique_ptr<TFRecordWriter>(new TFRecordWriter(std::move(out)));
}

TFRecordWriter::~TFRecordWriter() { Close().IgnoreError(); }

absl::Status TFRecordWriter::Write(absl::string_view record) {
  if (closed_) return absl::FailedPreconditionError(absl::StrCat("'", path(), "' is closed"));
  char header[12];
  EncodeFixed64(header, record.size());
  EncodeFixed32(header + 8, crc32c::MaskCrc(crc32c::Value(header, 8)));
  char footer[4];
  EncodeFixed32(footer, crc32c::MaskCrc(crc32c::Value(record)));
  RETURN_IF_ERROR(out_->Append(absl::string_view(header, sizeof(header))));
  RETURN_IF_ERROR(out_->Append(record));
  RETURN_IF_ERROR(out_->Append(absl::string_view(footer, sizeof(footer))));
  ++records_;
  bytes_ += kTFRecordOverhead + static_cast<int64_t>(record.size());
  return absl::OkStatus();
}

absl::Status TFRecordWriter::Flush() {
  if (closed_) return absl::FailedPreconditionError(absl::StrCat("'", path(), "' is closed"));
  return out_->Flush();
}

absl::Status TFRecordWriter::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  return out_->Close();
}

// ---------------------------------------------------------------- reader

TFRecordReader::TFRecordReader(std::unique_ptr<InputStream> in) : in_(std::move(in)) {}

absl::StatusOr<std::unique_ptr<TFRecordReader>> TFRecordReader::Open(
    const std::string& path, const TFRecordOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<InputStream> file, options.env->NewSequentialFile(path));
  return Open(std::move(file), options);
}

absl::StatusOr<std::unique_ptr<TFRecordReader>> TFRecordReader::Open(
    std::unique_ptr<InputStream> in, const TFRecordOptions& options) {
  if (options.compression == Compression::kGzip) {
    ASSIGN_OR_RETURN(std::unique_ptr<GzipInputStream> gz, GzipInputStream::Create(std::move(in)));
    in = std::move(gz);
  }
  return std::unique_ptr<TFRecordReader>(new TFRecordReader(std::move(in)));
}

absl::StatusOr<size_t> TFRecordReader::ReadUpTo(size_t n, std::string* out) {
  size_t got = 0;
  while (got < n) {
    if (buf_pos_ == buf_.size()) {
      buf_.resize(kReadBufferSize);
      buf_pos_ = 0;
      absl::StatusOr<size_t> r = in_->Read(&buf_[0], buf_.size());
      if (!r.ok()) {
        buf_.clear();
        return r.status();
      }
      buf_.resize(*r);
      if (*r == 0) break;
    }
    const size_t take = std::min(n - got, buf_.size() - buf_pos_);
    out->append(buf_, buf_pos_, take);
    buf_pos_ += take;
    got += take;
  }
  return got;
}

absl::Status TFRecordReader::Truncated(size_t got_in_record) {
  return absl::DataLossError(absl::StrCat(path(), ": truncated record at offset ", offset_,
                                          " (file ends after ", offset_ + got_in_record,
                                          " bytes)"));
}

absl::Status TFRecordReader::Corrupt(absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat(path(), ": corrupt record at offset ", offset_, ": ", what));
}

absl::StatusOr<bool> TFRecordReader::Next(std::string* record) {
  if (!status_.ok()) return status_;
  record->clear();
  std::string header;
  absl::StatusOr<size_t> got = ReadUpTo(12, &header);
  if (!got.ok()) return status_ = got.status();
  if (*got == 0) return false;  // clean end of file
  if (*got < 12) return status_ = Truncated(*got);

  const uint32_t length_crc = crc32c::UnmaskCrc(DecodeFixed32(header.data() + 8));
  if (crc32c::Value(header.data(), 8) != length_crc) {
    return status_ = Corrupt("length checksum mismatch");
  }
  const uint64_t length = DecodeFixed64(header.data());

  uint64_t remaining = length;
  uint32_t data_crc = 0;
  while (remaining > 0) {
    const size_t piece = static_cast<size_t>(std::min<uint64_t>(remaining, kMaxReadPiece));
    const size_t before = record->size();
    got = ReadUpTo(piece, record);
    if (!got.ok()) return status_ = got.status();
    data_crc = crc32c::Extend(data_crc, record->data() + before, *got);
    if (*got < piece) {
      const size_t in_record = 12 + record->size();
      record->clear();
      return status_ = Truncated(in_record);
    }
    remaining -= piece;
  }

  std::string footer;
  got = ReadUpTo(4, &footer);
  if (!got.ok()) return status_ = got.status();
  if (*got < 4) {
    const size_t in_record = 12 + record->size() + *got;
    record->clear();
    return status_ = Truncated(in_record);
  }
  if (crc32c::UnmaskCrc(DecodeFixed32(footer.data())) != data_crc) {
    record->clear();
    return status_ = Corrupt("data checksum mismatch");
  }
  record_offset_ = offset_;
  offset_ += kTFRecordOverhead + static_cast<int64_t>(length);
  ++records_;
  return true;
}

absl::StatusOr<std::vector<std::string>> ReadTFRecordFile(const std::string& path,
                                                          const TFRecordOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<TFRecordReader> reader, TFRecordReader::Open(path, options));
  std::vector<std::string> records;
  std::string record;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next(&record));
    if (!more) break;
    records.push_back(std::move(record));
  }
  return records;
}

absl::Status WriteTFRecordFile(const std::string& path, const std::vector<std::string>& records,
                               const TFRecordOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<TFRecordWriter> writer, TFRecordWriter::Create(path, options));
  for (const std::string& r : records) RETURN_IF_ERROR(writer->Write(r));
  return writer->Close();
}

}  // namespace io
}  // namespace estuary
