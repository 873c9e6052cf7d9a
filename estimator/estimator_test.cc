#include "estimator/estimator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

std::string TempDir() { return std::getenv("TEST_TMPDIR"); }

// y = 1 if 2a - b + (c == "x") > 0.5, with a, b ~ U(-1, 1).
std::string WriteData(const std::string& name, int rows, bool with_nan = false) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  const std::string path = absl::StrCat(TempDir(), "/", name);
  std::ofstream out(path);
  out << "a,b,c,y\n";
  for (int i = 0; i < rows; ++i) {
    const float a = u(rng), b = u(rng);
    const std::string c = (i % 3 == 0) ? "x" : "y";
    const int y = 2 * a - b + (c == "x") > 0.5f ? 1 : 0;
    out << (with_nan && i == 5 ? std::string("nan") : absl::StrCat(a)) << "," << b << "," << c
        << "," << y << "\n";
  }
  return path;
}

nlohmann::json JobJson(const std::string& type, const std::string& data,
                       const std::string& model_dir) {
  const std::string optimizers =
      type == "dnn_linear_combined_classifier"
          ? R"("linear_optimizer": {"type": "ftrl", "learning_rate": 0.1},
               "dnn_optimizer": {"type": "adam", "learning_rate": 0.05})"
          : R"("optimizer": {"type": "adam", "learning_rate": 0.05})";
  const std::string text = absl::StrCat(R"({"model_dir": ")", model_dir, R"(",
    "estimator": {"type": ")", type, R"(", "hidden_units": [8], )", optimizers, R"(},
    "feature_columns": [
      {"type": "numeric", "key": "a"}, {"type": "numeric", "key": "b"},
      {"type": "categorical_with_vocabulary_list", "key": "c", "vocabulary_list": ["x", "y"]},
      {"type": "indicator", "categorical_column": "c"}],
    "train_input": {"format": "csv", "files": [")", data, R"("], "header": true,
      "column_defaults": [0.0, 0.0, "", 0], "label_key": "y", "batch_size": 32,
      "shuffle_buffer_size": 100, "num_epochs": -1, "seed": 1},
    "eval_input": {"format": "csv", "files": [")", data, R"("], "header": true,
      "column_defaults": [0.0, 0.0, "", 0], "label_key": "y", "batch_size": 100},
    "run_config": {"tf_random_seed": 3, "save_checkpoints_steps": 50, "keep_checkpoint_max": 2,
                   "log_step_count_steps": 1000}})");
  return nlohmann::json::parse(text);
}

JobSpec ParseJob(const nlohmann::json& j) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(j.dump(), "test.json");
  EXPECT_TRUE(job.ok()) << job.status();
  return *job;
}

JobSpec Job(const std::string& type, const std::string& data, const std::string& model_dir) {
  return ParseJob(JobJson(type, data, model_dir));
}

// The error of the parse, else of EstimatorFromJob.
absl::Status JobError(const nlohmann::json& j) {
  absl::StatusOr<JobSpec> job = ParseJobSpec(j.dump(), "test.json");
  if (!job.ok()) return job.status();
  return EstimatorFromJob(*job).status();
}

struct Trained {
  std::unique_ptr<Estimator> est;
  InputFn train, eval;
};

Trained Make(const std::string& type, const std::string& data, const std::string& dir) {
  JobSpec job = Job(type, data, dir);
  Trained t;
  absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(job);
  EXPECT_TRUE(est.ok()) << est.status();
  t.est = *std::move(est);
  t.train = *InputFnFromJob(job, "train_input");
  t.eval = *InputFnFromJob(job, "eval_input");
  return t;
}

