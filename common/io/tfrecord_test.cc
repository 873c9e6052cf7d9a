#include "common/io/tfrecord.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/io/env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace io {
namespace {

using ::testing::HasSubstr;

// The records of testdata/tf_written.tfrecord{,.gz} (testdata/make_golden.py).
std::vector<std::string> GoldenRecords() {
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  return {"", "hello", all_bytes, std::string(1000, 'x')};
}

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

std::string ReadBytes(const std::string& path) { return *ReadWholeFile(Env::Default(), path); }

void WriteBytes(const std::string& path, const std::string& bytes) {
  ASSERT_TRUE(WriteFileDurably(Env::Default(), path, bytes).ok());
}

TEST(TFRecordTest, RoundTripEmptyLargeAndMany) {
  std::vector<std::string> records = {"", std::string(3 << 20, '\0')};
  for (size_t i = 0; i < records[1].size(); ++i) records[1][i] = static_cast<char>(i * 131 + 7);
  for (int i = 0; i < 1000; ++i) records.push_back(absl::StrCat("record-", i));
  const std::string path = TempPath("roundtrip.tfrecord");
  ASSERT_TRUE(WriteTFRecordFile(path, records).ok());

  absl::StatusOr<std::unique_ptr<TFRecordReader>> reader = TFRecordReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::string record;
  int64_t expected_offset = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    absl::StatusOr<bool> more = (*reader)->Next(&record);
    ASSERT_TRUE(more.ok()) << more.status();
    ASSERT_TRUE(*more);
    ASSERT_EQ(record, records[i]) << "record " << i;
    EXPECT_EQ((*reader)->record_offset(), expected_offset);
    expected_offset += kTFRecordOverhead + records[i].size();
    EXPECT_EQ((*reader)->offset(), expected_offset);
  }
  absl::StatusOr<bool> more = (*reader)->Next(&record);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  EXPECT_EQ((*reader)->records_read(), static_cast<int64_t>(records.size()));
  // Still at EOF on a second call.
  more = (*reader)->Next(&record);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  EXPECT_EQ(static_cast<int64_t>(ReadBytes(path).size()), expected_offset);
}

TEST(TFRecordTest, EmptyFileHasNoRecords) {
  const std::string path = TempPath("empty.tfrecord");
  ASSERT_TRUE(WriteTFRecordFile(path, {}).ok());
  EXPECT_EQ(ReadBytes(path).size(), 0u);
  absl::StatusOr<std::vector<std::string>> got = ReadTFRecordFile(path);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST(TFRecordTest, FramingBytes) {
  const std::string path = TempPath("framing.tfrecord");
  ASSERT_TRUE(WriteTFRecordFile(path, {"hello"}).ok());
  const std::string bytes = ReadBytes(path);
  ASSERT_EQ(bytes.size(), 21u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x05\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(bytes.substr(12, 5), "hello");
  auto le32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  EXPECT_EQ(le32(8), crc32c::MaskCrc(crc32c::Value(bytes.data(), 8)));
  EXPECT_EQ(le32(17), crc32c::MaskCrc(crc32c::Value("hello")));
}

class CorruptionTest : public ::testing::Test {
 protected:
  // Two records; the second starts at offset 16 + 5 = 21.
  void SetUp() override {
    path_ = TempPath("corrupt.tfrecord");
    ASSERT_TRUE(WriteTFRecordFile(path_, {"hello", "world!"}).ok());
    bytes_ = ReadBytes(path_);
    ASSERT_EQ(bytes_.size(), 21u + 22u);
  }

  // Flips one byte at `pos` and reads: the first record must still come back
  // when the damage is in the second.
  absl::Status ReadWithFlip(size_t pos) {
    std::string damaged = bytes_;
    damaged[pos] ^= 0x40;
    WriteBytes(path_, damaged);
    absl::StatusOr<std::vector<std::string>> got = ReadTFRecordFile(path_);
    return got.status();
  }

  std::string path_;
  std::string bytes_;
};

TEST_F(CorruptionTest, FlippedLengthByte) {
  absl::Status s = ReadWithFlip(21 + 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), absl::StrCat(path_, ": corrupt record at offset 21: length checksum mismatch"));
}

TEST_F(CorruptionTest, FlippedLengthCrcByte) {
  absl::Status s = ReadWithFlip(8);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), absl::StrCat(path_, ": corrupt record at offset 0: length checksum mismatch"));
}

