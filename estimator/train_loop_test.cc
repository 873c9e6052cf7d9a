// RunTrainLoop with several local replicas (strategy.h's seam): N batches
// per step computed in parallel, one ApplyGradients per step with every
// replica, EndOfInput when fewer than N batches are left, and OutOfRange
// from ApplyGradients ending training like the end of the input.
#include "estimator/train_loop.h"

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/optimizer.h"
#include "common/status_macros.h"
#include "estimator/data/pipeline.h"
#include "estimator/data/test_files.h"
#include "estimator/feature_column.h"
#include "estimator/head/head.h"
#include "estimator/one_device_strategy.h"
#include "estimator/premade.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

constexpr int64_t kBatch = 4;

// `rows` rows "x,label" with x = row index.
std::unique_ptr<Pipeline> MakeInput(const std::string& name, int rows) {
  std::string text = "x,label\n";
  for (int r = 0; r < rows; ++r) absl::StrAppend(&text, r, ",", r % 2, "\n");
  InputOptions o;
  o.format = InputFormat::kCsv;
  o.files = {testing::WriteTestFile(name, text)};
  o.header = true;
  o.csv_columns.resize(2);
  o.csv_columns[0].dtype = DType::kFloat;
  o.csv_columns[1].dtype = DType::kFloat;
  o.label_key = "label";
  o.batch_size = kBatch;
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Create(std::move(o));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

// One copy of the variables (OneDeviceStrategy) driven by `replicas`
// replicas: applies replica 0's gradients and records what each step got.
class RecordingStrategy : public OneDeviceStrategy {
 public:
  RecordingStrategy(const Model* model,
                    const std::map<std::string, std::unique_ptr<Optimizer>>* optimizers,
                    OneDeviceStrategyOptions options, int replicas)
      : OneDeviceStrategy(model, optimizers, std::move(options)), replicas_(replicas) {}

  int num_local_replicas() const override { return replicas_; }
  absl::StatusOr<double> ApplyGradients(std::vector<ReplicaGradients>* replicas) override {
    if (global_step() == out_of_range_at) return absl::OutOfRangeError("a peer's input ran out");
    std::vector<double> xs;  // the first x of each replica's batch, via its loss
    double sum = 0;
    for (ReplicaGradients& r : *replicas) {
      EXPECT_EQ(r.batch_size, kBatch);
      EXPECT_FALSE(r.grads.dense.empty());
      sum += r.loss;
    }
    sizes.push_back(static_cast<int>(replicas->size()));
    RETURN_IF_ERROR(Apply(&replicas->front().grads));
    return sum / replicas->size();
  }
  absl::Status EndOfInput() override {
    ++end_of_input_calls;
    return absl::OkStatus();
  }

  absl::Duration TakeCommunicationTime() override { return communication; }

  int64_t out_of_range_at = -1;
  absl::Duration communication;  // what TakeCommunicationTime claims every step
  std::vector<int> sizes;
  int end_of_input_calls = 0;

 private:
  const int replicas_;
};

class StepRecorder : public TrainingHook {
 public:
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override {
    steps.push_back(step);
    return absl::OkStatus();
  }
  absl::Status End(int64_t global_step) override {
    ended = true;
    return absl::OkStatus();
  }
  std::vector<StepInfo> steps;
  bool ended = false;
};

struct Fixture {
  std::unique_ptr<Model> model;
  std::unique_ptr<Head> head;
  std::map<std::string, std::unique_ptr<Optimizer>> optimizers;
  OneDeviceStrategyOptions options;

  explicit Fixture(const std::string& tag) {
    model = *MakeLinearModel({*NumericColumn("x")}, 1);
    head = *CreateClassifierHead(HeadOptions{});
    OptimizerConfig sgd;
    sgd.type = "sgd";
    sgd.learning_rate = 0.1;
    optimizers[""] = *MakeOptimizer(sgd);
    options.checkpoint.model_dir = absl::StrCat(testing::TempDir(), "/", tag);
  }
};

TEST(TrainLoopTest, ThreeReplicasReadThreeBatchesPerStepAndDropAPartialStep) {
  Fixture f("three");
  RecordingStrategy strategy(f.model.get(), &f.optimizers, f.options, 3);
  ASSERT_TRUE(strategy.Restore().ok());
  std::unique_ptr<Pipeline> input = MakeInput("three.csv", 8 * kBatch);  // 2 steps + 2 batches
  ASSERT_NE(input, nullptr);
  StepRecorder recorder;
  std::mt19937_64 rng(1);
  ASSERT_TRUE(RunTrainLoop(*f.model, *f.head, input.get(), &strategy, {&recorder}, &rng).ok());
  EXPECT_EQ(strategy.sizes, (std::vector<int>{3, 3}));
  EXPECT_EQ(strategy.end_of_input_calls, 1);
  EXPECT_EQ(strategy.global_step(), 2);
  ASSERT_EQ(recorder.steps.size(), 2u);
  EXPECT_EQ(recorder.steps[0].global_step, 1);
  EXPECT_EQ(recorder.steps[1].batch_size, 3 * kBatch);
  EXPECT_TRUE(recorder.ended);
}

TEST(TrainLoopTest, OneReplicaCallsEndOfInputWhenTheInputRunsOut) {
  Fixture f("one");
  RecordingStrategy strategy(f.model.get(), &f.optimizers, f.options, 1);
  ASSERT_TRUE(strategy.Restore().ok());
  std::unique_ptr<Pipeline> input = MakeInput("one.csv", 3 * kBatch);
  ASSERT_NE(input, nullptr);
  std::mt19937_64 rng(1);
  ASSERT_TRUE(RunTrainLoop(*f.model, *f.head, input.get(), &strategy, {}, &rng).ok());
  EXPECT_EQ(strategy.global_step(), 3);
  EXPECT_EQ(strategy.end_of_input_calls, 1);
}

TEST(TrainLoopTest, OutOfRangeFromApplyGradientsEndsTrainingLikeTheEndOfInput) {
  Fixture f("peer");
  RecordingStrategy strategy(f.model.get(), &f.optimizers, f.options, 2);
  strategy.out_of_range_at = 1;
  ASSERT_TRUE(strategy.Restore().ok());
  std::unique_ptr<Pipeline> input = MakeInput("peer.csv", 10 * kBatch);
  ASSERT_NE(input, nullptr);
  StepRecorder recorder;
  std::mt19937_64 rng(1);
  ASSERT_TRUE(RunTrainLoop(*f.model, *f.head, input.get(), &strategy, {&recorder}, &rng).ok());
  EXPECT_EQ(strategy.global_step(), 1);
  EXPECT_EQ(recorder.steps.size(), 1u);
  EXPECT_EQ(strategy.end_of_input_calls, 0);
  EXPECT_TRUE(recorder.ended);
}

// Asks for the model's summaries on the steps that reach an even
// global_step, and keeps what it gets.
class SummaryRecorder : public TrainingHook {
 public:
  bool WantsSummaries(int64_t global_step) const override { return (global_step + 1) % 2 == 0; }
  absl::Status AfterStep(const StepInfo& step, RunContext*) override {
    if (step.summaries != nullptr) got[step.global_step] = *step.summaries;
    return absl::OkStatus();
  }
  std::map<int64_t, ModelSummaries> got;
};

TEST(TrainLoopTest, ModelSummariesOnlyOnTheStepsAHookWants) {
  Fixture f("summaries");
  RecordingStrategy strategy(f.model.get(), &f.optimizers, f.options, 1);
  ASSERT_TRUE(strategy.Restore().ok());
  std::unique_ptr<Pipeline> input = MakeInput("summaries.csv", 5 * kBatch);
  ASSERT_NE(input, nullptr);
  SummaryRecorder recorder;
  std::mt19937_64 rng(1);
  ASSERT_TRUE(RunTrainLoop(*f.model, *f.head, input.get(), &strategy, {&recorder}, &rng).ok());
  ASSERT_EQ(recorder.got.size(), 2u);
  ASSERT_EQ(recorder.got.count(2), 1u);
  ASSERT_EQ(recorder.got.count(4), 1u);
  // The linear model's (TF's linear.py): the bias and the fraction of zero
  // weights, of the variables the step read (before its update).
  const ModelSummaries& s = recorder.got[2];
  ASSERT_EQ(s.scalars.size(), 2u);
  EXPECT_EQ(s.scalars[0].first, "bias");
  EXPECT_EQ(s.scalars[0].second, 0.0);  // labels 0, 1, 0, 1: its gradient is 0
  EXPECT_EQ(s.scalars[1].first, "fraction_of_zero_weights");
  EXPECT_EQ(s.scalars[1].second, 0.0);  // x's one weight moved at step 1
  EXPECT_TRUE(s.histograms.empty());
}

TEST(TrainLoopTest, ModelSummariesOfADnnLayer) {
  ModelSummaries s;
  RowMatrixXf layer(2, 3);
  layer << 0, 1.5, 0, 2, 0, 0;
  s.AddLayer("dnn/hiddenlayer_0", layer);
  ASSERT_EQ(s.scalars.size(), 1u);
  EXPECT_EQ(s.scalars[0].first, "dnn/hiddenlayer_0/fraction_of_zero_values");
  EXPECT_FLOAT_EQ(s.scalars[0].second, 4.0 / 6.0);
  ASSERT_EQ(s.histograms.size(), 1u);
  EXPECT_EQ(s.histograms[0].first, "dnn/hiddenlayer_0/activation");
  EXPECT_EQ(s.histograms[0].second, (std::vector<double>{0, 1.5, 0, 2, 0, 0}));
}

TEST(TrainLoopTest, OneDeviceRejectsTwoReplicas) {
  Fixture f("reject");
  OneDeviceStrategy strategy(f.model.get(), &f.optimizers, f.options);
  ASSERT_TRUE(strategy.Restore().ok());
  std::vector<ReplicaGradients> two(2);
  EXPECT_TRUE(absl::IsInvalidArgument(strategy.ApplyGradients(&two).status()));
  EXPECT_EQ(strategy.global_step(), 0);
}

// Every step reports where its time went: each phase >= 0, together no
// more than the step; communication is what the strategy reports, capped
// at the strategy's own time (the rest is apply).
TEST(TrainLoopTest, StepPhasesSplitTheStepTime) {
  for (const absl::Duration claimed : {absl::ZeroDuration(), absl::Hours(1)}) {
    Fixture f(absl::StrCat("phases", absl::ToInt64Seconds(claimed)));
    RecordingStrategy strategy(f.model.get(), &f.optimizers, f.options, 2);
    strategy.communication = claimed;
    ASSERT_TRUE(strategy.Restore().ok());
    std::unique_ptr<Pipeline> input =
        MakeInput(absl::StrCat("phases", absl::ToInt64Seconds(claimed), ".csv"), 6 * kBatch);
    ASSERT_NE(input, nullptr);
    StepRecorder recorder;
    std::mt19937_64 rng(1);
    ASSERT_TRUE(RunTrainLoop(*f.model, *f.head, input.get(), &strategy, {&recorder}, &rng).ok());
    ASSERT_EQ(recorder.steps.size(), 3u);
    for (const StepInfo& step : recorder.steps) {
      const StepPhases& p = step.phases;
      for (absl::Duration d : {p.input, p.compute, p.communicate, p.apply}) {
        EXPECT_GE(d, absl::ZeroDuration());
      }
      EXPECT_GT(p.input, absl::ZeroDuration());  // parsing CSV takes some time
      EXPECT_GT(p.compute, absl::ZeroDuration());
      EXPECT_LE(p.input + p.compute + p.communicate + p.apply, p.total);
      if (claimed == absl::ZeroDuration()) {
        EXPECT_EQ(p.communicate, absl::ZeroDuration());
        EXPECT_GT(p.apply, absl::ZeroDuration());
      } else {
        EXPECT_LT(p.communicate, claimed);  // capped at the strategy's time
        EXPECT_EQ(p.apply, absl::ZeroDuration());
      }
    }
  }
}

}  // namespace
}  // namespace estuary
