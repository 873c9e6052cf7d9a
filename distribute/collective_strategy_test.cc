// Synchronous training (collective_strategy.h) gives the model one process
// computes with the global batch: same seed, same records, 2 replicas of
// per-replica batch B (2 workers as threads over an InProcessGroup, or 2
// local replicas of one process) == OneDeviceStrategy with batch 2B, for a
// DNN, a linear model with sparse (identity and hashed) columns and
// wide-and-deep. Plus: EndOfInput on one worker ends every worker at the
// same step with nothing applied, and the chief's state is broadcast at
// Restore (a worker that starts from other initial values, or without the
// chief's checkpoint, ends identical).
//
// Tolerance: the synchronous step sums the replicas' gradients (each
// weighted by its batch size, then divided by the global example count)
// where one process sums over its 2B examples inside Backward, so the
// floats are added in another order (~1e-7 relative per step). After
// kSteps = 12 steps of Adagrad / FTRL every variable is within 1e-5 * (1 +
// |value|) of one process's (measured: ~1e-7); the workers among
// themselves are bit-identical.
#include "distribute/collective_strategy.h"

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/collective/fault_injecting.h"
#include "common/collective/in_process.h"
#include "common/optimizer.h"
#include "estimator/data/pipeline.h"
#include "estimator/data/test_files.h"
#include "estimator/dnn_model.h"
#include "estimator/feature_column.h"
#include "estimator/head/head.h"
#include "estimator/one_device_strategy.h"
#include "estimator/premade.h"
#include "estimator/train_loop.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

constexpr int64_t kB = 8;     // per-replica batch
constexpr int kSteps = 12;    // global steps compared
constexpr int kIds = 40;      // identity column buckets
constexpr int kHashed = 16;   // hashed column buckets
constexpr uint64_t kSeed = 7;

// `rows` records "x0,x1,x2,x3,id,cat,label" (deterministic).
std::string WriteData(const std::string& name, int rows) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  std::string text = "x0,x1,x2,x3,id,cat,label\n";
  for (int r = 0; r < rows; ++r) {
    float x[4];
    for (float& v : x) v = u(rng);
    const int64_t id = static_cast<int64_t>(rng() % kIds);
    const int cat = static_cast<int>(rng() % 25);
    const bool label = x[0] - x[1] + (id % 3 == 0 ? 0.7f : -0.3f) + (cat % 2 ? 0.2f : 0) > 0;
    absl::StrAppend(&text, x[0], ",", x[1], ",", x[2], ",", x[3], ",", id, ",c", cat, ",",
                    label ? 1 : 0, "\n");
  }
  return testing::WriteTestFile(name, text);
}

