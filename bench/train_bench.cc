// train_bench: the training step of Estuary's Estimator pieces, checked and
// timed: a fixed number of steps from given initial weights on batches in a
// fixed order, the loss of each step printed, examples per second measured.
//
//   train_bench --model dnn|sparse --data DIR --threads N [--input memory|csv]
//               [--init DIR/init_MODEL] [--check_steps K] [--steps N | --seconds S]
//               [--metrics]
//
// bench/train_bench.py writes the data once (numpy; the same files feed the
// PyTorch and TF 2.15 peers) and compares the sides' losses. Files in DIR:
//   dnn:    dnn_x.f32 [N, 64], dnn_y.f32 [N] (raw little-endian), and
//           dnn.csv (x00..x63,label: the same rows as text)
//   sparse: sparse_ids.i64 [N, 26] (ids in [0, 2^20)), sparse_y.f32 [N],
//           and sparse.csv (f00..f25,label: the same rows as text)
//   init_MODEL/<variable name, '/' -> '.'>.f32: initial values, row-major
//           (TF's layout: a kernel is [in, out]).
// Models (binary labels, one logit, sigmoid cross-entropy: what
// DNNClassifier / LinearClassifier with n_classes=2 build):
//   dnn:    numeric_column("x", [64]) (--input csv: numeric columns
//           x00..x63) -> MakeDnnModel hidden [256, 128] relu -> 1 logit;
//           Adagrad(0.05 * --lr_scale); batch 256.
//   sparse: categorical_column_with_identity("ids", 2^20) fed a SparseTensor
//           of 26 ids per example -> MakeLinearModel (sum of weight rows +
//           bias); Adagrad(0.05 * --lr_scale); batch 256. --input csv: one
//           identity column of 2^20 buckets per field, f00..f25 (26
//           tables: a different model, so start it from zeros, no --init).
// Input: --input memory cuts the arrays into Batches before any step (batch
// i = rows [256 i, 256 i + 256), wrapping around); --input csv reads
// MODEL.csv through the Estimator's Pipeline (CSV reader + parser, no
// shuffle, repeated; --threads > 1: that many parser threads, prefetch
// 2 * threads) inside the timed loop: the same batches in the same order.
// Initial weights: --init's files are saved as a checkpoint and
// warm-started from (tf.estimator.WarmStartSettings); without --init, the
// model's own initialisers (seed 42).
// The step is Estimator::Train's, without summaries and checkpoints: the
// shared step body (ComputeGradients: Model::Forward, Head::Loss, NaN check,
// Model::Backward) and OneDeviceStrategy's ApplyGradients
// (Optimizer::ApplyDense / ApplySparse). Threads: --threads GEMM threads
// (DnnModelOptions.num_threads) and, with --input csv, parser threads.
// The first --check_steps steps are untimed (warm-up); then --steps steps
// (or, with --steps 0, steps until --seconds passed) are timed. Prints
//   loss_at_step S L     for S = 1..check_steps and the last step
//   examples_per_sec N
//   cpu_seconds S        (of the timed steps, every thread of the process)
//   steps N              (timed)
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/checkpoint.h"
#include "common/flags.h"
#include "common/metrics.h"
#include "common/optimizer.h"
#include "common/tensor.h"
#include "estimator/data/pipeline.h"
#include "estimator/dnn_model.h"
#include "estimator/feature_column.h"
#include "estimator/head/head.h"
#include "estimator/metrics_hook.h"
#include "estimator/model.h"
#include "estimator/one_device_strategy.h"
#include "estimator/premade.h"
#include "estimator/train_loop.h"

namespace estuary {
namespace {

constexpr int64_t kBatch = 256;
constexpr int64_t kDenseDim = 64;
constexpr int64_t kSparseFields = 26;
constexpr int64_t kBuckets = int64_t{1} << 20;

template <typename T>
absl::StatusOr<std::vector<T>> ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat("can not read ", path));
  const std::streamsize bytes = in.tellg();
  in.seekg(0);
  std::vector<T> v(bytes / sizeof(T));
  in.read(reinterpret_cast<char*>(v.data()), bytes);
  return v;
}

