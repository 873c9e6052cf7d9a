// What the parameter_server strategy and the trainer decide without RPC:
// the PS initialisation from a loaded model (slots and update counters from
// a checkpoint, or one process's global_step) and each task's input shard. Training over real PS processes
// is tests/ps_training_test.
#include "distribute/parameter_server_strategy.h"

#include "distribute/trainer.h"
#include "estimator/feature_column.h"
#include "estimator/premade.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

std::unique_ptr<Model> LinearModelOverTwoColumns() {
  std::vector<ColumnPtr> cols = {*HashBucketColumn("c", 100), *NumericColumn("x")};
  return *MakeLinearModel(std::move(cols), 1);
}

std::map<std::string, std::unique_ptr<Optimizer>> Ftrl() {
  std::map<std::string, std::unique_ptr<Optimizer>> o;
  OptimizerConfig c;
  c.type = "ftrl";
  c.learning_rate = 0.2;
  o[""] = *MakeOptimizer(c);
  return o;
}

TEST(ParameterServerStrategyTest, InitsFromAFreshModelLetThePsCreateSlots) {
  auto model = LinearModelOverTwoColumns();
  auto optimizers = Ftrl();
  LoadedModel loaded;
  ASSERT_TRUE(model->InitVariables(0, &loaded.vars).ok());
  loaded.global_step = 0;
  std::vector<PsVariableInit> inits =
      ParameterServerStrategy::InitsFromLoaded(*model, optimizers, std::move(loaded));
  ASSERT_EQ(inits.size(), 3u);
  for (const PsVariableInit& v : inits) {
    SCOPED_TRACE(v.name);
    EXPECT_TRUE(v.slots.empty());
    EXPECT_EQ(v.updates, 0);
    EXPECT_EQ(v.optimizer.type, "ftrl");
    EXPECT_DOUBLE_EQ(v.optimizer.learning_rate, 0.2);
    EXPECT_TRUE(v.trainable);
    // Only the categorical column's weights are read by rows.
    EXPECT_EQ(v.row_sparse, v.name == "linear/linear_model/c/weights");
  }
}

TEST(ParameterServerStrategyTest, InitsFromACheckpointCarrySlotsAndUpdateCounters) {
  auto model = LinearModelOverTwoColumns();
  auto optimizers = Ftrl();
  LoadedModel loaded;
  ASSERT_TRUE(model->InitVariables(0, &loaded.vars).ok());
  loaded.global_step = 40;
  const std::string c = "linear/linear_model/c/weights";
  loaded.others[SlotName(c, "ftrl", "accumulator")] = RowMatrixXf::Constant(100, 1, 0.5f);
  loaded.others[SlotName(c, "ftrl", "linear")] = RowMatrixXf::Constant(100, 1, -1.f);
  // A cluster's checkpoint counts the updates of each variable.
  loaded.other_ints[SlotName(c, "ftrl", "updates")] = 17;
  std::vector<PsVariableInit> inits =
      ParameterServerStrategy::InitsFromLoaded(*model, optimizers, std::move(loaded));
  for (const PsVariableInit& v : inits) {
    SCOPED_TRACE(v.name);
    if (v.name == c) {
      ASSERT_EQ(v.slots.size(), 2u);
      EXPECT_FLOAT_EQ(v.slots.at("accumulator")(3, 0), 0.5f);
      EXPECT_FLOAT_EQ(v.slots.at("linear")(3, 0), -1.f);
      EXPECT_EQ(v.updates, 17);
    } else {
      // A one-process checkpoint: every variable was updated at every step.
      EXPECT_TRUE(v.slots.empty());
      EXPECT_EQ(v.updates, 40);
    }
  }
}

TfConfig Config(ClusterSpec::Jobs jobs, const std::string& type, int index) {
  TfConfig tf;
  tf.cluster = ClusterSpec(std::move(jobs));
  tf.task = {type, index};
  return tf;
}

TEST(TrainerShardTest, ChiefIsShardZeroAndWorkersFollow) {
  const ClusterSpec::Jobs jobs = {{"chief", {{0, "h:1"}}},
                                  {"worker", {{0, "h:2"}, {1, "h:3"}}},
                                  {"ps", {{0, "h:4"}}},
                                  {"evaluator", {{0, "h:5"}}}};
  EXPECT_EQ(TrainerShard(Config(jobs, "chief", 0)).index, 0);
  EXPECT_EQ(TrainerShard(Config(jobs, "chief", 0)).count, 3);
  EXPECT_EQ(TrainerShard(Config(jobs, "worker", 0)).index, 1);
  EXPECT_EQ(TrainerShard(Config(jobs, "worker", 1)).index, 2);
  EXPECT_EQ(TrainerShard(Config(jobs, "worker", 1)).count, 3);
  EXPECT_EQ(TrainerShard(Config(jobs, "evaluator", 0)).count, 1);
}

TEST(TrainerShardTest, WithoutAChiefWorkerZeroIsShardZero) {
  const ClusterSpec::Jobs jobs = {{"worker", {{0, "h:2"}, {1, "h:3"}}}, {"ps", {{0, "h:4"}}}};
  EXPECT_EQ(TrainerShard(Config(jobs, "worker", 0)).index, 0);
  EXPECT_EQ(TrainerShard(Config(jobs, "worker", 1)).index, 1);
  EXPECT_EQ(TrainerShard(Config(jobs, "worker", 1)).count, 2);
}

}  // namespace
}  // namespace estuary