// Batches of `batch` records of `path` in order; shard `index` of `count`
// keeps records index, index + count, ... (the pipeline's record sharding:
// one file).
std::unique_ptr<Pipeline> MakeInput(const std::string& path, int64_t batch, int count = 1,
                                    int index = 0) {
  InputOptions o;
  o.format = InputFormat::kCsv;
  o.files = {path};
  o.header = true;
  o.csv_columns.resize(7);
  for (int c = 0; c < 4; ++c) o.csv_columns[c].dtype = DType::kFloat;
  o.csv_columns[4].dtype = DType::kInt64;
  o.csv_columns[5].dtype = DType::kString;
  o.csv_columns[6].dtype = DType::kFloat;
  o.label_key = "label";
  o.batch_size = batch;
  o.num_shards = count;
  o.shard_index = index;
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Create(std::move(o));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

enum class Kind { kDnn, kLinear, kWideDeep };

// What one worker owns: its model, head and optimizers (as a process would).
struct Worker {
  std::unique_ptr<Model> model;
  std::unique_ptr<Head> head;
  std::map<std::string, std::unique_ptr<Optimizer>> optimizers;
};

Worker MakeWorker(Kind kind) {
  Worker s;
  std::vector<ColumnPtr> numeric;
  for (int c = 0; c < 4; ++c) numeric.push_back(*NumericColumn(absl::StrCat("x", c)));
  ColumnPtr id = *IdentityColumn("id", kIds);
  ColumnPtr cat = *HashBucketColumn("cat", kHashed);
  OptimizerConfig adagrad;
  adagrad.type = "adagrad";
  adagrad.learning_rate = 0.1;
  OptimizerConfig ftrl;
  ftrl.type = "ftrl";
  ftrl.learning_rate = 0.2;
  if (kind == Kind::kLinear) {
    std::vector<ColumnPtr> columns = numeric;
    columns.push_back(id);
    columns.push_back(cat);
    s.model = *MakeLinearModel(std::move(columns), 1);
    s.optimizers[""] = *MakeOptimizer(ftrl);
  } else {
    DnnModelOptions options;
    options.dnn_columns = numeric;
    options.dnn_columns.push_back(*EmbeddingColumn(id, 3));
    if (kind == Kind::kWideDeep) options.linear_columns = {numeric[0], id, cat};
    options.mlp.hidden_units = {8, 4};
    options.mlp.logits_dimension = 1;
    // No dropout (its random draws differ per replica) and no batch norm
    // (per-replica batch statistics differ from the global batch's, as in
    // TF without sync batch norm).
    s.model = *MakeDnnModel(std::move(options));
    if (kind == Kind::kWideDeep) {
      s.optimizers["dnn"] = *MakeOptimizer(adagrad);
      s.optimizers["linear"] = *MakeOptimizer(ftrl);
    } else {
      s.optimizers[""] = *MakeOptimizer(adagrad);
    }
  }
  s.head = *CreateClassifierHead(HeadOptions{});
  return s;
}

class LossRecorder : public TrainingHook {
 public:
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override {
    losses.push_back(step.loss);
    return absl::OkStatus();
  }
  std::vector<double> losses;
};

struct Result {
  absl::Status status;
  Variables vars;
  int64_t global_step = -1;
  std::vector<double> losses;
  Variables vars_after_restore;
  std::vector<int64_t> calls_after_step;  // with a fault-injecting communicator
};

std::string Dir(const std::string& tag) { return absl::StrCat(testing::TempDir(), "/", tag); }

// One process, batch `batch`, until the input runs out.
Result TrainOneProcess(Kind kind, const std::string& path, int64_t batch, const std::string& dir) {
  Worker s = MakeWorker(kind);
  OneDeviceStrategyOptions options;
  options.checkpoint.model_dir = dir;
  options.checkpoint.seed = kSeed;
  OneDeviceStrategy strategy(s.model.get(), &s.optimizers, options);
  Result r;
  r.status = strategy.Restore();
  if (!r.status.ok()) return r;
  std::unique_ptr<Pipeline> input = MakeInput(path, batch);
  LossRecorder losses;
  std::mt19937_64 rng(1);
  r.status = RunTrainLoop(*s.model, *s.head, input.get(), &strategy, {&losses}, &rng);
  r.vars = strategy.variables();
  r.global_step = strategy.global_step();
  r.losses = losses.losses;
  return r;
}

struct WorkerSpec {
  std::string path;  // its own data file; empty: shard w of the common one
  uint64_t seed = kSeed;
  // Wraps the worker's communicator in a FaultInjectingCommunicator.
  std::optional<FaultInjectingOptions> fault;
  // CollectiveStrategyOptions::overlap_backward.
  bool overlap = false;
};

// Records how many collective calls the worker's communicator had made
// after each step.
class CallRecorder : public TrainingHook {
 public:
  explicit CallRecorder(const FaultInjectingCommunicator* comm) : comm_(comm) {}
  absl::Status AfterStep(const StepInfo& step, RunContext* run) override {
    calls.push_back(comm_->calls());
    return absl::OkStatus();
  }
  std::vector<int64_t> calls;

 private:
  const FaultInjectingCommunicator* const comm_;
};

// `workers` workers as threads (each its own Model, optimizers, strategy
// and input), `replicas` local replicas each, per-replica batch kB. One
// worker: no communicator (mirrored / central_storage).
std::vector<Result> TrainCollective(Kind kind, const std::string& path, int workers, int replicas,
                                    const std::string& tag,
                                    std::vector<WorkerSpec> specs = {}) {
  specs.resize(workers);
  std::vector<std::unique_ptr<Communicator>> comms;
  if (workers > 1) {
    InProcessGroupOptions group;
    group.size = workers;
    absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> made =
        CreateInProcessGroup(group);
    EXPECT_TRUE(made.ok()) << made.status();
    if (!made.ok()) return {};
    comms = *std::move(made);
    for (int w = 0; w < workers; ++w) {
      if (w < static_cast<int>(specs.size()) && specs[w].fault.has_value()) {
        comms[w] = std::make_unique<FaultInjectingCommunicator>(std::move(comms[w]),
                                                                *specs[w].fault);
      }
    }
  }
  std::vector<Result> results(workers);
  auto run = [&](int w) {
    Result& r = results[w];
    Worker s = MakeWorker(kind);
    CollectiveStrategyOptions options;
    options.local.checkpoint.model_dir = Dir(tag);  // shared, as a cluster's
    options.local.checkpoint.seed = specs[w].seed;
    options.local_replicas = replicas;
    options.communicator = workers > 1 ? comms[w].get() : nullptr;
    options.collective_timeout = absl::Seconds(60);
    options.bucket_bytes = 64;  // several buckets even for these small models
    options.overlap_backward = specs[w].overlap;
    absl::StatusOr<std::unique_ptr<Strategy>> strategy =
        MakeCollectiveStrategy(s.model.get(), &s.optimizers, options);
    if (!strategy.ok()) {
      r.status = strategy.status();
      return;
    }
    r.status = (*strategy)->Restore();
    if (!r.status.ok()) return;
    r.vars_after_restore = (*strategy)->variables();
    std::unique_ptr<Pipeline> input = specs[w].path.empty()
                                          ? MakeInput(path, kB, workers, w)
                                          : MakeInput(specs[w].path, kB);
    LossRecorder losses;
    std::vector<TrainingHook*> hooks = {&losses};
    std::optional<CallRecorder> calls;
    if (specs[w].fault.has_value()) {
      calls.emplace(static_cast<const FaultInjectingCommunicator*>(comms[w].get()));
      hooks.push_back(&*calls);
    }
    std::mt19937_64 rng(1 + w);
    r.status = RunTrainLoop(*s.model, *s.head, input.get(), strategy->get(), hooks, &rng);
    if (calls.has_value()) r.calls_after_step = calls->calls;
    r.vars = (*strategy)->variables();
    r.global_step = (*strategy)->global_step();
    r.losses = losses.losses;
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) threads.emplace_back(run, w);
  for (std::thread& t : threads) t.join();
  return results;
}

void ExpectBitIdentical(const Variables& a, const Variables& b) {
  ASSERT_EQ(a.floats.size(), b.floats.size());
  for (const auto& [name, v] : a.floats) {
    ASSERT_EQ(b.floats.count(name), 1u) << name;
    const RowMatrixXf& w = b.floats.at(name);
    ASSERT_EQ(v.size(), w.size()) << name;
    EXPECT_EQ(std::memcmp(v.data(), w.data(), sizeof(float) * v.size()), 0) << name;
  }
}

// Every variable within 1e-5 * (1 + |value|) of `want`; returns the
// largest relative difference.
double ExpectClose(const Variables& want, const Variables& got) {
  double worst = 0;
  EXPECT_EQ(want.floats.size(), got.floats.size());
  for (const auto& [name, v] : want.floats) {
    auto it = got.floats.find(name);
    if (it == got.floats.end()) {
      ADD_FAILURE() << "missing " << name;
      continue;
    }
    const RowMatrixXf& w = it->second;
    EXPECT_EQ(v.rows(), w.rows()) << name;
    EXPECT_EQ(v.cols(), w.cols()) << name;
    if (v.size() != w.size()) continue;
    for (int64_t i = 0; i < v.size(); ++i) {
      const double d = std::abs(double{v.data()[i]} - w.data()[i]) / (1 + std::abs(v.data()[i]));
      worst = std::max(worst, d);
      if (d > 1e-5) {
        ADD_FAILURE() << name << "[" << i << "]: " << v.data()[i] << " vs " << w.data()[i];
        return worst;
      }
    }
  }
  return worst;
}

void ExpectLossesClose(const std::vector<double>& want, const std::vector<double>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(want[i], got[i], 1e-5 * (1 + want[i])) << i;
}

// The trained variables moved (so the comparison says something).
void ExpectTrained(const Result& initial, const Result& trained) {
  bool moved = false;
  for (const auto& [name, v] : trained.vars.floats) {
    if (!(v == initial.vars_after_restore.floats.at(name))) moved = true;
  }
  EXPECT_TRUE(moved);
}

class SameAsOneProcessTest : public ::testing::TestWithParam<Kind> {};

TEST_P(SameAsOneProcessTest, TwoWorkersOfBatchBTrainAsOneProcessOfBatch2B) {
  const std::string tag = absl::StrCat("workers", static_cast<int>(GetParam()));
  const std::string path = WriteData(tag + ".csv", kSteps * 2 * kB);
  Result one = TrainOneProcess(GetParam(), path, 2 * kB, Dir(tag + "-one"));
  ASSERT_TRUE(one.status.ok()) << one.status;
  ASSERT_EQ(one.global_step, kSteps);
  // Worker 1 starts from other initial values: the chief's are broadcast.
  std::vector<Result> workers =
      TrainCollective(GetParam(), path, 2, 1, tag + "-sync", {{"", kSeed}, {"", kSeed + 1}});
  ASSERT_EQ(workers.size(), 2u);
  for (const Result& w : workers) {
    ASSERT_TRUE(w.status.ok()) << w.status;
    EXPECT_EQ(w.global_step, kSteps);
  }
  ExpectBitIdentical(workers[0].vars_after_restore, workers[1].vars_after_restore);
  ExpectBitIdentical(workers[0].vars, workers[1].vars);
  EXPECT_EQ(workers[0].losses, workers[1].losses);
  const double worst = ExpectClose(one.vars, workers[0].vars);
  std::printf("largest relative difference from one process: %.3g\n", worst);
  ExpectLossesClose(one.losses, workers[0].losses);
  ExpectTrained(workers[0], workers[0]);
}

TEST_P(SameAsOneProcessTest, MirroredTwoReplicasOfBatchBTrainAsOneProcessOfBatch2B) {
  const std::string tag = absl::StrCat("mirrored", static_cast<int>(GetParam()));
  const std::string path = WriteData(tag + ".csv", kSteps * 2 * kB);
  Result one = TrainOneProcess(GetParam(), path, 2 * kB, Dir(tag + "-one"));
  ASSERT_TRUE(one.status.ok()) << one.status;
  // Replica 0 reads batch 2k, replica 1 batch 2k + 1: together one
  // process's batch k of 2B.
  std::vector<Result> mirrored = TrainCollective(GetParam(), path, 1, 2, tag + "-sync");
  ASSERT_EQ(mirrored.size(), 1u);
  ASSERT_TRUE(mirrored[0].status.ok()) << mirrored[0].status;
  EXPECT_EQ(mirrored[0].global_step, kSteps);
  const double worst = ExpectClose(one.vars, mirrored[0].vars);
  std::printf("largest relative difference from one process: %.3g\n", worst);
  ExpectLossesClose(one.losses, mirrored[0].losses);
  ExpectTrained(mirrored[0], mirrored[0]);
}

// Two workers of two replicas each: 4 replicas in sync, global batch 4B.
TEST_P(SameAsOneProcessTest, TwoWorkersOfTwoReplicasTrainAsOneProcessOfBatch4B) {
  const std::string tag = absl::StrCat("both", static_cast<int>(GetParam()));
  const std::string path = WriteData(tag + ".csv", kSteps * 4 * kB);
  Result one = TrainOneProcess(GetParam(), path, 4 * kB, Dir(tag + "-one"));
  ASSERT_TRUE(one.status.ok()) << one.status;
  // Worker w reads records w, w + 2, ...; its replica 0 batch 2k and
  // replica 1 batch 2k + 1 of those: over both workers, records
  // [4Bk, 4B(k + 1)), one process's batch k.
  std::vector<Result> workers = TrainCollective(GetParam(), path, 2, 2, tag + "-sync");
  ASSERT_EQ(workers.size(), 2u);
  for (const Result& w : workers) {
    ASSERT_TRUE(w.status.ok()) << w.status;
    EXPECT_EQ(w.global_step, kSteps);
  }
  ExpectBitIdentical(workers[0].vars, workers[1].vars);
  ExpectClose(one.vars, workers[0].vars);
  ExpectLossesClose(one.losses, workers[0].losses);
}

// Overlap of the all-reduces with Backward: the same sums in the same
// order, so the same bits as without it (2 workers x 2 replicas, several
// buckets).
TEST_P(SameAsOneProcessTest, OverlapWithBackwardGivesTheSameBits) {
  const std::string tag = absl::StrCat("overlap", static_cast<int>(GetParam()));
  const std::string path = WriteData(tag + ".csv", kSteps * 4 * kB);
  std::vector<Result> plain = TrainCollective(GetParam(), path, 2, 2, tag + "-plain");
  std::vector<WorkerSpec> overlap(2);
  for (WorkerSpec& spec : overlap) spec.overlap = true;
  std::vector<Result> overlapped = TrainCollective(GetParam(), path, 2, 2, tag + "-on", overlap);
  ASSERT_EQ(plain.size(), 2u);
  ASSERT_EQ(overlapped.size(), 2u);
  for (int w = 0; w < 2; ++w) {
    ASSERT_TRUE(plain[w].status.ok()) << plain[w].status;
    ASSERT_TRUE(overlapped[w].status.ok()) << overlapped[w].status;
    EXPECT_EQ(overlapped[w].global_step, kSteps);
    ExpectBitIdentical(plain[w].vars, overlapped[w].vars);
    EXPECT_EQ(plain[w].losses, overlapped[w].losses);
  }
  ExpectTrained(overlapped[0], overlapped[0]);
}

INSTANTIATE_TEST_SUITE_P(Models, SameAsOneProcessTest,
                         ::testing::Values(Kind::kDnn, Kind::kLinear, Kind::kWideDeep),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           switch (info.param) {
                             case Kind::kDnn:
                               return "Dnn";
                             case Kind::kLinear:
                               return "LinearSparse";
                             case Kind::kWideDeep:
                               return "WideAndDeep";
                           }
                           return "";
                         });

