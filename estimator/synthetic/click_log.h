// A synthetic Criteo-like click log for large sparse models and benchmarks:
// a binary label, 13 integer features (I1..I13, log-normal counts, some
// missing) and 26 categorical features (C1..C26, 8-hex-digit tokens whose
// ranks are Zipf-distributed over vocabularies of 3 to 10^6 values, some
// missing). Labels come from a hidden logistic model over those features,
// fixed by `model_seed`, so a model can actually learn them.
//
// Rows are a pure function of (seed, model_seed, row index): files can be
// written in parallel and any shard regenerated. Thread-compatible.
#ifndef ESTUARY_ESTIMATOR_SYNTHETIC_CLICK_LOG_H_
#define ESTUARY_ESTIMATOR_SYNTHETIC_CLICK_LOG_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/io/env.h"

namespace estuary {

inline constexpr int kClickIntFeatures = 13;
inline constexpr int kClickCatFeatures = 26;

struct ClickRow {
  int label = 0;
  std::array<std::optional<int64_t>, kClickIntFeatures> ints;
  std::array<std::string, kClickCatFeatures> cats;  // empty: missing
  // The hidden model's click probability for this row (for tests/analysis).
  double probability = 0;
};

// Column names in file order: label, I1..I13, C1..C26.
std::vector<std::string> ClickLogColumns();

class ClickLogGenerator {
 public:
  explicit ClickLogGenerator(uint64_t seed, uint64_t model_seed = 0);
  // Fills `row` with row number `index` of the log.
  void Row(int64_t index, ClickRow* row) const;
  // Vocabulary size of categorical feature f (0-based).
  static int64_t VocabularySize(int f);

 private:
  uint64_t seed_;
  uint64_t model_seed_;
  std::array<double, kClickIntFeatures> int_weights_;
};

struct ClickLogOptions {
  int64_t rows = 0;
  uint64_t seed = 1;
  uint64_t model_seed = 0;
  std::string out_dir;
  std::string format = "csv";  // csv | tfrecord
  int num_files = 1;
  int threads = 2;
  // Creates out_dir (and its parents) and the files; not owned, never null.
  const io::Env* env = &io::Env::Default();
};

// One row as a serialized tf.train.Example: int64 "label", int64 "I1".."I13"
// and bytes "C1".."C26"; missing values are left out (so a FixedLenFeature
// with a default fills them, as in TF pipelines over Criteo).
std::string ClickExample(const ClickRow& row);

// One row as a CSV line (no newline), in ClickLogColumns() order.
void AppendClickCsv(const ClickRow& row, std::string* out);

// Writes `rows` rows split over `num_files` files named
// clicks-00000-of-00004.csv (or .tfrecord: one Example per row) in out_dir
// (created with its missing parents if needed).
// `progress(rows_done)` is called from the writing threads now and then.
// Errors: InvalidArgument (options); the Env's errors (NotFound,
// PermissionDenied, ResourceExhausted, ...) naming the file.
absl::Status WriteClickLog(const ClickLogOptions& options,
                           const std::function<void(int64_t)>& progress = nullptr);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_SYNTHETIC_CLICK_LOG_H_
