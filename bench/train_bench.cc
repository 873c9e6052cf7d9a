// train_bench: training-step throughput of Estuary's Estimator pieces, in
// examples per second, on in-memory data (input parsing is not measured).
//
//   train_bench --model dnn|sparse --data DIR --threads 1|2 [--seconds S]
//
// The data are written once by bench/train_bench.py (numpy; the same files
// feed the PyTorch and TF 2.15 peers), raw little-endian arrays:
//   dnn:    DIR/dnn_x.f32 [N, 64], DIR/dnn_y.f32 [N]
//   sparse: DIR/sparse_ids.i64 [N, 26] (ids in [0, 2^20)), DIR/sparse_y.f32 [N]
// Models (binary labels, one logit, sigmoid cross-entropy: what
// DNNClassifier / LinearClassifier with n_classes=2 build):
//   dnn:    numeric_column("x", [64]) -> MakeDnnModel hidden [256, 128] relu
//           -> 1 logit; Adagrad(0.05); batch 256.
//   sparse: categorical_column_with_identity("ids", 2^20) fed a SparseTensor
//           of 26 ids per example -> MakeLinearModel (sum of weight rows +
//           bias); Adagrad(0.05); batch 256.
// The step is Estimator::Train's, without the input pipeline, summaries and
// checkpoints: the shared step body (ComputeGradients: Model::Forward,
// Head::Loss, NaN check, Model::Backward) and OneDeviceStrategy's
// ApplyGradients (Optimizer::ApplyDense / ApplySparse). Estimator::Train
// itself pulls batches from a Pipeline (files), so it is not used here.
// After --warmup steps, steps run until --seconds have passed; prints
//   examples_per_sec N
//   final_loss L
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/optimizer.h"
#include "common/tensor.h"
#include "estimator/dnn_model.h"
#include "estimator/feature_column.h"
#include "estimator/head/head.h"
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

// In-memory batches: features + labels, built before timing.
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

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "train_bench: error: %s\n", std::string(st.message()).c_str());
  return 2;
}

int Run(int argc, char** argv) {
  std::string model_name = "dnn", dir = "/tmp/estuary/train_bench";
  int threads = 1, warmup = 20;
  double seconds = 3.0;
  FlagSet flags("train_bench --model dnn|sparse --data DIR --threads N",
                "Examples/s of the training step on in-memory batches.");
  flags.String("model", &model_name, "dnn (64-256-128-1) or sparse (linear over 2^20 buckets).");
  flags.String("data", &dir, "Directory with the arrays written by bench/train_bench.py.");
  flags.Int("threads", &threads, "GEMM threads (DnnModelOptions.num_threads).");
  flags.Int("warmup", &warmup, "Untimed steps first.");
  flags.Double("seconds", &seconds, "Timed steps run at least this long.");
  absl::Status st = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return 0;
  }
  if (!st.ok()) return Fail(st);
  if (model_name != "dnn" && model_name != "sparse") {
    return Fail(absl::InvalidArgumentError("--model must be dnn or sparse"));
  }

  absl::StatusOr<std::vector<Batch>> batches = LoadBatches(model_name, dir);
  if (!batches.ok()) return Fail(batches.status());

  std::unique_ptr<Model> model;
  if (model_name == "dnn") {
    absl::StatusOr<ColumnPtr> x = NumericColumn("x", {kDenseDim});
    if (!x.ok()) return Fail(x.status());
    DnnModelOptions options;
    options.dnn_columns = {*x};
    options.mlp.hidden_units = {256, 128};
    options.mlp.logits_dimension = 1;
    options.num_threads = threads;
    absl::StatusOr<std::unique_ptr<Model>> m = MakeDnnModel(std::move(options));
    if (!m.ok()) return Fail(m.status());
    model = std::move(*m);
  } else {
    absl::StatusOr<ColumnPtr> ids = IdentityColumn("ids", kBuckets);
    if (!ids.ok()) return Fail(ids.status());
    absl::StatusOr<std::unique_ptr<Model>> m = MakeLinearModel({*ids}, 1);
    if (!m.ok()) return Fail(m.status());
    model = std::move(*m);
  }
  absl::StatusOr<std::unique_ptr<Head>> head = CreateClassifierHead(HeadOptions{});
  if (!head.ok()) return Fail(head.status());
  OptimizerConfig oc;
  oc.type = "adagrad";
  oc.learning_rate = 0.05;
  std::map<std::string, std::unique_ptr<Optimizer>> optimizers;
  {
    absl::StatusOr<std::unique_ptr<Optimizer>> opt = MakeOptimizer(oc);
    if (!opt.ok()) return Fail(opt.status());
    optimizers[""] = *std::move(opt);
  }

  // A fresh model_dir: Restore initialises (seed 42); nothing is saved.
  OneDeviceStrategyOptions so;
  so.checkpoint.model_dir = absl::StrCat(dir, "/no_model_dir");
  so.checkpoint.seed = 42;
  OneDeviceStrategy strategy(model.get(), &optimizers, so);
  if (absl::Status s = strategy.Restore(); !s.ok()) return Fail(s);

  std::mt19937_64 rng(43);
  Gradients grads;
  double loss_value = 0;
  // Estimator::Train's step (RunTrainLoop without hooks).
  auto train_step = [&](const Batch& batch) -> absl::Status {
    absl::StatusOr<const Variables*> vars = strategy.VariablesForStep(batch.features);
    if (!vars.ok()) return vars.status();
    absl::StatusOr<double> loss = ComputeGradients(*model, **head, batch, **vars,
                                                   strategy.global_step(), &rng, &grads);
    if (!loss.ok()) return loss.status();
    loss_value = *loss;
    return strategy.ApplyGradients(&grads);
  };

  const std::vector<Batch>& data = *batches;
  for (int i = 0; i < warmup; ++i) {
    if (absl::Status s = train_step(data[i % data.size()]); !s.ok()) return Fail(s);
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  int64_t timed = 0;
  double elapsed = 0;
  do {
    for (int i = 0; i < 10; ++i, ++timed) {
      if (absl::Status s = train_step(data[(warmup + timed) % data.size()]); !s.ok()) return Fail(s);
    }
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  std::printf("examples_per_sec %.0f\n", timed * kBatch / elapsed);
  std::printf("steps %lld\n", static_cast<long long>(timed));
  std::printf("final_loss %.4f\n", loss_value);
  return 0;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Run(argc, argv); }
