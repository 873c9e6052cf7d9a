#include "estimator/data/example_parser.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/io/tfrecord.h"
#include "estimator/data/example_builder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ExampleParserSpec MustSpec(std::vector<FeatureSpec> features) {
  absl::StatusOr<ExampleParserSpec> spec = ExampleParserSpec::Create(std::move(features));
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *std::move(spec);
}

const Tensor& Dense(const FeatureMap& m, const std::string& key) {
  return std::get<Tensor>(m.at(key));
}

const SparseTensor& Sparse(const FeatureMap& m, const std::string& key) {
  return std::get<SparseTensor>(m.at(key));
}

TEST(ExampleParserTest, FixedLenScalarsVectorsAndStrings) {
  ExampleParserSpec spec = MustSpec({
      FixedLenFeature{"age", DType::kFloat, {}},
      FixedLenFeature{"pixels", DType::kFloat, {3}},
      FixedLenFeature{"id", DType::kInt64, {}},
      FixedLenFeature{"city", DType::kString, {}},
      FixedLenFeature{"grid", DType::kInt64, {2, 2}},
  });
  std::vector<std::string> batch = {
      ExampleBuilder()
          .Floats("age", {31})
          .Floats("pixels", {1, 2, 3})
          .Int64s("id", {7})
          .Bytes("city", {"Oslo"})
          .Int64s("grid", {1, 2, 3, 4})
          .Serialize(),
      ExampleBuilder()
          .Floats("age", {45})
          .Floats("pixels", {4, 5, 6})
          .Int64s("id", {-8})
          .Bytes("city", {std::string("\0x", 2)})
          .Int64s("grid", {5, 6, 7, 8})
          .Bytes("unused", {"ignored"})
          .Serialize(),
  };
  absl::StatusOr<FeatureMap> parsed = ParseExamples(spec, batch);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 5u);
  EXPECT_THAT(Dense(*parsed, "age").shape, ElementsAre(2));
  EXPECT_THAT(Dense(*parsed, "age").floats, ElementsAre(31, 45));
  EXPECT_THAT(Dense(*parsed, "pixels").shape, ElementsAre(2, 3));
  EXPECT_THAT(Dense(*parsed, "pixels").floats, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_EQ(Dense(*parsed, "id").dtype, DType::kInt64);
  EXPECT_THAT(Dense(*parsed, "id").ints, ElementsAre(7, -8));
  EXPECT_THAT(Dense(*parsed, "city").strings, ElementsAre("Oslo", std::string("\0x", 2)));
  EXPECT_THAT(Dense(*parsed, "grid").shape, ElementsAre(2, 2, 2));
  EXPECT_THAT(Dense(*parsed, "grid").ints, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
}

TEST(ExampleParserTest, DefaultsForMissingAndEmptyFeatures) {
  ExampleParserSpec spec = MustSpec({
      FixedLenFeature{"age", DType::kFloat, {}, FloatDefault(-1)},
      FixedLenFeature{"vec", DType::kInt64, {3}, Int64Default(9)},  // broadcast
      FixedLenFeature{"m", DType::kFloat, {2}, Tensor::Floats({2}, {0.5, 1.5})},
      FixedLenFeature{"city", DType::kString, {}, StringDefault("nowhere")},
  });
  std::vector<std::string> batch = {
      ExampleBuilder().Serialize(),
      // A Feature with no list set counts as missing.
      ExampleBuilder().Empty("age").Empty("vec").Empty("m").Empty("city").Serialize(),
      ExampleBuilder()
          .Floats("age", {2})
          .Int64s("vec", {1, 2, 3})
          .Floats("m", {3, 4})
          .Bytes("city", {"x"})
          .Serialize(),
  };
  absl::StatusOr<FeatureMap> parsed = ParseExamples(spec, batch);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(Dense(*parsed, "age").floats, ElementsAre(-1, -1, 2));
  EXPECT_THAT(Dense(*parsed, "vec").ints, ElementsAre(9, 9, 9, 9, 9, 9, 1, 2, 3));
  EXPECT_THAT(Dense(*parsed, "m").floats, ElementsAre(0.5, 1.5, 0.5, 1.5, 3, 4));
  EXPECT_THAT(Dense(*parsed, "city").strings, ElementsAre("nowhere", "nowhere", "x"));
}

TEST(ExampleParserTest, VarLenToSparse) {
  ExampleParserSpec spec = MustSpec({
      VarLenFeature{"clicks", DType::kInt64},
      VarLenFeature{"tags", DType::kString},
      VarLenFeature{"none", DType::kFloat},
  });
  std::vector<std::string> batch = {
      ExampleBuilder().Int64s("clicks", {1, 2, 3}).Bytes("tags", {"a"}).Serialize(),
      ExampleBuilder().Serialize(),
      ExampleBuilder().Int64s("clicks", {}).Empty("tags").Serialize(),
      ExampleBuilder().Int64s("clicks", {4}).Bytes("tags", {"b", "c"}).Serialize(),
  };
  absl::StatusOr<FeatureMap> parsed = ParseExamples(spec, batch);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const SparseTensor& clicks = Sparse(*parsed, "clicks");
  EXPECT_EQ(clicks.dtype, DType::kInt64);
  EXPECT_EQ(clicks.batch_size, 4);
  EXPECT_EQ(clicks.max_len, 3);
  EXPECT_THAT(clicks.rows, ElementsAre(0, 0, 0, 3));
  EXPECT_THAT(clicks.cols, ElementsAre(0, 1, 2, 0));
  EXPECT_THAT(clicks.ints, ElementsAre(1, 2, 3, 4));
  const SparseTensor& tags = Sparse(*parsed, "tags");
  EXPECT_EQ(tags.max_len, 2);
  EXPECT_THAT(tags.rows, ElementsAre(0, 3, 3));
  EXPECT_THAT(tags.cols, ElementsAre(0, 0, 1));
  EXPECT_THAT(tags.strings, ElementsAre("a", "b", "c"));
  const SparseTensor& none = Sparse(*parsed, "none");
  EXPECT_EQ(none.batch_size, 4);
  EXPECT_EQ(none.max_len, 0);
  EXPECT_EQ(none.num_values(), 0);
}

TEST(ExampleParserTest, EmptyBatch) {
  ExampleParserSpec spec = MustSpec({
      FixedLenFeature{"a", DType::kFloat, {2}},
      VarLenFeature{"v", DType::kFloat},
  });
  absl::StatusOr<FeatureMap> parsed = ParseExamples(spec, {});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(Dense(*parsed, "a").shape, ElementsAre(0, 2));
  EXPECT_TRUE(Dense(*parsed, "a").floats.empty());
  EXPECT_EQ(Sparse(*parsed, "v").batch_size, 0);
  EXPECT_EQ(Sparse(*parsed, "v").max_len, 0);
}

TEST(ExampleParserTest, MissingRequiredFeature) {
  ExampleParserSpec spec = MustSpec({FixedLenFeature{"age", DType::kFloat, {}}});
  std::vector<std::string> batch = {ExampleBuilder().Floats("age", {1}).Serialize(),
                                    ExampleBuilder().Serialize()};
  absl::Status s = ParseExamples(spec, batch).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "example 1: feature 'age': required feature is missing (float32, shape [], no "
            "default_value)");
  // A Feature with no list set is missing too.
  batch[1] = ExampleBuilder().Empty("age").Serialize();
  EXPECT_EQ(ParseExamples(spec, batch).status().message(), s.message());
}

