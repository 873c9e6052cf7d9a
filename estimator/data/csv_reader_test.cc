#include "estimator/data/csv_reader.h"

#include <string>
#include <utility>
#include <vector>

#include "estimator/data/test_files.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using testing::WriteTestFile;

std::vector<std::pair<std::string, int64_t>> ReadAll(const std::string& path,
                                                      CsvReaderOptions options = {}) {
  auto reader = OpenCsvReader(path, options);
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::vector<std::pair<std::string, int64_t>> out;
  std::string record;
  RecordOrigin origin;
  while (true) {
    absl::StatusOr<bool> got = (*reader)->Next(&record, &origin);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || !*got) break;
    EXPECT_EQ(origin.file, path);
    out.emplace_back(record, origin.line);
  }
  return out;
}

using Records = std::vector<std::pair<std::string, int64_t>>;

TEST(CsvReaderTest, LinesAndCrlf) {
  const std::string p = WriteTestFile("a.csv", "1,x\r\n2,y\n3,z");
  EXPECT_EQ(ReadAll(p), (Records{{"1,x", 1}, {"2,y", 2}, {"3,z", 3}}));
}

TEST(CsvReaderTest, QuotedNewlineSpansLines) {
  const std::string p = WriteTestFile("b.csv", "a,b\n1,\"x\ny\"\n2,\"q\"\"\n\"\n3,w\n");
  CsvReaderOptions o;
  o.header = true;
  EXPECT_EQ(ReadAll(p, o), (Records{{"1,\"x\ny\"", 2}, {"2,\"q\"\"\n\"", 4}, {"3,w", 6}}));
}

TEST(CsvReaderTest, QuoteInsideUnquotedFieldDoesNotOpen) {
  const std::string p = WriteTestFile("c.csv", "a\"b,c\nd,e\n");
  EXPECT_EQ(ReadAll(p), (Records{{"a\"b,c", 1}, {"d,e", 2}}));
}

// The reader scans a 64 KiB buffer at a time: records, quoted line breaks
// and "\r\n" pairs that straddle a refill must read as in a small file.
TEST(CsvReaderTest, RecordsAcrossBufferRefills) {
  std::string text;
  Records expected;
  int64_t line = 1;
  for (int r = 0; text.size() < 3 * 65536 + 100; ++r) {
    std::string record;
    switch (r % 4) {
      case 0: record = std::string(97 + r % 300, 'a' + r % 26) + "," + std::to_string(r); break;
      case 1: record = std::to_string(r) + ",\"two\nlines, \"\"quoted\"\"\""; break;
      case 2: record = "\"\"," + std::to_string(r) + ",,"; break;
      case 3: record = std::string(4000 + r, 'z'); break;
    }
    expected.emplace_back(record, line);
    line += r % 4 == 1 ? 2 : 1;
    text += record + (r % 3 == 0 ? "\r\n" : "\n");
  }
  const std::string p = WriteTestFile("refill.csv", text);
  EXPECT_EQ(ReadAll(p), expected);
  // A "\r\n" exactly across the first refill.
  std::string crlf = std::string(65535, 'x') + "\r\ny";
  EXPECT_EQ(ReadAll(WriteTestFile("crlf.csv", crlf)),
            (Records{{std::string(65535, 'x'), 1}, {"y", 2}}));
}

TEST(CsvReaderTest, EmptyLinesAreRecords) {
  // Like CsvDataset: an empty line is a record (with one empty field).
  const std::string p = WriteTestFile("d.csv", "1\n\n2\n");
  EXPECT_EQ(ReadAll(p), (Records{{"1", 1}, {"", 2}, {"2", 3}}));
}

TEST(CsvReaderTest, Gzip) {
  const std::string p = WriteTestFile("e.csv.gz", "h\n1\n2\n", /*gzip=*/true);
  CsvReaderOptions o;
  o.header = true;
  EXPECT_EQ(ReadAll(p, o), (Records{{"1", 2}, {"2", 3}}));
}

TEST(CsvReaderTest, UnterminatedQuoteNamesStartLine) {
  const std::string p = WriteTestFile("f.csv", "1,x\n2,\"open\nmore\n");
  auto reader = OpenCsvReader(p, {});
  ASSERT_TRUE(reader.ok());
  std::string r;
  RecordOrigin o;
  ASSERT_TRUE(*(*reader)->Next(&r, &o));
  absl::StatusOr<bool> got = (*reader)->Next(&r, &o);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(), p + ":2: reached the end of the file inside a quoted field");
  EXPECT_FALSE((*reader)->Next(&r, &o).ok());  // sticky
}

TEST(CsvReaderTest, MissingFile) {
  auto reader = OpenCsvReader("/nonexistent/x.csv", {});
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(reader.status().message().find("/nonexistent/x.csv"), std::string::npos);
}

TEST(CsvReaderTest, Header) {
  const std::string p = WriteTestFile("g.csv", "\"a,1\",b\n1,2\n");
  auto h = ReadCsvHeader(p, ',');
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "\"a,1\",b");
}

}  // namespace
}  // namespace estuary
