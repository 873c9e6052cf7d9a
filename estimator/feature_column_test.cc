#include "estimator/feature_column.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using ::testing::HasSubstr;

template <typename T>
T Ok(absl::StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status();
  return *std::move(v);
}

TEST(NumericColumnTest, MissingFeatureUsesDefaultValueWithBatchFromOthers) {
  ColumnPtr c = Ok(NumericColumn("x", {2}, 1.5f, Normalizer{0.5, 2.0}));
  FeatureMap f = {{"other", Tensor::Floats({3}, {1, 2, 3})}};
  RowMatrixXf m = Ok(c->Dense(f));
  ASSERT_EQ(m.rows(), 3);
  ASSERT_EQ(m.cols(), 2);
  EXPECT_FLOAT_EQ(m(2, 1), 0.5f);
}

TEST(NumericColumnTest, MissingFeatureWithoutDefaultNamesIt) {
  ColumnPtr c = Ok(NumericColumn("age"));
  absl::StatusOr<RowMatrixXf> m = c->Dense({{"x", Tensor::Floats({1}, {1})}});
  ASSERT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("feature 'age' is missing"));
}

TEST(NumericColumnTest, SparseInputFilledWithDefault) {
  ColumnPtr c = Ok(NumericColumn("x", {3}, -1.0f));
  SparseTensor s;
  s.dtype = DType::kFloat;
  s.batch_size = 2;
  s.max_len = 3;
  s.rows = {0, 1};
  s.cols = {1, 2};
  s.floats = {5, 7};
  RowMatrixXf m = Ok(c->Dense({{"x", s}}));
  EXPECT_EQ(m(0, 0), -1.0f);
  EXPECT_EQ(m(0, 1), 5.0f);
  EXPECT_EQ(m(1, 2), 7.0f);
}

TEST(NumericColumnTest, WrongWidthIsInvalid) {
  ColumnPtr c = Ok(NumericColumn("x", {2}));
  EXPECT_FALSE(c->Dense({{"x", Tensor::Floats({2, 3}, std::vector<float>(6, 0))}}).ok());
  EXPECT_FALSE(c->Dense({{"x", Tensor::Strings({1}, {"a"})}}).ok());
}

TEST(BucketizedColumnTest, RejectsUnsortedBoundariesAndMultiDimSource) {
  ColumnPtr x = Ok(NumericColumn("x"));
  EXPECT_FALSE(BucketizedColumn(x, {1, 0}).ok());
  EXPECT_FALSE(BucketizedColumn(x, {}).ok());
  ColumnPtr img = Ok(NumericColumn("img", {2, 2}));
  EXPECT_FALSE(BucketizedColumn(img, {0}).ok());
  ColumnPtr b = Ok(BucketizedColumn(x, {0, 1}));
  EXPECT_EQ(b->name(), "x_bucketized");
  EXPECT_EQ(b->dense_width(), 3);
  EXPECT_EQ(b->num_buckets(), 3);
}

TEST(IdentityColumnTest, OutOfRangeWithoutDefaultPassesThroughLikeTf) {
  ColumnPtr c = Ok(IdentityColumn("i", 3));
  CategoricalIds ids = Ok(c->Ids({{"i", Tensor::Ints({2}, {1, 3})}}));
  EXPECT_EQ(ids.ids, std::vector<int64_t>({1, 3}));
  EXPECT_FALSE(c->Ids({{"i", Tensor::Strings({1}, {"1"})}}).ok());
  // ... and an embedding lookup fails on it.
  ColumnPtr e = Ok(EmbeddingColumn(c, 2));
  EmbeddingTables t = {{"i_embedding", RowMatrixXf::Zero(3, 2)}};
  EXPECT_FALSE(e->Dense({{"i", Tensor::Ints({2}, {1, 3})}}, &t).ok());
}