TEST(ExampleParserTest, ErrorsNameTheSource) {
  ExampleParserSpec spec = MustSpec({FixedLenFeature{"age", DType::kFloat, {}}});
  std::vector<std::string> batch = {ExampleBuilder().Floats("age", {1}).Serialize(),
                                    ExampleBuilder().Bytes("age", {"x"}).Serialize()};
  std::vector<std::string> names = {"train.tfrecord record 16", "train.tfrecord record 17"};
  absl::Status s = ParseExamples(spec, batch, names).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "example 1 (train.tfrecord record 17): feature 'age': expected float_list, got "
            "bytes_list");
  names.pop_back();
  EXPECT_EQ(ParseExamples(spec, batch, names).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ExampleParserTest, KindMustMatchDtypeLikeTensorFlow) {
  // TF does not convert int64_list to float32 (or anything else).
  ExampleParserSpec spec = MustSpec({FixedLenFeature{"age", DType::kFloat, {}, FloatDefault(0)}});
  absl::Status s = ParseExamples(spec, {ExampleBuilder().Int64s("age", {3}).Serialize()}).status();
  EXPECT_EQ(s.message(), "example 0: feature 'age': expected float_list, got int64_list");
  // Even an empty list of the wrong kind is an error, default or not.
  s = ParseExamples(spec, {ExampleBuilder().Int64s("age", {}).Serialize()}).status();
  EXPECT_EQ(s.message(), "example 0: feature 'age': expected float_list, got int64_list");

  ExampleParserSpec varlen = MustSpec({VarLenFeature{"v", DType::kString}});
  s = ParseExamples(varlen, {ExampleBuilder().Floats("v", {}).Serialize()}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "example 0: feature 'v': expected bytes_list, got float_list");
}