// Worker 0 has 5 batches, worker 1 only 3: both end after step 3, with OK,
// identical variables, and step 4 applied nowhere.
void ExpectInputEndingOnOneWorkerEndsBoth(Kind kind, const std::string& tag, bool overlap) {
  const std::string five = WriteData("five-" + tag + ".csv", 5 * kB);
  const std::string three = WriteData("three-" + tag + ".csv", 3 * kB);
  std::vector<Result> workers = TrainCollective(
      kind, "", 2, 1, tag, {{five, kSeed, {}, overlap}, {three, kSeed, {}, overlap}});
  ASSERT_EQ(workers.size(), 2u);
  for (const Result& w : workers) {
    ASSERT_TRUE(w.status.ok()) << w.status;
    EXPECT_EQ(w.global_step, 3);
    EXPECT_EQ(w.losses.size(), 3u);
  }
  ExpectBitIdentical(workers[0].vars, workers[1].vars);
}

TEST(CollectiveStrategyTest, InputEndingOnOneWorkerEndsBothAtTheSameStep) {
  ExpectInputEndingOnOneWorkerEndsBoth(Kind::kWideDeep, "end", /*overlap=*/false);
}

TEST(CollectiveStrategyTest, WithOverlapInputEndingOnOneWorkerEndsBothAtTheSameStep) {
  ExpectInputEndingOnOneWorkerEndsBoth(Kind::kDnn, "end-overlap", /*overlap=*/true);
}

