#include "common/io/gzip_stream.h"

#include <zlib.h>

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace io {
namespace {

using ::testing::HasSubstr;

// In-memory streams for the tests.
class StringOutput : public OutputStream {
 public:
  explicit StringOutput(std::string* sink) : sink_(sink) {}
  absl::Status Append(absl::string_view data) override {
    sink_->append(data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Flush() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }
  const std::string& name() const override { return name_; }

 private:
  std::string* sink_;
  std::string name_ = "mem";
};

class StringInput : public InputStream {
 public:
  // Hands out at most `chunk` bytes per Read, to exercise refills.
  StringInput(std::string data, size_t chunk) : data_(std::move(data)), chunk_(chunk) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    const size_t take = std::min({n, chunk_, data_.size() - pos_});
    data_.copy(buf, take, pos_);
    pos_ += take;
    return take;
  }
  const std::string& name() const override { return name_; }

 private:
  std::string data_;
  size_t chunk_;
  size_t pos_ = 0;
  std::string name_ = "mem.gz";
};

std::string Compress(const std::string& plain) {
  std::string out;
  auto gz = GzipOutputStream::Create(std::make_unique<StringOutput>(&out));
  EXPECT_TRUE(gz.ok());
  EXPECT_TRUE((*gz)->Append(plain).ok());
  EXPECT_TRUE((*gz)->Close().ok());
  return out;
}

absl::StatusOr<std::string> Decompress(const std::string& compressed, size_t chunk) {
  auto gz = GzipInputStream::Create(std::make_unique<StringInput>(compressed, chunk));
  if (!gz.ok()) return gz.status();
  std::string out;
  char buf[1000];
  while (true) {
    absl::StatusOr<size_t> n = (*gz)->Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

std::string Plain() {
  std::string s;
  for (int64_t i = 0; i < 100000; ++i) s += static_cast<char>('a' + (i * i) % 26);
  return s;
}

TEST(GzipStreamTest, RoundTripWithSmallAndLargeReads) {
  const std::string compressed = Compress(Plain());
  EXPECT_EQ(compressed.substr(0, 2), "\x1f\x8b");
  for (size_t chunk : {1, 7, 4096, 1 << 20}) {
    absl::StatusOr<std::string> got = Decompress(compressed, chunk);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, Plain()) << "chunk " << chunk;
  }
}

TEST(GzipStreamTest, MatchesZlibUncompress) {
  // Cross-check with zlib's own one-shot inflate (windowBits 15+16).
  const std::string compressed = Compress("hello gzip");
  z_stream zs{};
  ASSERT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  char out[64];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = compressed.size();
  zs.next_out = reinterpret_cast<Bytef*>(out);
  zs.avail_out = sizeof(out);
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  EXPECT_EQ(std::string(out, zs.total_out), "hello gzip");
  inflateEnd(&zs);
}

TEST(GzipStreamTest, ConcatenatedMembersReadAsOneStream) {
  const std::string compressed = Compress("first,") + Compress("") + Compress("second");
  absl::StatusOr<std::string> got = Decompress(compressed, 3);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "first,second");
}

TEST(GzipStreamTest, EmptyInputIsAnEmptyStream) {
  absl::StatusOr<std::string> got = Decompress("", 10);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "");
}

TEST(GzipStreamTest, TruncationAndCorruptionAreDataLoss) {
  const std::string compressed = Compress(Plain());
  for (size_t cut : {size_t{1}, size_t{10}, compressed.size() / 2, compressed.size() - 1}) {
    absl::StatusOr<std::string> got = Decompress(compressed.substr(0, cut), 4096);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << "cut " << cut;
    EXPECT_THAT(got.status().message(), HasSubstr("mem.gz: gzip stream truncated"));
  }
  std::string bad = compressed;
  bad[bad.size() - 8] ^= 1;  // the CRC-32 trailer
  absl::StatusOr<std::string> got = Decompress(bad, 4096);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(), HasSubstr("corrupt gzip data"));
  got = Decompress("not gzip at all", 4096);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
}

TEST(GzipStreamTest, InvalidLevel) {
  std::string out;
  EXPECT_EQ(GzipOutputStream::Create(std::make_unique<StringOutput>(&out), 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace io
}  // namespace estuary