TEST(HashBucketColumnTest, DtypeMustMatchInput) {
  ColumnPtr s = Ok(HashBucketColumn("h", 10));
  EXPECT_FALSE(s->Ids({{"h", Tensor::Ints({1}, {1})}}).ok());
  ColumnPtr n = Ok(HashBucketColumn("h", 10, DType::kInt64));
  EXPECT_FALSE(n->Ids({{"h", Tensor::Strings({1}, {"1"})}}).ok());
  EXPECT_FALSE(HashBucketColumn("h", 10, DType::kFloat).ok());
}

TEST(CategoricalColumnTest, MissingKeyAndFloatInput) {
  ColumnPtr c = Ok(HashBucketColumn("h", 10));
  absl::StatusOr<CategoricalIds> ids = c->Ids({});
  ASSERT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("feature 'h' is missing"));
  EXPECT_FALSE(c->Ids({{"h", Tensor::Floats({1}, {1})}}).ok());
}

TEST(VocabularyColumnTest, ArgumentChecks) {
  EXPECT_FALSE(VocabularyListColumn("v", {"a", "a"}).ok());
  EXPECT_FALSE(VocabularyListColumn("v", {}).ok());
  EXPECT_FALSE(VocabularyListColumn("v", {"a"}, 2, 0).ok());  // both oov and default
  EXPECT_FALSE(VocabularyListColumn("v", {"a"}, 0, 1).ok());  // default out of range
  ColumnPtr c = Ok(VocabularyListColumn("v", {"a", "b"}, 3));
  EXPECT_EQ(c->num_buckets(), 5);
  // A string vocabulary given int64 input.
  EXPECT_FALSE(c->Ids({{"v", Tensor::Ints({1}, {1})}}).ok());
  EXPECT_EQ(VocabularyFileColumn("v", "/nonexistent/vocab", std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(VocabularyColumnTest, FileLinesLikeTf) {
  const std::string dir = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp";
  const std::string crlf = dir + "/crlf.txt";
  std::ofstream(crlf) << "a\r\nb\r\n";
  ColumnPtr c = Ok(VocabularyFileColumn("v", crlf, std::nullopt));
  EXPECT_EQ(c->num_buckets(), 2);
  CategoricalIds ids = Ok(c->Ids({{"v", Tensor::Strings({2}, {"b", "a"})}}));
  EXPECT_EQ(ids.ids, std::vector<int64_t>({1, 0}));
  EXPECT_FALSE(VocabularyFileColumn("v", crlf, 3).ok());
  const std::string blank = dir + "/blank.txt";
  std::ofstream(blank) << "a\n\nb\n";
  absl::StatusOr<ColumnPtr> bad = VocabularyFileColumn("v", blank, std::nullopt);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("blank.txt:2: empty line"));
}

TEST(CrossedColumnTest, NameAndRestrictions) {
  ColumnPtr h = Ok(HashBucketColumn("h", 10));
  EXPECT_FALSE(CrossedColumn({std::string("a"), h}, 10).ok());
  EXPECT_FALSE(CrossedColumn({std::string("a")}, 10).ok());
  ColumnPtr ab = Ok(CrossedColumn({std::string("b"), std::string("a")}, 10));
  EXPECT_EQ(ab->name(), "a_X_b");
  ColumnPtr abc = Ok(CrossedColumn({ab, std::string("c")}, 10));
  EXPECT_EQ(abc->name(), "a_X_b_X_c");
}

TEST(CrossedColumnTest, RowWithMissingValueHasNoIds) {
  ColumnPtr c = Ok(CrossedColumn({std::string("a"), std::string("b")}, 100));
  SparseTensor b;
  b.dtype = DType::kString;
  b.batch_size = 2;
  b.rows = {1};
  b.cols = {0};
  b.strings = {"x"};
  CategoricalIds ids = Ok(c->Ids({{"a", Tensor::Strings({2}, {"p", "q"})}, {"b", b}}));
  EXPECT_EQ(ids.rows, std::vector<int64_t>({1}));
  EXPECT_FALSE(c->Ids({{"a", Tensor::Strings({3}, {"p", "q", "r"})}, {"b", b}}).ok());
}

TEST(IndicatorColumnTest, IgnoresMinusOneIds) {
  ColumnPtr v = Ok(VocabularyListColumn("v", {"a", "b"}));
  ColumnPtr ind = Ok(IndicatorColumn(v));
  EXPECT_EQ(ind->name(), "v_indicator");
  RowMatrixXf m = Ok(ind->Dense({{"v", Tensor::Strings({2, 2}, {"a", "zz", "b", "b"})}}));
  EXPECT_EQ(m(0, 0), 1.0f);
  EXPECT_EQ(m(0, 1), 0.0f);
  EXPECT_EQ(m(1, 1), 2.0f);
  EXPECT_FALSE(IndicatorColumn(Ok(NumericColumn("x"))).ok());
}

TEST(EmbeddingColumnTest, NeedsATableOfTheRightShape) {
  ColumnPtr e = Ok(EmbeddingColumn(Ok(IdentityColumn("i", 4)), 2, Combiner::kSum));
  EXPECT_EQ(e->name(), "i_embedding");
  ASSERT_NE(GetEmbeddingSpec(*e), nullptr);
  EXPECT_EQ(GetEmbeddingSpec(*e)->dimension, 2);
  FeatureMap f = {{"i", Tensor::Ints({1}, {3})}};
  EXPECT_FALSE(e->Dense(f).ok());
  EmbeddingTables bad = {{"i_embedding", RowMatrixXf::Zero(3, 2)}};
  EXPECT_FALSE(e->Dense(f, &bad).ok());
  EmbeddingTables good = {{"i_embedding", RowMatrixXf::Ones(4, 2)}};
  RowMatrixXf m = Ok(e->Dense(f, &good));
  EXPECT_EQ(m(0, 1), 1.0f);
}

TEST(WeightedCategoricalColumnTest, WeightsMustPairWithIds) {
  ColumnPtr w = Ok(WeightedCategoricalColumn(Ok(IdentityColumn("i", 4)), "w"));
  EXPECT_EQ(w->name(), "i_weighted_by_w");
  CategoricalIds ids = Ok(w->Ids({{"i", Tensor::Ints({2}, {1, 2})},
                                  {"w", Tensor::Floats({2}, {0.5, 2})}}));
  EXPECT_EQ(ids.weights, std::vector<float>({0.5f, 2.0f}));
  EXPECT_FALSE(w->Ids({{"i", Tensor::Ints({2}, {1, 2})}, {"w", Tensor::Floats({1}, {0.5})}}).ok());
  EXPECT_FALSE(w->Ids({{"i", Tensor::Ints({1}, {1})}}).ok());  // weight feature missing
}

TEST(DenseFeaturesTest, RejectsCategoricalAndDuplicateNames) {
  ColumnPtr h = Ok(HashBucketColumn("h", 10));
  absl::StatusOr<RowMatrixXf> m = DenseFeatures({h}, {});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("indicator_column or embedding_column"));
  ColumnPtr x = Ok(NumericColumn("x"));
  EXPECT_FALSE(SortedDenseColumns({x, x}).ok());
}

TEST(DenseFeaturesTest, SortsAndConcatenates) {
  ColumnPtr b = Ok(NumericColumn("b", {2}));
  ColumnPtr a = Ok(NumericColumn("a"));
  FeatureMap f = {{"a", Tensor::Floats({1}, {1})}, {"b", Tensor::Floats({1, 2}, {2, 3})}};
  RowMatrixXf m = Ok(DenseFeatures({b, a}, f));
  ASSERT_EQ(m.cols(), 3);
  EXPECT_EQ(m(0, 0), 1.0f);
  EXPECT_EQ(m(0, 2), 3.0f);
  EXPECT_EQ(DenseFeaturesWidth({a, b}), 3);
}

}  // namespace
}  // namespace estuary