// The DNN tells the observer each layer's gradients as Backward finishes
// them, top layer first (the order of the strategy's buckets), then Done.
TEST(CollectiveStrategyTest, DnnBackwardReportsGradientsTopLayerFirst) {
  class Recorder : public GradientObserver {
   public:
    void Loss(int replica, double loss, int64_t batch_size) override {
      events.push_back(absl::StrCat("loss ", batch_size));
    }
    void Final(int replica, const std::string& variable, const RowMatrixXf& grad) override {
      events.push_back(variable);
      data[variable] = grad.data();
    }
    void Done(int replica, const Gradients& grads) override {
      events.push_back("done");
      for (const auto& [name, g] : grads.dense) {
        if (data.count(name) > 0) {
          EXPECT_EQ(data[name], g.data()) << name << " moved";
        }
      }
    }
    std::vector<std::string> events;
    std::map<std::string, const float*> data;
  };
  Worker s = MakeWorker(Kind::kDnn);
  Variables vars;
  ASSERT_TRUE(s.model->InitVariables(kSeed, &vars).ok());
  const std::string path = WriteData("observer.csv", kB);
  std::unique_ptr<Pipeline> input = MakeInput(path, kB);
  absl::StatusOr<std::optional<Batch>> batch = input->Next();
  ASSERT_TRUE(batch.ok() && batch->has_value());
  std::mt19937_64 rng(1);
  Gradients grads;
  Recorder recorder;
  ASSERT_TRUE(ComputeGradients(*s.model, *s.head, **batch, vars, 0, &rng, &grads, nullptr,
                               &recorder, 0)
                  .ok());
  const std::vector<std::string> want = {
      absl::StrCat("loss ", kB),      "dnn/logits/kernel",          "dnn/logits/bias",
      "dnn/hiddenlayer_1/kernel",     "dnn/hiddenlayer_1/bias",     "dnn/hiddenlayer_0/kernel",
      "dnn/hiddenlayer_0/bias",       "done"};
  EXPECT_EQ(recorder.events, want);
  EXPECT_FALSE(static_cast<bool>(grads.on_final));  // not left behind
}

