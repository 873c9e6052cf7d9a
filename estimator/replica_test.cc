// Re-entrant models: two replicas of one const Model (DNN with an embedding
// and batch norm + linear, i.e. dnn_linear_combined) trained by two threads
// at once give bit-identical results to training them one after the other.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/optimizer.h"
#include "estimator/dnn_model.h"
#include "estimator/feature_column.h"
#include "estimator/head/head.h"
#include "estimator/one_device_strategy.h"
#include "estimator/train_loop.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

constexpr int64_t kBatch = 16;
constexpr int64_t kBuckets = 50;
constexpr int kSteps = 1000; // long enough for the threads to overlap

std::vector<Batch> MakeBatches(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<Batch> batches(8);
  for (Batch& b : batches) {
    std::vector<float> x(kBatch * 4), y(kBatch);
    std::vector<int64_t> ids(kBatch * 2);
    for (int64_t r = 0; r < kBatch; ++r) {
      for (int c = 0; c < 4; ++c) x[r * 4 + c] = u(rng);
      ids[r * 2] = static_cast<int64_t>(rng() % kBuckets);
      ids[r * 2 + 1] = static_cast<int64_t>(rng() % kBuckets);
      y[r] = x[r * 4] - x[r * 4 + 1] + (ids[r * 2] % 2 == 0 ? 0.5f : -0.5f) > 0 ? 1.0f : 0.0f;
    }
    b.batch_size = kBatch;
    b.features["x"] = Tensor::Floats({kBatch, 4}, std::move(x));
    b.features["id"] = Tensor::Ints({kBatch, 2}, std::move(ids));
    b.labels = Tensor::Floats({kBatch}, std::move(y));
    b.has_labels = true;
  }
  return batches;
}

struct Shared {
  std::unique_ptr<Model> model;
  std::unique_ptr<Head> head;
  std::map<std::string, std::unique_ptr<Optimizer>> optimizers;
};

Shared MakeShared() {
  Shared s;
  ColumnPtr x = *NumericColumn("x", {4});
  ColumnPtr id = *IdentityColumn("id", kBuckets);
  DnnModelOptions options;
  options.dnn_columns = {x, *EmbeddingColumn(id, 3)};
  options.linear_columns = {x, id};
  options.mlp.hidden_units = {8, 4};
  options.mlp.dropout = 0.1f;
  options.mlp.batch_norm = true;
  options.mlp.logits_dimension = 1;
  absl::StatusOr<std::unique_ptr<Model>> model = MakeDnnModel(std::move(options));
  EXPECT_TRUE(model.ok()) << model.status();
  s.model = *std::move(model);
  s.head = *CreateClassifierHead(HeadOptions{});
  OptimizerConfig adam;
  adam.type = "adam";
  adam.learning_rate = 0.01;
  OptimizerConfig ftrl;
  ftrl.type = "ftrl";
  ftrl.learning_rate = 0.1;
  s.optimizers["dnn"] = *MakeOptimizer(adam);
  s.optimizers["linear"] = *MakeOptimizer(ftrl);
  return s;
}

struct Result {
  absl::Status status;
  Variables vars;
  std::vector<double> losses;
  int64_t global_step = 0;
};

// One replica: its own variables, slots, rng and data; the model, head and
// optimizers are shared (const).
void TrainReplica(const Shared& shared, int replica, const std::string& tag, Result* out) {
  OneDeviceStrategyOptions options;
  options.checkpoint.model_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", tag, replica);
  options.checkpoint.seed = 7;  // replicas start equal, like mirrored ones
  OneDeviceStrategy strategy(shared.model.get(), &shared.optimizers, options);
  out->status = strategy.Restore();
  if (!out->status.ok()) return;
  const std::vector<Batch> batches = MakeBatches(100 + replica);
  std::mt19937_64 rng(1000 + replica);
  std::vector<ReplicaGradients> replicas(1);
  Gradients& grads = replicas[0].grads;
  for (int step = 0; step < kSteps; ++step) {
    const Batch& batch = batches[step % batches.size()];
    absl::StatusOr<const Variables*> vars = strategy.VariablesForStep(batch.features);
    if (!vars.ok()) {
      out->status = vars.status();
      return;
    }
    absl::StatusOr<double> loss = ComputeGradients(*shared.model, *shared.head, batch, **vars,
                                                   strategy.global_step(), &rng, &grads);
    if (!loss.ok()) {
      out->status = loss.status();
      return;
    }
    out->losses.push_back(*loss);
    out->status = strategy.ApplyGradients(&replicas).status();
    if (!out->status.ok()) return;
  }
  out->vars = strategy.variables();
  out->global_step = strategy.global_step();
}