TEST(EstimatorTest, StepsAndMaxStepsFollowTensorFlow) {
  const std::string data = WriteData("steps.csv", 300);
  const std::string dir = TempDir() + "/steps_model";
  Trained t = Make("linear_classifier", data, dir);
  TrainArgs both;
  both.steps = 1;
  both.max_steps = 1;
  EXPECT_EQ(t.est->Train(t.train, both).code(), absl::StatusCode::kInvalidArgument);
  TrainArgs max;
  max.max_steps = 120;
  ASSERT_TRUE(t.est->Train(t.train, max).ok());
  EXPECT_EQ(t.est->global_step(), 120);
  ASSERT_TRUE(t.est->Train(t.train, max).ok());  // already reached: skipped
  EXPECT_EQ(t.est->global_step(), 120);
  TrainArgs more;
  more.steps = 7;
  ASSERT_TRUE(t.est->Train(t.train, more).ok());
  EXPECT_EQ(t.est->global_step(), 127);
  // keep_checkpoint_max 2: only the last two remain; a new Estimator resumes.
  absl::StatusOr<std::vector<checkpoint::CheckpointInfo>> list = checkpoint::ListCheckpoints(dir);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  Trained again = Make("linear_classifier", data, dir);
  ASSERT_TRUE(again.est->Train(again.train, more).ok());
  EXPECT_EQ(again.est->global_step(), 134);
}

TEST(EstimatorTest, EveryPremadeLearnsAndReportsTensorFlowKeys) {
  const std::string data = WriteData("learn.csv", 600);
  for (const std::string type : {"linear_classifier", "dnn_classifier",
                                 "dnn_linear_combined_classifier", "baseline_classifier"}) {
    SCOPED_TRACE(type);
    Trained t = Make(type, data, TempDir() + "/learn_" + type);
    TrainArgs args;
    args.max_steps = 400;
    ASSERT_TRUE(t.est->Train(t.train, args).ok());
    absl::StatusOr<std::map<std::string, double>> m = t.est->Evaluate(t.eval, std::nullopt);
    ASSERT_TRUE(m.ok()) << m.status();
    for (const char* key : {"accuracy", "accuracy_baseline", "auc", "auc_precision_recall",
                            "average_loss", "global_step", "label/mean", "loss", "precision",
                            "prediction/mean", "recall"}) {
      EXPECT_EQ(m->count(key), 1u) << key;
    }
    EXPECT_EQ(m->at("global_step"), 400);
    if (type == "baseline_classifier") {
      EXPECT_NEAR(m->at("prediction/mean"), m->at("label/mean"), 0.05);
    } else {
      EXPECT_GT(m->at("accuracy"), 0.9) << type;
    }
  }
}

TEST(EstimatorTest, WarmStartFromAnotherModelDir) {
  const std::string data = WriteData("warm.csv", 300);
  const std::string first = TempDir() + "/warm_first";
  Trained t = Make("linear_classifier", data, first);
  TrainArgs args;
  args.max_steps = 50;
  ASSERT_TRUE(t.est->Train(t.train, args).ok());
  nlohmann::json j = JobJson("linear_classifier", data, TempDir() + "/warm_second");
  j["estimator"]["warm_start_from"] = first;
  JobSpec job = ParseJob(j);
  absl::StatusOr<std::unique_ptr<Estimator>> second = EstimatorFromJob(job);
  ASSERT_TRUE(second.ok()) << second.status();
  TrainArgs one;
  one.steps = 1;
  ASSERT_TRUE((*second)->Train(*InputFnFromJob(job, "train_input"), one).ok());
  EXPECT_EQ((*second)->global_step(), 1);  // warm start takes weights, not the step
  // Adam's first step moves every weight by less than the learning rate
  // (0.05): lr * g(1 - b1) / ((1 - b1)|g| + eps') . So every weight of the
  // second model is within 0.05 of the first's, and the first's weights
  // are further than that from the zero initialisation (which one step
  // from scratch could not leave by more than 0.05).
  const Variables& v1 = t.est->variables();
  const Variables& v2 = (*second)->variables();
  ASSERT_EQ(v1.floats.size(), v2.floats.size());
  float largest = 0;
  for (const auto& [name, w1] : v1.floats) {
    SCOPED_TRACE(name);
    ASSERT_EQ(v2.floats.count(name), 1u);
    const RowMatrixXf& w2 = v2.floats.at(name);
    ASSERT_EQ(w2.rows(), w1.rows());
    ASSERT_EQ(w2.cols(), w1.cols());
    EXPECT_LE((w2 - w1).cwiseAbs().maxCoeff(), 0.05f);
    largest = std::max(largest, w1.cwiseAbs().maxCoeff());
  }
  EXPECT_GT(largest, 0.1f);
  EXPECT_GT(std::abs(v1.floats.at("linear/linear_model/a/weights")(0, 0)), 0.1f);
}