// In-memory batches: features + labels, built before any step.
absl::StatusOr<std::vector<Batch>> LoadBatches(const std::string& model, const std::string& dir) {
  std::vector<Batch> batches;
  absl::StatusOr<std::vector<float>> y = ReadRaw<float>(dir + "/" + model + "_y.f32");
  if (!y.ok()) return y.status();
  const int64_t n = static_cast<int64_t>(y->size());
  if (model == "dnn") {
    absl::StatusOr<std::vector<float>> x = ReadRaw<float>(dir + "/dnn_x.f32");
    if (!x.ok()) return x.status();
    if (static_cast<int64_t>(x->size()) != n * kDenseDim) {
      return absl::InvalidArgumentError("dnn_x.f32 and dnn_y.f32 disagree");
    }
    for (int64_t b = 0; b + kBatch <= n; b += kBatch) {
      Batch batch;
      batch.batch_size = kBatch;
      batch.features["x"] = Tensor::Floats(
          {kBatch, kDenseDim},
          std::vector<float>(x->begin() + b * kDenseDim, x->begin() + (b + kBatch) * kDenseDim));
      batch.labels = Tensor::Floats({kBatch}, std::vector<float>(y->begin() + b, y->begin() + b + kBatch));
      batch.has_labels = true;
      batches.push_back(std::move(batch));
    }
  } else {
    absl::StatusOr<std::vector<int64_t>> ids = ReadRaw<int64_t>(dir + "/sparse_ids.i64");
    if (!ids.ok()) return ids.status();
    if (static_cast<int64_t>(ids->size()) != n * kSparseFields) {
      return absl::InvalidArgumentError("sparse_ids.i64 and sparse_y.f32 disagree");
    }
    for (int64_t b = 0; b + kBatch <= n; b += kBatch) {
      Batch batch;
      batch.batch_size = kBatch;
      SparseTensor st;
      st.dtype = DType::kInt64;
      st.batch_size = kBatch;
      st.max_len = kSparseFields;
      for (int64_t r = 0; r < kBatch; ++r) {
        for (int64_t c = 0; c < kSparseFields; ++c) {
          st.rows.push_back(r);
          st.cols.push_back(c);
          st.ints.push_back((*ids)[(b + r) * kSparseFields + c]);
        }
      }
      batch.features["ids"] = std::move(st);
      batch.labels = Tensor::Floats({kBatch}, std::vector<float>(y->begin() + b, y->begin() + b + kBatch));
      batch.has_labels = true;
      batches.push_back(std::move(batch));
    }
  }
  if (batches.empty()) return absl::InvalidArgumentError("no full batch in the data");
  return batches;
}

// The feature columns of MODEL.csv: dnn x00..x63 (zero-padded, so sorting
// the columns by name, as DenseFeatures and the linear model do, keeps their
// order), sparse f00..f25; then the label.
std::vector<std::string> CsvFeatureNames(const std::string& model) {
  std::vector<std::string> names;
  const bool dnn = model == "dnn";
  for (int64_t i = 0; i < (dnn ? kDenseDim : kSparseFields); ++i) {
    names.push_back(absl::StrFormat("%s%02d", dnn ? "x" : "f", i));
  }
  return names;
}

// The Estimator's input pipeline over DIR/MODEL.csv, repeated, in file order.
absl::StatusOr<std::unique_ptr<Pipeline>> MakeCsvPipeline(const std::string& model,
                                                          const std::string& dir, int threads) {
  InputOptions options;
  options.format = InputFormat::kCsv;
  options.files = {absl::StrCat(dir, "/", model, ".csv")};
  options.batch_size = kBatch;
  options.num_epochs = -1;
  options.drop_remainder = true;
  options.num_parallel_readers = 1;
  options.prefetch_batches = threads > 1 ? 2 * threads : 0;
  options.num_parse_threads = threads > 1 ? threads : 0;
  for (const std::string& name : CsvFeatureNames(model)) {
    CsvColumn c;
    c.name = name;
    c.dtype = model == "dnn" ? DType::kFloat : DType::kInt64;
    options.csv_columns.push_back(c);
    options.column_names.push_back(name);
  }
  CsvColumn label;
  label.name = "label";
  label.dtype = DType::kFloat;
  options.csv_columns.push_back(label);
  options.column_names.push_back(label.name);
  options.label_key = "label";
  return Pipeline::Create(std::move(options));
}

// Writes the initial values in init_dir (one raw float32 file per variable,
// '/' in its name replaced by '.') as checkpoint 0 of ckpt_dir. Every float
// variable of the model must have its file, of exactly its size.
absl::Status SaveInitialValues(const Model& model, const std::string& init_dir,
                               const std::string& ckpt_dir) {
  Variables vars;
  if (absl::Status s = model.InitVariables(42, &vars); !s.ok()) return s;
  for (auto& [name, value] : vars.floats) {
    const std::string path = absl::StrCat(init_dir, "/", absl::StrReplaceAll(name, {{"/", "."}}), ".f32");
    absl::StatusOr<std::vector<float>> v = ReadRaw<float>(path);
    if (!v.ok()) return v.status();
    if (static_cast<int64_t>(v->size()) != value.size()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", v->size(), " floats, variable '",
                                                     name, "' has ", value.size()));
    }
    std::copy(v->begin(), v->end(), value.data());
  }
  absl::StatusOr<std::string> prefix = checkpoint::Save(ckpt_dir, 0, vars);
  return prefix.ok() ? absl::OkStatus() : prefix.status();
}

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "train_bench: error: %s\n", std::string(st.message()).c_str());
  return 2;
}