TEST(CollectiveStrategyTest, WithOverlapAFailedCollectiveFailsBothWorkersWithNothingApplied) {
  const std::string path = WriteData("fault-overlap.csv", kSteps * 2 * kB);
  FaultInjectingOptions none;
  std::vector<Result> dry = TrainCollective(Kind::kDnn, path, 2, 1, "fault-overlap-dry",
                                            {{"", kSeed, {}, true}, {"", kSeed, none, true}});
  ASSERT_EQ(dry.size(), 2u);
  ASSERT_TRUE(dry[1].status.ok()) << dry[1].status;
  ASSERT_GE(dry[1].calls_after_step.size(), 3u);
  const int64_t begin = dry[1].calls_after_step[1], end = dry[1].calls_after_step[2];
  ASSERT_GE(end - begin, 2);  // several buckets
  for (int64_t call : {begin, end - 1}) {
    SCOPED_TRACE(call);
    FaultInjectingOptions fault;
    fault.call = call;
    fault.failure = absl::UnavailableError("injected: worker 1 died");
    std::vector<Result> workers =
        TrainCollective(Kind::kDnn, path, 2, 1, absl::StrCat("fault-overlap", call),
                        {{"", kSeed, {}, true}, {"", kSeed, fault, true}});
    ASSERT_EQ(workers.size(), 2u);
    EXPECT_TRUE(absl::IsUnavailable(workers[1].status)) << workers[1].status;
    EXPECT_FALSE(workers[0].status.ok());
    for (const Result& w : workers) EXPECT_EQ(w.global_step, 2);
    ExpectBitIdentical(workers[0].vars, workers[1].vars);
  }
}