TEST(ExampleParserTest, WrongNumberOfValues) {
  ExampleParserSpec spec = MustSpec({FixedLenFeature{"pixels", DType::kFloat, {2, 2}}});
  absl::Status s =
      ParseExamples(spec, {ExampleBuilder().Floats("pixels", {1, 2, 3}).Serialize()}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "example 0: feature 'pixels': expected 4 float values for shape [2, 2], got 3");
  // A present but empty list is not "missing": the default does not apply (as in TF).
  ExampleParserSpec with_default =
      MustSpec({FixedLenFeature{"age", DType::kInt64, {}, Int64Default(1)}});
  s = ParseExamples(with_default, {ExampleBuilder().Int64s("age", {}).Serialize()}).status();
  EXPECT_EQ(s.message(), "example 0: feature 'age': expected 1 int64 values for shape [], got 0");
}

TEST(ExampleParserTest, NotAnExample) {
  ExampleParserSpec spec = MustSpec({VarLenFeature{"v", DType::kFloat}});
  absl::Status s = ParseExamples(spec, {std::string("\xff\xff\xff", 3)}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "example 0: not a serialized tf.train.Example (3 bytes)");
}

TEST(ExampleParserSpecTest, Validation) {
  auto code = [](std::vector<FeatureSpec> f) {
    return ExampleParserSpec::Create(std::move(f)).status();
  };
  EXPECT_THAT(code({VarLenFeature{"", DType::kFloat}}).message(), HasSubstr("empty key"));
  EXPECT_THAT(code({VarLenFeature{"a", DType::kFloat}, FixedLenFeature{"a", DType::kFloat, {}}})
                  .message(),
              HasSubstr("'a' is specified twice"));
  EXPECT_THAT(code({FixedLenFeature{"a", DType::kFloat, {-1}}}).message(),
              HasSubstr("negative dimension"));
  EXPECT_THAT(code({FixedLenFeature{"a", DType::kFloat, {}, Int64Default(1)}}).message(),
              HasSubstr("default_value is int64 but the feature is float32"));
  EXPECT_THAT(
      code({FixedLenFeature{"a", DType::kFloat, {3}, Tensor::Floats({2}, {1, 2})}}).message(),
      HasSubstr("default_value has 2 values; shape [3] needs 3"));
  // Any shape with the right element count is accepted (TF reshapes it).
  absl::StatusOr<ExampleParserSpec> ok = ExampleParserSpec::Create(
      {FixedLenFeature{"a", DType::kFloat, {2, 2}, Tensor::Floats({4}, {1, 2, 3, 4})}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  const auto& fixed = std::get<FixedLenFeature>(ok->features()[0]);
  EXPECT_THAT(fixed.default_value->shape, ElementsAre(2, 2));
}

// ---- compatibility with TF 2.15 (testdata/make_golden.py)

ExampleParserSpec GoldenSpec() {
  return MustSpec({
      FixedLenFeature{"age", DType::kFloat, {}, FloatDefault(-1)},
      FixedLenFeature{"pixels", DType::kFloat, {2, 2}},
      FixedLenFeature{"id", DType::kInt64, {}},
      FixedLenFeature{"city", DType::kString, {}, StringDefault("nowhere")},
      VarLenFeature{"tags", DType::kString},
      VarLenFeature{"clicks", DType::kInt64},
      VarLenFeature{"weights", DType::kFloat},
  });
}

std::string Latin1ToBytes(const std::string& utf8) {
  // parsed.json stores bytes as latin-1 code points (U+0000..U+00FF).
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const unsigned char c = utf8[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(((c & 0x1f) << 6) | (utf8[++i] & 0x3f)));
    }
  }
  return out;
}

