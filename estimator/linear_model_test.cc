#include "estimator/linear_model.h"

#include <random>

#include "gtest/gtest.h"

namespace estuary {
namespace {

FeatureMap Inputs() {
  FeatureMap f;
  f["age"] = Tensor::Floats({3}, {20.f, 40.f, 70.f});
  f["city"] = Tensor::Strings({3}, {"oslo", "paris", "oslo"});
  SparseTensor tags;
  tags.dtype = DType::kString;
  tags.batch_size = 3;
  tags.max_len = 2;
  tags.rows = {0, 0, 2};
  tags.cols = {0, 1, 0};
  tags.strings = {"a", "b", "a"};
  f["tags"] = tags;
  return f;
}

std::vector<ColumnPtr> Columns() {
  ColumnPtr age = *NumericColumn("age");
  return {*HashBucketColumn("city", 10), age, *BucketizedColumn(age, {30.f, 60.f}),
          *HashBucketColumn("tags", 7)};
}

TEST(LinearModelTest, VariablesAreNamedAndShapedLikeTensorFlow) {
  absl::StatusOr<LinearModel> m = LinearModel::Create(Columns(), 3);
  ASSERT_TRUE(m.ok()) << m.status();
  Variables vars;
  m->InitVariables(&vars);
  // Sorted by column name; bucketized goes the categorical way.
  EXPECT_EQ(m->variable_names(),
            (std::vector<std::string>{"linear/linear_model/age/weights",
                                      "linear/linear_model/age_bucketized/weights",
                                      "linear/linear_model/city/weights",
                                      "linear/linear_model/tags/weights",
                                      "linear/linear_model/bias_weights"}));
  EXPECT_EQ(vars.floats.at("linear/linear_model/age_bucketized/weights").rows(), 3);
  EXPECT_EQ(vars.floats.at("linear/linear_model/city/weights").rows(), 10);
  EXPECT_EQ(vars.floats.at("linear/linear_model/age/weights").rows(), 1);
  EXPECT_EQ(vars.floats.at("linear/linear_model/bias_weights").cols(), 3);
  EXPECT_TRUE(vars.floats.at("linear/linear_model/city/weights").isZero());
}

TEST(LinearModelTest, GradientsMatchFiniteDifferences) {
  absl::StatusOr<LinearModel> m = LinearModel::Create(Columns(), 2);
  ASSERT_TRUE(m.ok());
  Variables vars;
  m->InitVariables(&vars);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 1);
  for (auto& [name, v] : vars.floats) {
    for (Eigen::Index i = 0; i < v.size(); ++i) v.data()[i] = normal(rng);
  }
  const FeatureMap f = Inputs();
  RowMatrixXf upstream(3, 2);
  for (Eigen::Index i = 0; i < upstream.size(); ++i) upstream.data()[i] = normal(rng);
  // loss = sum(upstream .* logits)
  auto loss = [&](const Variables& v) {
    LinearModel::Cache c;
    return static_cast<double>((m->Forward(f, v, &c)->array() * upstream.array()).sum());
  };
  LinearModel::Cache cache;
  ASSERT_TRUE(m->Forward(f, vars, &cache).ok());
  Gradients g;
  ASSERT_TRUE(m->Backward(cache, upstream, &g).ok());
  for (const auto& [name, v] : vars.floats) {
    RowMatrixXf analytic = RowMatrixXf::Zero(v.rows(), v.cols());
    if (g.dense.count(name)) analytic = g.dense.at(name);
    if (g.sparse.count(name)) {
      const SparseGradient& s = g.sparse.at(name);
      for (size_t k = 0; k < s.rows.size(); ++k) analytic.row(s.rows[k]) = s.values.row(k);
    }
    for (Eigen::Index i = 0; i < v.size(); ++i) {
      Variables plus = vars, minus = vars;
      plus.floats[name].data()[i] += 1e-2f;
      minus.floats[name].data()[i] -= 1e-2f;
      const double numeric = (loss(plus) - loss(minus)) / 2e-2;
      EXPECT_NEAR(analytic.data()[i], numeric, 1e-2) << name << " element " << i;
    }
  }
}

TEST(LinearModelTest, TouchedRowsOnlyForCategoricalWeights) {
  absl::StatusOr<LinearModel> m = LinearModel::Create({*HashBucketColumn("city", 1000)}, 1);
  ASSERT_TRUE(m.ok());
  Variables vars;
  m->InitVariables(&vars);
  LinearModel::Cache cache;
  ASSERT_TRUE(m->Forward(Inputs(), vars, &cache).ok());
  Gradients g;
  ASSERT_TRUE(m->Backward(cache, RowMatrixXf::Ones(3, 1), &g).ok());
  const SparseGradient& s = g.sparse.at("linear/linear_model/city/weights");
  EXPECT_EQ(s.rows.size(), 2u);  // oslo, paris
  EXPECT_FLOAT_EQ(s.values.sum(), 3.0f);
  EXPECT_FLOAT_EQ(g.dense.at("linear/linear_model/bias_weights")(0, 0), 3.0f);
  // What a parameter-server strategy pulls before Forward: the same rows.
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> read = m->RowsRead(Inputs());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->at("linear/linear_model/city/weights"), s.rows);
}

}  // namespace
}  // namespace estuary