TEST(CollectiveStrategyTest, AFailedCollectiveFailsBothWorkersAtTheSameStepWithNothingApplied) {
  const std::string path = WriteData("fault.csv", kSteps * 2 * kB);
  // A dry run counts worker 1's calls per step ...
  FaultInjectingOptions none;
  std::vector<Result> dry =
      TrainCollective(Kind::kWideDeep, path, 2, 1, "fault-dry", {{}, {"", kSeed, none}});
  ASSERT_EQ(dry.size(), 2u);
  ASSERT_TRUE(dry[1].status.ok()) << dry[1].status;
  ASSERT_GE(dry[1].calls_after_step.size(), 3u);
  // ... for every call of step 3 (global_step 2 -> 3): the first bucket,
  // a later one, the sparse AllGather.
  const int64_t begin = dry[1].calls_after_step[1], end = dry[1].calls_after_step[2];
  ASSERT_GE(end - begin, 3);  // buckets + AllGather
  for (int64_t call = begin; call < end; ++call) {
    SCOPED_TRACE(call);
    FaultInjectingOptions fault;
    fault.call = call;
    fault.failure = absl::UnavailableError("injected: worker 1 died");
    std::vector<Result> workers = TrainCollective(Kind::kWideDeep, path, 2, 1,
                                                  absl::StrCat("fault", call),
                                                  {{}, {"", kSeed, fault}});
    ASSERT_EQ(workers.size(), 2u);
    EXPECT_TRUE(absl::IsUnavailable(workers[1].status)) << workers[1].status;
    EXPECT_FALSE(workers[0].status.ok());
    for (const Result& w : workers) EXPECT_EQ(w.global_step, 2);
    ExpectBitIdentical(workers[0].vars, workers[1].vars);
  }
}

