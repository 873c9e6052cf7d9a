#include "estimator/data/csv_parser.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

using json = nlohmann::json;

CsvColumn Col(const std::string& name, const json& def) {
  auto c = CsvColumnFromJson(name, def, "$.d");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

std::vector<RecordOrigin> Origins(size_t n, int64_t first_line = 2) {
  std::vector<RecordOrigin> o(n);
  for (size_t i = 0; i < n; ++i) {
    o[i].file = "train.csv";
    o[i].line = first_line + i;
  }
  return o;
}

std::unique_ptr<CsvBatchParser> Parser(CsvParserOptions o) {
  auto p = CsvBatchParser::Create(std::move(o));
  EXPECT_TRUE(p.ok()) << p.status();
  return std::move(*p);
}

CsvParserOptions ThreeColumns() {
  CsvParserOptions o;
  o.columns = {Col("age", 0), Col("score", 1.5), Col("name", "none")};
  return o;
}

const Tensor& F(const Batch& b, const std::string& key) {
  return std::get<Tensor>(b.features.at(key));
}

TEST(SplitCsvRecordTest, Rfc4180) {
  EXPECT_EQ(*SplitCsvRecord("a,b,c", ','), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*SplitCsvRecord("", ','), (std::vector<std::string>{""}));
  EXPECT_EQ(*SplitCsvRecord("1,2,", ','), (std::vector<std::string>{"1", "2", ""}));
  EXPECT_EQ(*SplitCsvRecord("\"a,\"\"b\"\"\",\"\"", ','),
            (std::vector<std::string>{"a,\"b\"", ""}));
  EXPECT_EQ(*SplitCsvRecord("\"x\ny\";z", ';'), (std::vector<std::string>{"x\ny", "z"}));
  EXPECT_EQ(SplitCsvRecord("a\"b,c", ',').status().message(),
            "field 0: unquoted field contains a quote (quote the field; double inner quotes)");
  EXPECT_EQ(SplitCsvRecord("c,\"ab\"x", ',').status().message(),
            "field 1: text after a closing quote (a quote inside a quoted field must be doubled)");
  EXPECT_FALSE(SplitCsvRecord("\"abc", ',').ok());
}

// The parser splits every record into one reused vector: its fields must
// come out the same whatever the previous record left in it.
TEST(SplitCsvRecordTest, IntoReusesAndResizes) {
  std::vector<std::string> fields;
  ASSERT_TRUE(SplitCsvRecordInto("a much longer first field,b,c,d", ',', &fields).ok());
  EXPECT_EQ(fields, (std::vector<std::string>{"a much longer first field", "b", "c", "d"}));
  ASSERT_TRUE(SplitCsvRecordInto("x,\"y\"\"\",", ',', &fields).ok());
  EXPECT_EQ(fields, (std::vector<std::string>{"x", "y\"", ""}));
  ASSERT_TRUE(SplitCsvRecordInto("1,2,3,4,5", ',', &fields).ok());
  EXPECT_EQ(fields, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(SplitCsvRecordInto("p,q\r", ',', &fields).message(),
            "field 1: unquoted field contains a line break (quote the field; double inner quotes)");
  ASSERT_TRUE(SplitCsvRecordInto("", ',', &fields).ok());
  EXPECT_EQ(fields, (std::vector<std::string>{""}));
}

TEST(CsvColumnFromJsonTest, TypesFromDefaults) {
  EXPECT_EQ(Col("a", 3).dtype, DType::kInt64);
  EXPECT_EQ(Col("a", 3).int_default, 3);
  EXPECT_EQ(Col("a", 0.0).dtype, DType::kFloat);
  EXPECT_EQ(Col("a", "s").dtype, DType::kString);
  CsvColumn req = Col("a", json::array());
  EXPECT_EQ(req.dtype, DType::kFloat);
  EXPECT_TRUE(req.required);
  CsvColumn obj = Col("a", json{{"dtype", "int64"}});
  EXPECT_EQ(obj.dtype, DType::kInt64);
  EXPECT_TRUE(obj.required);
  CsvColumn obj2 = Col("a", json{{"dtype", "string"}, {"default", "z"}});
  EXPECT_FALSE(obj2.required);
  EXPECT_EQ(obj2.string_default, "z");
  auto bad = CsvColumnFromJson("a", json{{"dtype", "int64"}, {"default", 1.5}}, "$.d[0]");
  EXPECT_EQ(bad.status().message(), "$.d[0].default: expected an integer default");
  EXPECT_FALSE(CsvColumnFromJson("a", json(nullptr), "$.d").ok());
  EXPECT_FALSE(CsvColumnFromJson("a", json{{"dtype", "int32"}}, "$.d").ok());
}

TEST(CsvBatchParserTest, ParsesTypesDefaultsAndLabel) {
  CsvParserOptions o = ThreeColumns();
  o.columns.push_back(Col("label", json::array()));
  o.label_key = "label";
  auto p = Parser(o);
  auto b = p->Parse({" 3 ,2.5,bob,1", ",,,0", "\"7\",\"\",\" x \",2.5"}, Origins(3));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->batch_size, 3);
  EXPECT_EQ(F(*b, "age").ints, (std::vector<int64_t>{3, 0, 7}));
  EXPECT_EQ(F(*b, "age").shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(F(*b, "score").floats, (std::vector<float>{2.5f, 1.5f, 1.5f}));
  EXPECT_EQ(F(*b, "name").strings, (std::vector<std::string>{"bob", "none", " x "}));
  EXPECT_EQ(b->features.count("label"), 0u);
  ASSERT_TRUE(b->has_labels);
  EXPECT_EQ(b->labels.floats, (std::vector<float>{1, 0, 2.5f}));
}

TEST(CsvBatchParserTest, FloatsLikeStrtof) {
  CsvParserOptions o;
  o.columns = {Col("x", 0.0)};
  auto b = Parser(o)->Parse({"1e3", "0x10", "inf", "-0.5"}, Origins(4));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(F(*b, "x").floats, (std::vector<float>{1000, 16, INFINITY, -0.5f}));
}

void ExpectParseError(const std::string& record, const std::string& want) {
  CsvParserOptions o = ThreeColumns();
  o.columns[0] = Col("age", json{{"dtype", "int64"}});
  auto p = Parser(o);
  auto b = p->Parse({"1,1,a", record}, Origins(2, 16));
  ASSERT_FALSE(b.ok()) << record;
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.status().message(), want);
}

TEST(CsvBatchParserTest, ErrorsNameFileLineAndColumn) {
  ExpectParseError("abc,1,a", "train.csv:17: column 'age' (0): expected an int64, got 'abc'");
  ExpectParseError("+3,1,a", "train.csv:17: column 'age' (0): expected an int64, got '+3'");
  ExpectParseError("1.5,1,a", "train.csv:17: column 'age' (0): expected an int64, got '1.5'");
  ExpectParseError("99999999999999999999,1,a",
                   "train.csv:17: column 'age' (0): expected an int64, got "
                   "'99999999999999999999'");
  ExpectParseError("1,x,a", "train.csv:17: column 'score' (1): expected a float, got 'x'");
  ExpectParseError("1, ,a", "train.csv:17: column 'score' (1): expected a float, got ' '");
  ExpectParseError("1,1", "train.csv:17: expected 3 fields, got 2");
  ExpectParseError("1,1,a,", "train.csv:17: expected 3 fields, got 4");
  ExpectParseError(",1,a", "train.csv:17: column 'age' (0): required, but the field is empty");
  ExpectParseError("1,1,a\"b",
                   "train.csv:17: field 2: unquoted field contains a quote (quote the field; "
                   "double inner quotes)");
}

TEST(CsvBatchParserTest, Int64Range) {
  CsvParserOptions o;
  o.columns = {Col("x", 0)};
  auto b = Parser(o)->Parse({"9223372036854775807", "-9223372036854775808"}, Origins(2));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(F(*b, "x").ints[0], INT64_MAX);
  EXPECT_EQ(F(*b, "x").ints[1], INT64_MIN);
  EXPECT_FALSE(Parser(o)->Parse({"9223372036854775808"}, Origins(1)).ok());
}

TEST(CsvBatchParserTest, SkipPolicyCountsAndKeepsGoodRows) {
  CsvParserOptions o = ThreeColumns();
  o.bad_record_policy = BadRecordPolicy::kSkip;
  o.max_logged_bad_records = 1;
  auto p = Parser(o);
  auto b = p->Parse({"1,1,a", "x,1,a", "2,2,b", "3,3"}, Origins(4));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->batch_size, 2);
  EXPECT_EQ(F(*b, "age").ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(F(*b, "name").strings, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p->skipped_records(), 2);
  auto b2 = p->Parse({"bad"}, Origins(1));
  ASSERT_TRUE(b2.ok());
  EXPECT_EQ(b2->batch_size, 0);
  EXPECT_EQ(std::get<Tensor>(b2->features.at("age")).shape, (std::vector<int64_t>{0}));
  EXPECT_EQ(p->skipped_records(), 3);
}

TEST(CsvBatchParserTest, CreateValidates) {
  CsvParserOptions o = ThreeColumns();
  o.label_key = "nope";
  EXPECT_EQ(CsvBatchParser::Create(o).status().message(), "CSV: label_key 'nope' is not a column");
  o = ThreeColumns();
  o.columns[1].name = "age";
  EXPECT_EQ(CsvBatchParser::Create(o).status().message(), "CSV: duplicate column name 'age'");
}

}  // namespace
}  // namespace estuary