int Run(int argc, char** argv) {
  std::string model_name = "dnn", dir = "/tmp/estuary/train_bench", input = "memory", init_dir;
  int threads = 1, check_steps = 20, steps = 0;
  double seconds = 3.0, lr_scale = 1.0;
  FlagSet flags("train_bench --model dnn|sparse --data DIR --threads N",
                "Losses and examples/s of the Estimator's training step.");
  flags.String("model", &model_name, "dnn (64-256-128-1) or sparse (linear over 2^20 buckets).");
  flags.String("data", &dir, "Directory with the files written by bench/train_bench.py.");
  flags.String("input", &input, "memory (pre-cut batches) or csv (dnn.csv through the Pipeline).");
  flags.String("init", &init_dir, "Directory of initial values (<name>.f32); empty: seed 42.");
  flags.Int("threads", &threads, "GEMM threads (DnnModelOptions.num_threads) and CSV parser threads.");
  flags.Int("check_steps", &check_steps, "Untimed steps first; the loss of each is printed.");
  flags.Int("steps", &steps, "Timed steps; 0: until --seconds passed.");
  flags.Double("seconds", &seconds, "With --steps 0: timed steps run at least this long.");
  flags.Double("lr_scale", &lr_scale, "Multiplies the learning rate (the harness's self-test).");
  bool with_metrics = false;
  flags.Bool("metrics", &with_metrics,
             "Time each step's phases as RunTrainLoop does and feed a MetricsHook (its "
             "overhead: bench/RESULTS.md, \"Metrics overhead\").");
  absl::Status st = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return 0;
  }
  if (!st.ok()) return Fail(st);
  if (model_name != "dnn" && model_name != "sparse") {
    return Fail(absl::InvalidArgumentError("--model must be dnn or sparse"));
  }
  if (input != "memory" && input != "csv") {
    return Fail(absl::InvalidArgumentError("--input must be memory or csv"));
  }

  std::vector<Batch> batches;
  std::unique_ptr<Pipeline> pipeline;
  if (input == "memory") {
    absl::StatusOr<std::vector<Batch>> b = LoadBatches(model_name, dir);
    if (!b.ok()) return Fail(b.status());
    batches = *std::move(b);
  }

  std::unique_ptr<Model> model;
  if (model_name == "dnn") {
    std::vector<ColumnPtr> columns;
    for (const std::string& key :
         input == "csv" ? CsvFeatureNames("dnn") : std::vector<std::string>{"x"}) {
      absl::StatusOr<ColumnPtr> x =
          NumericColumn(key, {input == "csv" ? int64_t{1} : kDenseDim});
      if (!x.ok()) return Fail(x.status());
      columns.push_back(*x);
    }
    DnnModelOptions options;
    options.dnn_columns = std::move(columns);
    options.mlp.hidden_units = {256, 128};
    options.mlp.logits_dimension = 1;
    options.num_threads = threads;
    absl::StatusOr<std::unique_ptr<Model>> m = MakeDnnModel(std::move(options));
    if (!m.ok()) return Fail(m.status());
    model = std::move(*m);
  } else {
    std::vector<ColumnPtr> columns;
    for (const std::string& key :
         input == "csv" ? CsvFeatureNames("sparse") : std::vector<std::string>{"ids"}) {
      absl::StatusOr<ColumnPtr> ids = IdentityColumn(key, kBuckets);
      if (!ids.ok()) return Fail(ids.status());
      columns.push_back(*ids);
    }
    absl::StatusOr<std::unique_ptr<Model>> m = MakeLinearModel(std::move(columns), 1);
    if (!m.ok()) return Fail(m.status());
    model = std::move(*m);
  }
  absl::StatusOr<std::unique_ptr<Head>> head = CreateClassifierHead(HeadOptions{});
  if (!head.ok()) return Fail(head.status());
  OptimizerConfig oc;
  oc.type = "adagrad";
  oc.learning_rate = 0.05 * lr_scale;
  std::map<std::string, std::unique_ptr<Optimizer>> optimizers;
  {
    absl::StatusOr<std::unique_ptr<Optimizer>> opt = MakeOptimizer(oc);
    if (!opt.ok()) return Fail(opt.status());
    optimizers[""] = *std::move(opt);
  }

  // A fresh model_dir (nothing is saved in it), warm-started from --init.
  const std::string scratch = absl::StrCat(dir, "/estuary_", getpid());
  std::filesystem::remove_all(scratch);
  OneDeviceStrategyOptions so;
  so.checkpoint.model_dir = scratch + "/model";
  so.checkpoint.seed = 42;
  if (!init_dir.empty()) {
    so.checkpoint.warm_start_from = scratch + "/init";
    if (absl::Status s = SaveInitialValues(*model, init_dir, so.checkpoint.warm_start_from);
        !s.ok()) {
      return Fail(s);
    }
  }
  OneDeviceStrategy strategy(model.get(), &optimizers, so);
  absl::Status restored = strategy.Restore();
  std::filesystem::remove_all(scratch);
  if (!restored.ok()) return Fail(restored);

  if (input == "csv") {
    absl::StatusOr<std::unique_ptr<Pipeline>> p = MakeCsvPipeline(model_name, dir, threads);
    if (!p.ok()) return Fail(p.status());
    pipeline = *std::move(p);
  }

  std::unique_ptr<TaskMetrics> metrics = *TaskMetrics::Create({"local", "0"});
  MetricsHook metrics_hook(metrics.get());
  RunContext run;
  std::mt19937_64 rng(43);
  std::vector<ReplicaGradients> replicas(1);
  Gradients& grads = replicas[0].grads;
  Batch pulled;
  int64_t step = 0;  // steps run so far
  double loss_value = 0;
  // Estimator::Train's step (RunTrainLoop without hooks) on batch `step`.
  auto train_step = [&]() -> absl::Status {
    const absl::Time t0 = with_metrics ? absl::Now() : absl::InfinitePast();
    absl::Time t1, t2, t3;
    const Batch* batch = nullptr;
    if (pipeline != nullptr) {
      absl::StatusOr<std::optional<Batch>> next = pipeline->Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) return absl::OutOfRangeError("the repeated CSV input ended");
      pulled = **std::move(next);
      batch = &pulled;
    } else {
      batch = &batches[step % batches.size()];
    }
    if (with_metrics) t1 = absl::Now();
    absl::StatusOr<const Variables*> vars = strategy.VariablesForStep(batch->features);
    if (!vars.ok()) return vars.status();
    if (with_metrics) t2 = absl::Now();
    absl::StatusOr<double> loss = ComputeGradients(*model, **head, *batch, **vars,
                                                   strategy.global_step(), &rng, &grads);
    if (!loss.ok()) return loss.status();
    if (with_metrics) t3 = absl::Now();
    loss_value = *loss;
    ++step;
    absl::Status applied = strategy.ApplyGradients(&replicas).status();
    if (!with_metrics || !applied.ok()) return applied;
    const absl::Time t4 = absl::Now();
    StepInfo info{strategy.global_step(), loss_value, kBatch, {}};
    info.phases.input = t1 - t0;
    info.phases.compute = t3 - t2;
    info.phases.communicate = strategy.TakeCommunicationTime();
    info.phases.apply = (t2 - t1) + (t4 - t3) - info.phases.communicate;
    info.phases.total = t4 - t0;
    return metrics_hook.AfterStep(info, &run);
  };

  for (int i = 0; i < check_steps; ++i) {
    if (absl::Status s = train_step(); !s.ok()) return Fail(s);
    std::printf("loss_at_step %" PRId64 " %.9g\n", step, loss_value);
  }
  // CPU time of the whole process (every thread), for figures on a loaded machine.
  auto cpu_seconds = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  };
  using Clock = std::chrono::steady_clock;
  const double cpu_start = cpu_seconds();
  const Clock::time_point start = Clock::now();
  int64_t timed = 0;
  double elapsed = 0;
  if (steps > 0) {
    for (; timed < steps; ++timed) {
      if (absl::Status s = train_step(); !s.ok()) return Fail(s);
    }
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } else {
    do {
      for (int i = 0; i < 10; ++i, ++timed) {
        if (absl::Status s = train_step(); !s.ok()) return Fail(s);
      }
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < seconds);
  }
  const double cpu = cpu_seconds() - cpu_start;
  if (timed > 0) std::printf("loss_at_step %" PRId64 " %.9g\n", step, loss_value);
  std::printf("examples_per_sec %.0f\n", timed * kBatch / elapsed);
  std::printf("cpu_seconds %.4f\n", cpu);
  std::printf("steps %" PRId64 "\n", timed);
  return 0;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Run(argc, argv); }