TEST(CollectiveStrategyTest, MirroredDropsAPartialStep) {
  // 5 batches for 2 replicas: 2 steps; the fifth batch is dropped.
  const std::string path = WriteData("partial.csv", 5 * kB);
  std::vector<Result> mirrored = TrainCollective(Kind::kLinear, path, 1, 2, "partial");
  ASSERT_EQ(mirrored.size(), 1u);
  ASSERT_TRUE(mirrored[0].status.ok()) << mirrored[0].status;
  EXPECT_EQ(mirrored[0].global_step, 2);
}

TEST(CollectiveStrategyTest, RestoreBroadcastsTheChiefsCheckpoint) {
  // One process trains 3 steps of 2B and saves; then 2 workers resume from
  // that model_dir (worker 1 with other initial values and, in a cluster,
  // it would not even read the checkpoint) and train 3 more: the same
  // model as one process training 6 steps.
  const std::string path = WriteData("resume.csv", 6 * 2 * kB);
  const std::string first = WriteData("resume-first.csv", 3 * 2 * kB);
  const std::string dir = Dir("resume-sync");
  {
    Worker s = MakeWorker(Kind::kWideDeep);
    OneDeviceStrategyOptions options;
    options.checkpoint.model_dir = dir;
    options.checkpoint.seed = kSeed;
    OneDeviceStrategy strategy(s.model.get(), &s.optimizers, options);
    ASSERT_TRUE(strategy.Restore().ok());
    std::unique_ptr<Pipeline> input = MakeInput(first, 2 * kB);
    std::mt19937_64 rng(1);
    ASSERT_TRUE(RunTrainLoop(*s.model, *s.head, input.get(), &strategy, {}, &rng).ok());
    ASSERT_EQ(strategy.global_step(), 3);
    ASSERT_TRUE(strategy.SaveCheckpoint().ok());
  }
  // The remaining records, 3 steps' worth, split by record between workers.
  std::string rest = "x0,x1,x2,x3,id,cat,label\n";
  {
    std::FILE* f = std::fopen(path.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char line[256];
    int n = -1;
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      if (n++ >= 3 * 2 * kB) rest += line;
    }
    std::fclose(f);
  }
  const std::string rest_path = testing::WriteTestFile("resume-rest.csv", rest);
  std::vector<Result> workers = TrainCollective(Kind::kWideDeep, rest_path, 2, 1, "resume-sync",
                                                {{"", kSeed}, {"", kSeed + 5}});
  ASSERT_EQ(workers.size(), 2u);
  for (const Result& w : workers) {
    ASSERT_TRUE(w.status.ok()) << w.status;
    EXPECT_EQ(w.global_step, 6);
  }
  ExpectBitIdentical(workers[0].vars_after_restore, workers[1].vars_after_restore);
  ExpectBitIdentical(workers[0].vars, workers[1].vars);
  // Slots came along too: the continuation matches one process.
  Result one = TrainOneProcess(Kind::kWideDeep, path, 2 * kB, Dir("resume-one"));
  ASSERT_TRUE(one.status.ok()) << one.status;
  EXPECT_EQ(one.global_step, 6);
  ExpectClose(one.vars, workers[0].vars);
}

TEST(CollectiveStrategyTest, RejectsBadOptionsAndReplicaCounts) {
  Worker s = MakeWorker(Kind::kLinear);
  CollectiveStrategyOptions options;
  options.local_replicas = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(
      MakeCollectiveStrategy(s.model.get(), &s.optimizers, options).status()));
  options.local_replicas = 2;
  options.local.checkpoint.model_dir = Dir("reject");
  absl::StatusOr<std::unique_ptr<Strategy>> strategy =
      MakeCollectiveStrategy(s.model.get(), &s.optimizers, options);
  ASSERT_TRUE(strategy.ok());
  EXPECT_EQ((*strategy)->num_local_replicas(), 2);
  ASSERT_TRUE((*strategy)->Restore().ok());
  std::vector<ReplicaGradients> one(1);
  EXPECT_TRUE(absl::IsInvalidArgument((*strategy)->ApplyGradients(&one).status()));
  EXPECT_EQ((*strategy)->global_step(), 0);
}

}  // namespace
}  // namespace estuary