TEST(EstimatorTest, InputFnFromJobReadsItsShard) {
  const std::string data = WriteData("shards.csv", 250);
  JobSpec job = Job("linear_classifier", data, TempDir() + "/shards_model");
  // eval_input: one file, one epoch, no shuffle; two shards split it by record.
  auto count = [&](InputShard shard) -> int64_t {
    absl::StatusOr<InputFn> input = InputFnFromJob(job, "eval_input", shard);
    EXPECT_TRUE(input.ok()) << input.status();
    if (!input.ok()) return -1;
    auto pipeline = (*input)();
    EXPECT_TRUE(pipeline.ok()) << pipeline.status();
    if (!pipeline.ok()) return -1;
    int64_t n = 0;
    while (true) {
      absl::StatusOr<std::optional<Batch>> b = (*pipeline)->Next();
      EXPECT_TRUE(b.ok()) << b.status();
      if (!b.ok() || !b->has_value()) break;
      n += (*b)->batch_size;
    }
    return n;
  };
  EXPECT_EQ(count({}), 250);
  EXPECT_EQ(count({0, 2}), 125);
  EXPECT_EQ(count({1, 2}), 125);
  EXPECT_EQ(count({2, 3}), 83);  // records 2, 5, ..., 248
  job.eval_input->shard = InputShardPolicy::kOff;
  EXPECT_EQ(count({1, 2}), 250);
  EXPECT_EQ(InputFnFromJob(job, "train_input", {2, 2}).status().message(),
            "test.json: $.train_input: input shard 2 out of range for 2 shards");
  EXPECT_EQ(InputFnFromJob(job, "train_input", {0, 0}).status().message(),
            "test.json: $.train_input: input shard 0 out of range for 0 shards");
}

// save_checkpoints_secs (and TF's default of 600 s when neither it nor
// save_checkpoints_steps is given) on a fake clock that a user hook moves
// 1 s after every step: the checkpoint hook (run before the user's) sees
// t = step - 1 s after step `step`, so it saves at steps 11, 21, 31 and at
// the end (35). The default 600 s at 60 s per step saves at the same steps.
TEST(EstimatorTest, SaveCheckpointsSecsOnAFakeClock) {
  const std::string data = WriteData("secs.csv", 64);
  for (const auto& [secs, tick, want] :
       std::vector<std::tuple<std::optional<double>, int, std::vector<int64_t>>>{
           {10.0, 1, {11, 21, 31, 35}}, {std::nullopt, 60, {11, 21, 31, 35}},
           {2.5, 1, {4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 35}}}) {
    const std::string dir =
        absl::StrCat(TempDir(), "/secs_model_", secs.has_value() ? *secs : 0, "_", tick);
    nlohmann::json j = JobJson("linear_classifier", data, dir);
    j["run_config"].erase("save_checkpoints_steps");
    if (secs.has_value()) j["run_config"]["save_checkpoints_secs"] = *secs;
    j["run_config"]["keep_checkpoint_max"] = 0;  // keep all
    JobSpec job = ParseJob(j);
    absl::Time t = absl::UnixEpoch();
    EstimatorJobOptions extra;
    extra.now = [&t] { return t; };
    absl::StatusOr<std::unique_ptr<Estimator>> est = EstimatorFromJob(job, extra);
    ASSERT_TRUE(est.ok()) << est.status();
    TrainArgs args;
    args.max_steps = 35;
    args.hooks.push_back(std::make_shared<StepCallbackHook>([&t, tick = tick](const StepInfo&) {
      t += absl::Seconds(tick);
      return true;
    }));
    ASSERT_TRUE((*est)->Train(*InputFnFromJob(job, "train_input"), args).ok());
    absl::StatusOr<std::vector<checkpoint::CheckpointInfo>> list =
        checkpoint::ListCheckpoints(dir);
    ASSERT_TRUE(list.ok()) << list.status();
    std::vector<int64_t> steps;
    for (const checkpoint::CheckpointInfo& c : *list) steps.push_back(c.step);
    EXPECT_EQ(steps, want) << "save_checkpoints_secs "
                           << (secs.has_value() ? absl::StrCat(*secs) : "unset");
  }
}