void ExpectBitIdentical(const Result& a, const Result& b) {
  ASSERT_TRUE(a.status.ok()) << a.status;
  ASSERT_TRUE(b.status.ok()) << b.status;
  EXPECT_EQ(a.global_step, b.global_step);
  EXPECT_EQ(a.losses, b.losses);
  ASSERT_EQ(a.vars.floats.size(), b.vars.floats.size());
  for (const auto& [name, v] : a.vars.floats) {
    ASSERT_EQ(b.vars.floats.count(name), 1u) << name;
    const RowMatrixXf& w = b.vars.floats.at(name);
    ASSERT_EQ(v.rows(), w.rows()) << name;
    ASSERT_EQ(v.cols(), w.cols()) << name;
    EXPECT_EQ(std::memcmp(v.data(), w.data(), sizeof(float) * v.size()), 0) << name;
  }
}

TEST(ReplicaTest, TwoThreadsTrainTwoReplicasOfOneModelLikeOneAfterTheOther) {
  const Shared shared = MakeShared();
  Result sequential[2], concurrent[2];
  for (int r = 0; r < 2; ++r) TrainReplica(shared, r, "sequential", &sequential[r]);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back(TrainReplica, std::cref(shared), r, "concurrent", &concurrent[r]);
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE(r);
    ExpectBitIdentical(sequential[r], concurrent[r]);
    EXPECT_EQ(sequential[r].global_step, kSteps);
  }
  // The replicas saw different data, so they differ; the step reached every
  // kind of variable: dense, sparse rows, and assigned moving statistics.
  const auto& v0 = sequential[0].vars.floats;
  const auto& v1 = sequential[1].vars.floats;
  EXPECT_NE(v0.at("dnn/logits/kernel"), v1.at("dnn/logits/kernel"));
  EXPECT_NE(v0.at("dnn/input_from_feature_columns/input_layer/id_embedding/embedding_weights"),
            v1.at("dnn/input_from_feature_columns/input_layer/id_embedding/embedding_weights"));
  EXPECT_FALSE(v0.at("linear/linear_model/id/weights").isZero());
  EXPECT_FALSE(v0.at("dnn/hiddenlayer_0/batchnorm_0/moving_mean").isZero());
  EXPECT_NE(v0.at("dnn/hiddenlayer_1/batchnorm_1/moving_variance"),
            v1.at("dnn/hiddenlayer_1/batchnorm_1/moving_variance"));
}

// What a parameter-server strategy would pull before the step: the rows of
// the embedding table and of the linear weights the batch touches.
TEST(ReplicaTest, RowsReadNamesTheTouchedRowsOfSparseVariables) {
  const Shared shared = MakeShared();
  const std::vector<Batch> batches = MakeBatches(5);
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> rows =
      shared.model->RowsRead(batches[0].features);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const std::vector<int64_t>& table =
      rows->at("dnn/input_from_feature_columns/input_layer/id_embedding/embedding_weights");
  EXPECT_EQ(table, rows->at("linear/linear_model/id/weights"));
  const Tensor& ids = std::get<Tensor>(batches[0].features.at("id"));
  std::vector<int64_t> want(ids.ints.begin(), ids.ints.end());
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());
  EXPECT_EQ(table, want);
  // ... and they are exactly the rows the step's sparse gradients cover.
  Variables vars;
  ASSERT_TRUE(shared.model->InitVariables(1, &vars).ok());
  std::mt19937_64 rng(1);
  Gradients grads;
  ASSERT_TRUE(ComputeGradients(*shared.model, *shared.head, batches[0], vars, 0, &rng, &grads).ok());
  for (const auto& [name, g] : grads.sparse) EXPECT_EQ(g.rows, rows->at(name)) << name;
}

}  // namespace
}  // namespace estuary
