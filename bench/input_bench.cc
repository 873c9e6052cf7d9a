// input_bench: parse + feature-transformation throughput of Estuary's input
// pipeline on the click log, in examples per second. Reads a job file's
// input section (train_input: CSV, eval_input: TFRecord) and its
// feature_columns, runs one epoch through Pipeline -> DenseFeatures
// (embedding tables filled with random values), and prints one figure.
//
//   input_bench --job bench/click_input_job.json --input train_input --threads 1
//
// --threads 1: everything on the calling thread (no prefetch, one reader);
// --threads N: N parser threads, N interleaved readers, prefetch 2N batches.
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/job_spec.h"
#include "estimator/data/pipeline.h"
#include "estimator/feature_column.h"
#include "estimator/feature_column_builder.h"

namespace estuary {
namespace {

int Run(int argc, char** argv) {
  std::string job_path = "bench/click_input_job.json", input = "train_input";
  int threads = 1;
  FlagSet flags("input_bench --job JOB --input train_input|eval_input --threads N",
                "Examples/s of input pipeline + feature columns over one epoch.");
  flags.String("job", &job_path, "Job file with the input section and feature_columns.");
  flags.String("input", &input, "Which input section: train_input or eval_input.");
  flags.Int("threads", &threads, "1: single thread; N: N parse threads and readers.");
  absl::Status st = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return 0;
  }
  if (!st.ok()) {
    std::fprintf(stderr, "input_bench: error: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  absl::StatusOr<JobSpec> job = LoadJobSpec(job_path);
  if (!job.ok()) {
    std::fprintf(stderr, "input_bench: error: %s\n", std::string(job.status().message()).c_str());
    return 2;
  }
  const std::optional<InputConfig>& section =
      input == "eval_input" ? job->eval_input : job->train_input;
  if (!section.has_value()) {
    std::fprintf(stderr, "input_bench: error: %s: $.%s: is required\n", job_path.c_str(),
                 input.c_str());
    return 2;
  }
  absl::StatusOr<InputOptions> options = InputOptionsFromConfig(*section);
  absl::StatusOr<FeatureColumnSet> columns = BuildFeatureColumns(*job);
  if (!options.ok() || !columns.ok()) {
    std::fprintf(stderr, "input_bench: error: %s\n",
                 std::string(!options.ok() ? options.status().message()
                                           : columns.status().message())
                     .c_str());
    return 2;
  }
  options->num_epochs = 1;
  options->shuffle_buffer_size = 0;
  if (threads <= 1) {
    options->prefetch_batches = 0;
    options->num_parallel_readers = 1;
  } else {
    options->num_parse_threads = threads;
    options->num_parallel_readers = threads;
    options->prefetch_batches = 2 * threads;
  }
  EmbeddingTables tables;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0, 0.1f);
  for (const ColumnPtr& c : columns->columns()) {
    if (const EmbeddingSpec* e = GetEmbeddingSpec(*c)) {
      RowMatrixXf t(e->categorical->num_buckets(), e->dimension);
      for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = normal(rng);
      tables[c->name()] = std::move(t);
    }
  }
  const std::vector<ColumnPtr> dense = columns->DenseColumns();
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Create(*options);
  if (!pipeline.ok()) {
    std::fprintf(stderr, "input_bench: error: %s\n", std::string(pipeline.status().message()).c_str());
    return 1;
  }
  int64_t examples = 0;
  double checksum = 0;
  while (true) {
    absl::StatusOr<std::optional<Batch>> batch = (*pipeline)->Next();
    if (!batch.ok()) {
      std::fprintf(stderr, "input_bench: error: %s\n", std::string(batch.status().message()).c_str());
      return 1;
    }
    if (!batch->has_value()) break;
    absl::StatusOr<RowMatrixXf> out = DenseFeatures(dense, (*batch)->features, &tables);
    if (!out.ok()) {
      std::fprintf(stderr, "input_bench: error: %s\n", std::string(out.status().message()).c_str());
      return 1;
    }
    examples += (*batch)->batch_size;
    checksum += (*out)(0, 0);
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("examples %lld\n", static_cast<long long>(examples));
  std::printf("examples_per_sec %.0f\n", examples / secs);
  std::fprintf(stderr, "(checksum %g)\n", checksum);
  return 0;
}

}  // namespace
}  // namespace estuary

int main(int argc, char** argv) { return estuary::Run(argc, argv); }
