// Compares Estuary's feature columns with TensorFlow 2.15's outputs, recorded
// by testdata/make_feature_column_goldens.py in
// testdata/feature_column_goldens.json.
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "estimator/embedding.h"
#include "estimator/feature_column.h"
#include "estimator/feature_column_builder.h"
#include "estimator/feature_hash.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace estuary {
namespace {

using nlohmann::json;

constexpr char kTestdata[] = "estimator/testdata";

const json& Goldens() {
  static const json* g = [] {
    std::ifstream in(std::string(kTestdata) + "/feature_column_goldens.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return new json(json::parse(ss.str()));
  }();
  return *g;
}

DType ParseDType(const std::string& s) {
  if (s == "string") return DType::kString;
  if (s == "int64") return DType::kInt64;
  return DType::kFloat;
}

template <typename T>
void FillValues(const json& values, DType dtype, T* t) {
  for (const json& v : values) {
    if (dtype == DType::kString) t->strings.push_back(v.get<std::string>());
    if (dtype == DType::kInt64) t->ints.push_back(v.get<int64_t>());
    if (dtype == DType::kFloat) t->floats.push_back(v.get<float>());
  }
}

FeatureMap ParseFeatures(const json& features) {
  FeatureMap out;
  for (const auto& [key, f] : features.items()) {
    const DType dtype = ParseDType(f["dtype"]);
    if (f.value("sparse", false)) {
      SparseTensor s;
      s.dtype = dtype;
      s.batch_size = f["batch_size"];
      s.max_len = f["max_len"];
      s.rows = f["rows"].get<std::vector<int64_t>>();
      s.cols = f["cols"].get<std::vector<int64_t>>();
      FillValues(f["values"], dtype, &s);
      out[key] = s;
    } else {
      Tensor t;
      t.dtype = dtype;
      t.shape = f["shape"].get<std::vector<int64_t>>();
      FillValues(f["values"], dtype, &t);
      out[key] = t;
    }
  }
  return out;
}

RowMatrixXf ParseMatrix(const json& rows) {
  RowMatrixXf m(rows.size(), rows.empty() ? 0 : rows[0].size());
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) m(r, c) = rows[r][c].get<float>();
  }
  return m;
}

void ExpectNear(const RowMatrixXf& got, const RowMatrixXf& want, const std::string& what) {
  ASSERT_EQ(got.rows(), want.rows()) << what;
  ASSERT_EQ(got.cols(), want.cols()) << what;
  for (int64_t r = 0; r < got.rows(); ++r) {
    for (int64_t c = 0; c < got.cols(); ++c) {
      EXPECT_NEAR(got(r, c), want(r, c), 1e-5f * std::max(1.0f, std::fabs(want(r, c))))
          << what << " at (" << r << ", " << c << ")";
    }
  }
}

TEST(FeatureColumnGoldenTest, HashBucketFast) {
  const json& cases = Goldens()["hash_fast"];
  ASSERT_GT(cases.size(), 100u);
  for (const json& c : cases) {
    const std::string s = c["s"];
    EXPECT_EQ(StringToHashBucket(s, c["buckets"].get<int64_t>()), c["id"].get<int64_t>())
        << "'" << s << "' % " << c["buckets"];
  }
}

TEST(FeatureColumnGoldenTest, CrossHashedRaw) {
  for (const json& c : Goldens()["cross_raw"]) {
    const uint64_t a = c.contains("a_int") ? CrossComponentHash(c["a_int"].get<int64_t>())
                                           : CrossComponentHash(c["a"].get<std::string>());
    const uint64_t b = CrossComponentHash(c["b"].get<std::string>());
    const uint64_t h = FingerprintCat64(FingerprintCat64(kCrossedColumnHashKey, a), b);
    EXPECT_EQ(CrossHashToBucket(h, c["num_buckets"]), c["id"].get<int64_t>()) << c.dump();
  }
}

TEST(FeatureColumnGoldenTest, Cases) {
  const json& cases = Goldens()["cases"];
  ASSERT_GE(cases.size(), 25u);
  for (const json& c : cases) {
    const std::string title = c["title"];
    SCOPED_TRACE(title);
    absl::StatusOr<FeatureColumnSet> set = BuildFeatureColumns(c["columns"], kTestdata);
    ASSERT_TRUE(set.ok()) << set.status();
    const FeatureMap features = ParseFeatures(c["features"]);
    if (c["kind"] == "dense") {
      EmbeddingTables tables;
      for (const auto& [name, t] : c["tables"].items()) tables[name] = ParseMatrix(t);
      absl::StatusOr<std::vector<ColumnPtr>> sorted = SortedDenseColumns(set->DenseColumns());
      ASSERT_TRUE(sorted.ok()) << sorted.status();
      std::vector<std::string> order;
      for (const ColumnPtr& col : *sorted) order.push_back(col->name());
      EXPECT_EQ(order, c["order"].get<std::vector<std::string>>());
      absl::StatusOr<RowMatrixXf> got = DenseFeatures(set->DenseColumns(), features, &tables);
      ASSERT_TRUE(got.ok()) << got.status();
      const RowMatrixXf want = ParseMatrix(c["expect"]);
      EXPECT_EQ(DenseFeaturesWidth(*sorted), want.cols());
      ExpectNear(*got, want, title);
    } else {
      absl::StatusOr<ColumnPtr> col = set->Find(c["column"].get<std::string>());
      ASSERT_TRUE(col.ok()) << col.status();
      absl::StatusOr<CategoricalIds> ids = (*col)->Ids(features);
      ASSERT_TRUE(ids.ok()) << ids.status();
      EXPECT_EQ(ids->batch_size, c["batch_size"].get<int64_t>());
      EXPECT_EQ(ids->rows, c["rows"].get<std::vector<int64_t>>());
      EXPECT_EQ(ids->ids, c["ids"].get<std::vector<int64_t>>());
      if (c.contains("weights")) {
        EXPECT_EQ(ids->weights, c["weights"].get<std::vector<float>>());
      } else {
        EXPECT_FALSE(ids->has_weights());
      }
    }
  }
}

TEST(FeatureColumnGoldenTest, EmbeddingOutputAndGradient) {
  for (const json& g : Goldens()["embedding_grads"]) {
    SCOPED_TRACE(g["combiner"].get<std::string>());
    const Combiner combiner = *ParseCombiner(g["combiner"].get<std::string>());
    const RowMatrixXf table = ParseMatrix(g["table"]);
    CategoricalIds ids;
    ids.batch_size = g["batch_size"];
    ids.num_buckets = table.rows();
    ids.rows = g["rows"].get<std::vector<int64_t>>();
    ids.ids = g["ids"].get<std::vector<int64_t>>();
    ids.weights = g["weights"].get<std::vector<float>>();
    absl::StatusOr<RowMatrixXf> out = CombineEmbeddings(table, ids, combiner);
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectNear(*out, ParseMatrix(g["output"]), "output");
    absl::StatusOr<EmbeddingGrad> grad =
        CombineEmbeddingsGrad(table.rows(), ids, combiner, ParseMatrix(g["upstream"]));
    ASSERT_TRUE(grad.ok()) << grad.status();
    RowMatrixXf dense = RowMatrixXf::Zero(table.rows(), table.cols());
    for (size_t k = 0; k < grad->ids.size(); ++k) dense.row(grad->ids[k]) = grad->grads.row(k);
    ExpectNear(dense, ParseMatrix(g["dense_grad"]), "gradient");
  }
}

}  // namespace
}  // namespace estuary