TEST_F(CorruptionTest, FlippedDataByte) {
  absl::Status s = ReadWithFlip(21 + 12 + 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), absl::StrCat(path_, ": corrupt record at offset 21: data checksum mismatch"));
}

TEST_F(CorruptionTest, FlippedDataCrcByte) {
  absl::Status s = ReadWithFlip(bytes_.size() - 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), absl::StrCat(path_, ": corrupt record at offset 21: data checksum mismatch"));
}

TEST_F(CorruptionTest, FirstRecordSurvivesAndErrorIsSticky) {
  std::string damaged = bytes_;
  damaged[21 + 12] ^= 1;
  WriteBytes(path_, damaged);
  auto reader = TFRecordReader::Open(path_);
  ASSERT_TRUE(reader.ok());
  std::string record;
  absl::StatusOr<bool> more = (*reader)->Next(&record);
  ASSERT_TRUE(more.ok() && *more);
  EXPECT_EQ(record, "hello");
  more = (*reader)->Next(&record);
  EXPECT_EQ(more.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(record.empty());
  absl::StatusOr<bool> again = (*reader)->Next(&record);
  EXPECT_EQ(again.status(), more.status());
  EXPECT_EQ((*reader)->records_read(), 1);
}

TEST_F(CorruptionTest, TruncatedTailAtEveryPosition) {
  // Cutting the file anywhere inside the second record is a truncation.
  for (size_t cut = 22; cut < bytes_.size(); ++cut) {
    WriteBytes(path_, bytes_.substr(0, cut));
    absl::StatusOr<std::vector<std::string>> got = ReadTFRecordFile(path_);
    ASSERT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << "cut " << cut;
    EXPECT_EQ(got.status().message(),
              absl::StrCat(path_, ": truncated record at offset 21 (file ends after ", cut,
                           " bytes)"));
  }
  // Cutting exactly between records is a clean end.
  WriteBytes(path_, bytes_.substr(0, 21));
  absl::StatusOr<std::vector<std::string>> got = ReadTFRecordFile(path_);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, std::vector<std::string>{"hello"});
}

TEST(TFRecordTest, HugeLengthInTruncatedFileDoesNotAllocateIt) {
  // A valid header announcing 1 TiB followed by 3 bytes.
  char header[12];
  const uint64_t length = uint64_t{1} << 40;
  for (int i = 0; i < 8; ++i) header[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  const uint32_t crc = crc32c::MaskCrc(crc32c::Value(header, 8));
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  const std::string path = TempPath("huge.tfrecord");
  WriteBytes(path, std::string(header, 12) + "abc");
  absl::StatusOr<std::vector<std::string>> got = ReadTFRecordFile(path);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(), HasSubstr("truncated record at offset 0 (file ends after 15 bytes)"));
}

TEST(TFRecordTest, GzipRoundTrip) {
  std::vector<std::string> records = GoldenRecords();
  for (int i = 0; i < 5000; ++i) records.push_back(absl::StrCat("compressible record ", i % 10));
  const std::string path = TempPath("roundtrip.tfrecord.gz");
  TFRecordOptions gzip;
  gzip.compression = Compression::kGzip;
  ASSERT_TRUE(WriteTFRecordFile(path, records, gzip).ok());
  const std::string bytes = ReadBytes(path);
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(bytes.substr(0, 2), "\x1f\x8b");  // gzip magic
  absl::StatusOr<std::vector<std::string>> got = ReadTFRecordFile(path, gzip);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, records);
  // Read as uncompressed, the gzip bytes do not frame.
  EXPECT_EQ(ReadTFRecordFile(path).status().code(), absl::StatusCode::kDataLoss);
}