void ExpectValues(DType dtype, const nlohmann::json& want, const std::vector<float>& floats,
                  const std::vector<int64_t>& ints, const std::vector<std::string>& strings,
                  const std::string& key) {
  switch (dtype) {
    case DType::kFloat: {
      std::vector<float> w;
      for (const auto& v : want) w.push_back(static_cast<float>(v.get<double>()));
      EXPECT_EQ(floats, w) << key;
      break;
    }
    case DType::kInt64:
      EXPECT_EQ(ints, want.get<std::vector<int64_t>>()) << key;
      break;
    case DType::kString: {
      std::vector<std::string> w;
      for (const auto& v : want) w.push_back(Latin1ToBytes(v.get<std::string>()));
      EXPECT_EQ(strings, w) << key;
      break;
    }
  }
}

TEST(ExampleParserCompatTest, MatchesTensorFlowParseExample) {
  absl::StatusOr<std::vector<std::string>> records =
      io::ReadTFRecordFile("estimator/data/testdata/examples.tfrecord");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 5u);
  std::ifstream in("estimator/data/testdata/parsed.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json want = nlohmann::json::parse(in);

  absl::StatusOr<FeatureMap> parsed = ParseExamples(GoldenSpec(), *records);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), want.size());
  for (const auto& [key, value] : *parsed) {
    SCOPED_TRACE(key);
    const nlohmann::json& w = want.at(key);
    if (const Tensor* t = std::get_if<Tensor>(&value)) {
      EXPECT_EQ(t->shape, w.at("shape").get<std::vector<int64_t>>());
      ExpectValues(t->dtype, w.at("values"), t->floats, t->ints, t->strings, key);
    } else {
      const SparseTensor& st = std::get<SparseTensor>(value);
      EXPECT_EQ(std::vector<int64_t>({st.batch_size, st.max_len}),
                w.at("dense_shape").get<std::vector<int64_t>>());
      std::vector<std::vector<int64_t>> indices;
      for (int64_t k = 0; k < st.num_values(); ++k) indices.push_back({st.rows[k], st.cols[k]});
      EXPECT_EQ(indices, w.at("indices").get<std::vector<std::vector<int64_t>>>());
      ExpectValues(st.dtype, w.at("values"), st.floats, st.ints, st.strings, key);
    }
  }
}

TEST(ExampleParserCompatTest, TFRecordOfBuiltExamplesRoundTrips) {
  // Also the file checked by hand with TF (tf.io.parse_example reads it).
  const std::string path = ::testing::TempDir() + "/built_examples.tfrecord";
  std::vector<std::string> written = {
      ExampleBuilder().Floats("age", {31.5}).Floats("pixels", {1, 2, 3, 4}).Int64s("id", {1})
          .Bytes("tags", {"a", "b"}).Serialize(),
      ExampleBuilder().Floats("pixels", {5, 6, 7, 8}).Int64s("id", {2}).Bytes("city", {"Oslo"})
          .Int64s("clicks", {4, 5, 6}).Floats("weights", {0.25}).Serialize(),
  };
  ASSERT_TRUE(io::WriteTFRecordFile(path, written).ok());
  absl::StatusOr<std::vector<std::string>> records = io::ReadTFRecordFile(path);
  ASSERT_TRUE(records.ok()) << records.status();
  absl::StatusOr<FeatureMap> parsed = ParseExamples(GoldenSpec(), *records);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(Dense(*parsed, "age").floats, ElementsAre(31.5, -1));
  EXPECT_THAT(Dense(*parsed, "city").strings, ElementsAre("nowhere", "Oslo"));
  EXPECT_THAT(Sparse(*parsed, "clicks").ints, ElementsAre(4, 5, 6));
  EXPECT_THAT(Sparse(*parsed, "clicks").rows, ElementsAre(1, 1, 1));
}

TEST(ExampleBuilderTest, SerializesParsableExample) {
  ExampleBuilder b;
  b.Floats("x", {1}).Floats("x", {2, 3});  // replaced
  tensorflow::Example e;
  ASSERT_TRUE(e.ParseFromString(b.Serialize()));
  EXPECT_EQ(e.features().feature().at("x").float_list().value_size(), 2);
}

}  // namespace
}  // namespace data
}  // namespace estuary
