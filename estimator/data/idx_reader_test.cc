#include "estimator/data/idx_reader.h"

#include <string>
#include <vector>

#include "estimator/data/test_files.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using testing::WriteTestFile;

std::string Be32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string Images(uint32_t n, uint32_t rows, uint32_t cols, int drop = 0) {
  std::string s = Be32(0x803) + Be32(n) + Be32(rows) + Be32(cols);
  for (uint32_t i = 0; i < n * rows * cols; ++i) s.push_back(static_cast<char>(i % 256));
  return s.substr(0, s.size() - drop);
}

std::string Labels(uint32_t n) {
  std::string s = Be32(0x801) + Be32(n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

TEST(IdxReaderTest, SyntheticPairPlainAndGzip) {
  for (bool gz : {false, true}) {
    const std::string images = WriteTestFile(gz ? "i.gz" : "i", Images(3, 2, 2), gz);
    const std::string labels = WriteTestFile(gz ? "l.gz" : "l", Labels(3), gz);
    auto reader = OpenIdxReader(images, labels);
    ASSERT_TRUE(reader.ok()) << reader.status();
    std::vector<std::string> records;
    std::vector<RecordOrigin> origins;
    std::string r;
    RecordOrigin o;
    while (*(*reader)->Next(&r, &o)) {
      records.push_back(r);
      origins.push_back(o);
    }
    ASSERT_EQ(records.size(), 3u);
    EXPECT_EQ(records[1], std::string("\x01\x04\x05\x06\x07", 5));
    EXPECT_EQ(origins[2].ToString(), images + ": record 2 at offset 24");

    IdxBatchParser parser({});
    auto b = parser.Parse(records, origins);
    ASSERT_TRUE(b.ok()) << b.status();
    const Tensor& px = std::get<Tensor>(b->features.at("pixels"));
    EXPECT_EQ(px.shape, (std::vector<int64_t>{3, 4}));
    EXPECT_EQ(px.floats[5], 5.0f / 255.0f);
    EXPECT_EQ(b->labels.ints, (std::vector<int64_t>{0, 1, 2}));
    EXPECT_EQ(b->labels.dtype, DType::kInt64);

    IdxBatchParser raw({"pixels", /*scale=*/false});
    EXPECT_EQ(std::get<Tensor>(raw.Parse(records, origins)->features.at("pixels")).floats[5], 5.0f);
  }
}

void ExpectReadError(const std::string& contents, const std::string& want) {
  const std::string path = WriteTestFile("bad", contents);
  auto f = ReadIdxFile(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message(), path + ": " + want);
}

TEST(IdxReaderTest, CorruptFiles) {
  ExpectReadError("ab", "not an IDX file: 2 bytes, shorter than the magic");
  ExpectReadError(Be32(0x12345678),
                  "not an IDX file of uint8 data: magic 0x12345678 (want 0x00000801 for labels "
                  "or 0x00000803 for images)");
  ExpectReadError(Be32(0x803) + Be32(1),
                  "truncated header: magic says 3 dimensions (16 header bytes), file has 8 bytes");
  ExpectReadError(Images(3, 2, 2, /*drop=*/1),
                  "truncated: dimensions 3x2x2 need 12 data bytes, file has 11");
  ExpectReadError(Labels(3) + "x", "trailing bytes: dimensions 3 need 3 data bytes, file has 4");
  ExpectReadError(Be32(0x801) + Be32(0x80000000), "dimension 0 is negative (-2147483648)");
}

TEST(IdxReaderTest, TruncatedGzip) {
  const std::string full = WriteTestFile("t.gz", Images(50, 28, 28), true);
  FILE* f = fopen(full.c_str(), "rb");
  std::string bytes(100000, '\0');
  bytes.resize(fread(&bytes[0], 1, bytes.size(), f));
  fclose(f);
  const std::string cut = WriteTestFile("cut.gz", bytes.substr(0, bytes.size() / 2));
  auto r = ReadIdxFile(cut);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(cut + ": "), std::string::npos) << r.status();
}

TEST(IdxReaderTest, PairMismatches) {
  const std::string images = WriteTestFile("i3", Images(3, 2, 2));
  const std::string labels4 = WriteTestFile("l4", Labels(4));
  EXPECT_EQ(OpenIdxReader(images, labels4).status().message(),
            images + " has 3 images but " + labels4 + " has 4 labels");
  EXPECT_EQ(OpenIdxReader(labels4, labels4).status().message(),
            labels4 + ": expected an images file (magic 0x00000803: [n, rows, cols]), got 1 "
                      "dimensions");
  EXPECT_EQ(OpenIdxReader("/nonexistent/i", labels4).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(IdxReaderTest, FashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  for (auto [prefix, n] : {std::pair<std::string, int64_t>{"train", 60000}, {"t10k", 10000}}) {
    auto images = ReadIdxFile(dir + prefix + "-images-idx3-ubyte.gz");
    ASSERT_TRUE(images.ok()) << images.status();
    EXPECT_EQ(images->dims, (std::vector<int64_t>{n, 28, 28}));
    auto reader = OpenIdxReader(dir + prefix + "-images-idx3-ubyte.gz",
                                dir + prefix + "-labels-idx1-ubyte.gz");
    ASSERT_TRUE(reader.ok()) << reader.status();
    int64_t count = 0;
    std::vector<int64_t> per_class(10);
    std::string r;
    RecordOrigin o;
    while (*(*reader)->Next(&r, &o)) {
      ASSERT_EQ(r.size(), 785u);
      ASSERT_LT(static_cast<unsigned char>(r[0]), 10);
      ++per_class[static_cast<unsigned char>(r[0])];
      ++count;
    }
    EXPECT_EQ(count, n);
    for (int64_t c : per_class) EXPECT_EQ(c, n / 10);  // Fashion-MNIST is balanced
  }
}

}  // namespace
}  // namespace estuary