TEST(TFRecordTest, GzipTruncatedAndCorrupt) {
  const std::string path = TempPath("damaged.tfrecord.gz");
  TFRecordOptions gzip;
  gzip.compression = Compression::kGzip;
  ASSERT_TRUE(WriteTFRecordFile(path, GoldenRecords(), gzip).ok());
  const std::string bytes = ReadBytes(path);

  WriteBytes(path, bytes.substr(0, bytes.size() - 5));
  absl::Status s = ReadTFRecordFile(path, gzip).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("gzip stream truncated"));

  std::string damaged = bytes;
  damaged[bytes.size() - 6] ^= 0x10;  // inside the CRC32/ISIZE trailer
  WriteBytes(path, damaged);
  s = ReadTFRecordFile(path, gzip).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(path));
}

TEST(TFRecordTest, GzipFlushMakesRecordsReadable) {
  const std::string path = TempPath("flushed.tfrecord.gz");
  TFRecordOptions gzip;
  gzip.compression = Compression::kGzip;
  auto writer = TFRecordWriter::Create(path, gzip);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("first").ok());
  ASSERT_TRUE((*writer)->Flush().ok());
  auto reader = TFRecordReader::Open(path, gzip);
  ASSERT_TRUE(reader.ok());
  std::string record;
  absl::StatusOr<bool> more = (*reader)->Next(&record);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_TRUE(*more);
  EXPECT_EQ(record, "first");
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_EQ((*writer)->Write("late").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TFRecordTest, ReadsFileWrittenByTensorFlow) {
  absl::StatusOr<std::vector<std::string>> got =
      ReadTFRecordFile("common/io/testdata/tf_written.tfrecord");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, GoldenRecords());
}

TEST(TFRecordTest, ReadsGzipFileWrittenByTensorFlow) {
  TFRecordOptions gzip;
  gzip.compression = Compression::kGzip;
  absl::StatusOr<std::vector<std::string>> got =
      ReadTFRecordFile("common/io/testdata/tf_written.tfrecord.gz", gzip);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, GoldenRecords());
}

TEST(TFRecordTest, WritesTheSameBytesAsTensorFlow) {
  const std::string path = TempPath("same.tfrecord");
  ASSERT_TRUE(WriteTFRecordFile(path, GoldenRecords()).ok());
  EXPECT_EQ(ReadBytes(path), ReadBytes("common/io/testdata/tf_written.tfrecord"));
}

TEST(TFRecordTest, WritesTheSameGzipBytesAsTensorFlow) {
  // TF compresses with zlib at its default level and windowBits 15+16, as we
  // do; for the same zlib the streams are byte-identical (header: no name,
  // mtime 0, OS 3).
  const std::string path = TempPath("same.tfrecord.gz");
  TFRecordOptions gzip;
  gzip.compression = Compression::kGzip;
  ASSERT_TRUE(WriteTFRecordFile(path, GoldenRecords(), gzip).ok());
  EXPECT_EQ(ReadBytes(path), ReadBytes("common/io/testdata/tf_written.tfrecord.gz"));
}

TEST(TFRecordTest, MissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<TFRecordReader>> reader =
      TFRecordReader::Open(TempPath("does-not-exist.tfrecord"));
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr("does-not-exist.tfrecord"));
}

TEST(TFRecordTest, ParseCompression) {
  EXPECT_EQ(*ParseCompression(""), Compression::kNone);
  EXPECT_EQ(*ParseCompression("NONE"), Compression::kNone);
  EXPECT_EQ(*ParseCompression("gzip"), Compression::kGzip);
  EXPECT_EQ(ParseCompression("ZLIB").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace io
}  // namespace estuary
