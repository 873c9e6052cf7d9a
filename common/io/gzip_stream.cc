#include "common/io/gzip_stream.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace estuary {
namespace io {
namespace {

constexpr size_t kChunk = 256 * 1024;
constexpr int kGzipWindowBits = MAX_WBITS + 16;  // 15 + 16: gzip header/trailer

std::string ZlibMessage(const z_stream& zs, int code) {
  if (zs.msg != nullptr) return zs.msg;
  return absl::StrCat("zlib error ", code);
}

// Re-delivers bytes already read from `in` before the rest of it.
class PrefixedInputStream : public InputStream {
 public:
  PrefixedInputStream(std::string prefix, std::unique_ptr<InputStream> in)
      : prefix_(std::move(prefix)), in_(std::move(in)) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    if (pos_ == prefix_.size()) return in_->Read(buf, n);
    const size_t k = std::min(n, prefix_.size() - pos_);
    std::memcpy(buf, prefix_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  const std::string& name() const override { return in_->name(); }

 private:
  const std::string prefix_;
  size_t pos_ = 0;
  std::unique_ptr<InputStream> in_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<InputStream>> MaybeDecompressGzip(std::unique_ptr<InputStream> in) {
  char magic[2];
  size_t got = 0;
  while (got < sizeof(magic)) {
    absl::StatusOr<size_t> n = in->Read(magic + got, sizeof(magic) - got);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    got += *n;
  }
  const bool gzip = got == 2 && magic[0] == '\x1f' && magic[1] == '\x8b';
  std::unique_ptr<InputStream> whole =
      std::make_unique<PrefixedInputStream>(std::string(magic, got), std::move(in));
  if (!gzip) return whole;
  absl::StatusOr<std::unique_ptr<GzipInputStream>> gz = GzipInputStream::Create(std::move(whole));
  if (!gz.ok()) return gz.status();
  return std::unique_ptr<InputStream>(*std::move(gz));
}

struct GzipInputStream::State {
  z_stream zs{};
};

struct GzipOutputStream::State {
  z_stream zs{};
};

// ---------------------------------------------------------------- reading

GzipInputStream::GzipInputStream(std::unique_ptr<InputStream> in)
    : in_(std::move(in)), state_(new State) {
  inbuf_.resize(kChunk);
}

absl::StatusOr<std::unique_ptr<GzipInputStream>> GzipInputStream::Create(
    std::unique_ptr<InputStream> compressed) {
  std::unique_ptr<GzipInputStream> s(new GzipInputStream(std::move(compressed)));
  const int rc = inflateInit2(&s->state_->zs, kGzipWindowBits);
  if (rc != Z_OK) {
    return absl::InternalError(
        absl::StrCat(s->name(), ": inflateInit2: ", ZlibMessage(s->state_->zs, rc)));
  }
  return s;
}

GzipInputStream::~GzipInputStream() { inflateEnd(&state_->zs); }

absl::Status GzipInputStream::Refill() {
  z_stream& zs = state_->zs;
  // Keep unconsumed input at the front.
  if (zs.avail_in > 0 && zs.next_in != reinterpret_cast<Bytef*>(&inbuf_[0])) {
    std::memmove(&inbuf_[0], zs.next_in, zs.avail_in);
  }
  zs.next_in = reinterpret_cast<Bytef*>(&inbuf_[0]);
  absl::StatusOr<size_t> got = in_->Read(&inbuf_[zs.avail_in], inbuf_.size() - zs.avail_in);
  if (!got.ok()) return got.status();
  if (*got == 0) input_eof_ = true;
  zs.avail_in += static_cast<uInt>(*got);
  return absl::OkStatus();
}

absl::StatusOr<size_t> GzipInputStream::Read(char* buf, size_t n) {
  if (!status_.ok()) return status_;
  if (n == 0) return 0;
  z_stream& zs = state_->zs;
  zs.next_out = reinterpret_cast<Bytef*>(buf);
  zs.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
  const uInt want = zs.avail_out;
  while (zs.avail_out == want) {
    if (member_done_) {
      // Between members: more input means another member follows.
      if (zs.avail_in == 0 && !input_eof_) {
        if (absl::Status s = Refill(); !s.ok()) return status_ = s;
      }
      if (zs.avail_in == 0) return 0;  // clean end of the stream
      inflateReset(&zs);
      member_done_ = false;
    }
    if (zs.avail_in == 0) {
      if (input_eof_) {
        if (!any_member_) return 0;  // an empty file: an empty stream
        return status_ = absl::DataLossError(absl::StrCat(
                   name(), ": gzip stream truncated (compressed file ends after ",
                   compressed_consumed_, " bytes)"));
      }
      if (absl::Status s = Refill(); !s.ok()) return status_ = s;
      continue;
    }
    any_member_ = true;
    const uInt before_in = zs.avail_in;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    compressed_consumed_ += before_in - zs.avail_in;
    if (rc == Z_STREAM_END) {
      member_done_ = true;
    } else if (rc == Z_BUF_ERROR) {
      // No progress possible with the input at hand: need more.
      if (input_eof_) {
        return status_ = absl::DataLossError(absl::StrCat(
                   name(), ": gzip stream truncated (compressed file ends after ",
                   compressed_consumed_, " bytes)"));
      }
      if (absl::Status s = Refill(); !s.ok()) return status_ = s;
    } else if (rc != Z_OK) {
      return status_ = absl::DataLossError(absl::StrCat(name(), ": corrupt gzip data at compressed offset ",
                                                        compressed_consumed_, ": ",
                                                        ZlibMessage(zs, rc)));
    }
  }
  return want - zs.avail_out;
}

// ---------------------------------------------------------------- writing

GzipOutputStream::GzipOutputStream(std::unique_ptr<OutputStream> out)
    : out_(std::move(out)), state_(new State) {
  outbuf_.resize(kChunk);
}

absl::StatusOr<std::unique_ptr<GzipOutputStream>> GzipOutputStream::Create(
    std::unique_ptr<OutputStream> out, int level) {
  if (level < -1 || level > 9) {
    return absl::InvalidArgumentError(absl::StrCat("gzip level must be -1..9, got ", level));
  }
  std::unique_ptr<GzipOutputStream> s(new GzipOutputStream(std::move(out)));
  const int rc = deflateInit2(&s->state_->zs, level, Z_DEFLATED, kGzipWindowBits,
                              /*memLevel=*/8, Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) {
    return absl::InternalError(
        absl::StrCat(s->name(), ": deflateInit2: ", ZlibMessage(s->state_->zs, rc)));
  }
  return s;
}

GzipOutputStream::~GzipOutputStream() {
  Close().IgnoreError();
  deflateEnd(&state_->zs);
}

absl::Status GzipOutputStream::Deflate(const char* data, size_t n, int flush) {
  z_stream& zs = state_->zs;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  zs.avail_in = static_cast<uInt>(n);
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(&outbuf_[0]);
    zs.avail_out = static_cast<uInt>(outbuf_.size());
    const int rc = deflate(&zs, flush);
    if (rc == Z_STREAM_ERROR) {
      return status_ = absl::InternalError(absl::StrCat(name(), ": deflate: ", ZlibMessage(zs, rc)));
    }
    const size_t produced = outbuf_.size() - zs.avail_out;
    if (produced > 0) {
      if (absl::Status s = out_->Append(absl::string_view(outbuf_.data(), produced)); !s.ok()) {
        return status_ = s;
      }
    }
    if (flush == Z_FINISH) {
      if (rc == Z_STREAM_END) break;
    } else if (zs.avail_in == 0 && zs.avail_out != 0) {
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status GzipOutputStream::Append(absl::string_view data) {
  if (!status_.ok()) return status_;
  if (closed_) return absl::FailedPreconditionError(absl::StrCat("'", name(), "' is closed"));
  // avail_in is 32-bit: feed huge records in pieces.
  while (!data.empty()) {
    const size_t piece = std::min<size_t>(data.size(), 1u << 30);
    if (absl::Status s = Deflate(data.data(), piece, Z_NO_FLUSH); !s.ok()) return s;
    data.remove_prefix(piece);
  }
  return absl::OkStatus();
}

absl::Status GzipOutputStream::Flush() {
  if (!status_.ok()) return status_;
  if (closed_) return absl::FailedPreconditionError(absl::StrCat("'", name(), "' is closed"));
  if (absl::Status s = Deflate(nullptr, 0, Z_SYNC_FLUSH); !s.ok()) return s;
  return status_ = out_->Flush();
}

absl::Status GzipOutputStream::Close() {
  if (closed_) return status_;
  closed_ = true;
  absl::Status s = status_;
  if (s.ok()) s = Deflate(nullptr, 0, Z_FINISH);
  absl::Status close_status = out_->Close();
  if (s.ok()) s = close_status;
  status_ = s;
  return s;
}

}  // namespace io
}  // namespace estuary