TEST(EstimatorTest, PredictGivesTensorFlowKeysAndFilters) {
  const std::string data = WriteData("predict.csv", 100);
  Trained t = Make("dnn_classifier", data, TempDir() + "/predict_model");
  std::vector<std::map<std::string, Tensor>> got;
  auto collect = [&](const std::map<std::string, Tensor>& p) {
    got.push_back(p);
    return absl::OkStatus();
  };
  EXPECT_EQ(t.est->Predict(t.eval, collect).code(), absl::StatusCode::kFailedPrecondition);
  TrainArgs args;
  args.max_steps = 10;
  ASSERT_TRUE(t.est->Train(t.train, args).ok());
  ASSERT_TRUE(t.est->Predict(t.eval, collect).ok());
  ASSERT_EQ(got.size(), 100u);
  std::vector<std::string> keys;
  for (const auto& [k, v] : got[0]) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"all_class_ids", "all_classes", "class_ids", "classes",
                                            "logistic", "logits", "probabilities"}));
  EXPECT_EQ(got[0].at("probabilities").floats.size(), 2u);
  got.clear();
  ASSERT_TRUE(t.est->Predict(t.eval, collect, {"class_ids"}).ok());
  EXPECT_EQ(got[0].size(), 1u);
  absl::Status bad = t.est->Predict(t.eval, collect, {"class_id"});
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("'class_id' is not a prediction key"), absl::string_view::npos);
}

TEST(EstimatorTest, NanLossStopsTrainingWithAClearError) {
  const std::string data = WriteData("nan.csv", 64, /*with_nan=*/true);
  Trained t = Make("linear_classifier", data, TempDir() + "/nan_model");
  TrainArgs args;
  args.max_steps = 50;
  absl::Status st = t.est->Train(t.train, args);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("NaN loss during training"), absl::string_view::npos) << st;
}

// A hook that records what it is shown.
class RecordingHook : public TrainingHook {
 public:
  absl::Status Begin(int64_t global_step) override {
    calls.push_back(absl::StrCat("begin ", global_step));
    return absl::OkStatus();
  }
  absl::Status BeforeStep(int64_t global_step) override {
    ++before;
    return absl::OkStatus();
  }
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override {
    steps.push_back(step.global_step);
    EXPECT_TRUE(std::isfinite(step.loss));
    return absl::OkStatus();
  }
  absl::Status End(int64_t global_step) override {
    calls.push_back(absl::StrCat("end ", global_step));
    return absl::OkStatus();
  }
  std::vector<std::string> calls;
  std::vector<int64_t> steps;
  int before = 0;
};

TEST(EstimatorTest, UserHooksSeeEveryStepAndCanStopTraining) {
  const std::string data = WriteData("hooks.csv", 300);
  const std::string dir = TempDir() + "/hooks_model";
  Trained t = Make("dnn_classifier", data, dir);
  auto recording = std::make_shared<RecordingHook>();
  TrainArgs args;
  args.max_steps = 100;
  args.hooks.push_back(recording);
  args.hooks.push_back(std::make_shared<StepCallbackHook>(
      [](const StepInfo& step) { return step.global_step < 7; }));
  ASSERT_TRUE(t.est->Train(t.train, args).ok());
  EXPECT_EQ(t.est->global_step(), 7);
  EXPECT_EQ(recording->calls, (std::vector<std::string>{"begin 0", "end 7"}));
  EXPECT_EQ(recording->steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(recording->before, 7);
  // The checkpoint hook saved the last step at the end.
  absl::StatusOr<int64_t> latest = checkpoint::LatestStep(dir);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, 7);
  // Resuming: hooks begin at the restored step; steps count from there.
  recording = std::make_shared<RecordingHook>();
  TrainArgs more;
  more.steps = 3;
  more.hooks.push_back(recording);
  ASSERT_TRUE(t.est->Train(t.train, more).ok());
  EXPECT_EQ(recording->calls, (std::vector<std::string>{"begin 7", "end 10"}));
  EXPECT_EQ(t.est->global_step(), 10);
}

class RecordingListener : public CheckpointSaverListener {
 public:
  absl::Status Begin(int64_t step) override {
    calls.push_back(absl::StrCat("begin ", step));
    return absl::OkStatus();
  }
  absl::Status AfterSave(int64_t step, const std::string& prefix) override {
    calls.push_back(absl::StrCat("save ", step));
    prefixes.push_back(prefix);
    return absl::OkStatus();
  }
  absl::Status End(int64_t step) override {
    calls.push_back(absl::StrCat("end ", step));
    return absl::OkStatus();
  }
  std::vector<std::string> calls, prefixes;
};

TEST(EstimatorTest, SavingListenersAndEvaluatingAGivenCheckpoint) {
  const std::string data = WriteData("listeners.csv", 300);
  const std::string dir = TempDir() + "/listeners_model";
  Trained t = Make("linear_classifier", data, dir);
  RecordingListener listener;
  TrainArgs args;
  args.max_steps = 120;  // saves every 50 steps, and at the end
  args.saving_listeners.push_back(&listener);
  ASSERT_TRUE(t.est->Train(t.train, args).ok());
  EXPECT_EQ(listener.calls,
            (std::vector<std::string>{"begin 0", "save 50", "save 100", "save 120", "end 120"}));
  ASSERT_EQ(listener.prefixes.size(), 3u);
  EXPECT_EQ(listener.prefixes[1], dir + "/model.ckpt-100");
  // An older, still kept checkpoint (keep_checkpoint_max 2), not the latest.
  absl::StatusOr<std::map<std::string, double>> m =
      t.est->Evaluate(t.eval, 1, "old", listener.prefixes[1]);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->at("global_step"), 100);
  EXPECT_EQ(t.est->global_step(), 100);
  // A deleted one is NotFound (no fallback to another checkpoint).
  EXPECT_TRUE(absl::IsNotFound(t.est->Evaluate(t.eval, 1, "", listener.prefixes[0]).status()));
  m = t.est->Evaluate(t.eval, 1);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->at("global_step"), 120);
}

TEST(EstimatorTest, JobErrorsNameThePath) {
  nlohmann::json j = JobJson("dnn_classifier", "x.csv", TempDir() + "/bad");
  j["estimator"].erase("hidden_units");
  absl::Status st = JobError(j);
  EXPECT_NE(st.message().find("test.json: $.estimator.hidden_units: is required"),
            absl::string_view::npos)
      << st;
  j = JobJson("linear_classifier", "x.csv", TempDir() + "/bad");
  j["estimator"]["dnn_optimizer"] = "Adagrad";
  st = JobError(j);
  EXPECT_NE(st.message().find("test.json: $.estimator.dnn_optimizer: only dnn_linear_combined_"),
            absl::string_view::npos)
      << st;
  j = JobJson("linear_classifier", "x.csv", TempDir() + "/bad");
  j["estimator"]["linear_feature_columns"] = {"a", "cc"};
  st = JobError(j);
  EXPECT_NE(st.message().find("test.json: $.estimator.linear_feature_columns[1]: unknown feature "
                              "column 'cc'; did you mean 'c'?"),
            absl::string_view::npos)
      << st;
  j = JobJson("linear_classifier", "x.csv", TempDir() + "/bad");
  j["estimator"]["type"] = "custom";
  st = JobError(j);
  EXPECT_NE(st.message().find("test.json: $.estimator.type: 'custom' models are built in C++"),
            absl::string_view::npos)
      << st;
  JobSpec no_input = Job("linear_classifier", "x.csv", TempDir() + "/bad");
  no_input.eval_input.reset();
  EXPECT_EQ(InputFnFromJob(no_input, "eval_input").status().message(),
            "test.json: $.eval_input: is required");
}

}  // namespace
}  // namespace estuary
