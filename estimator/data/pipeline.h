// The tf.data-like input pipeline behind an Estimator input_fn:
//
//   files (globs expanded, sorted) -> shard -> read (interleave
//   num_parallel_readers files, one record from each in turn) -> shuffle
//   (buffer, seed) -> repeat (num_epochs, reshuffled each epoch) -> batch
//   (batch_size, drop_remainder) -> parse (BatchParser) -> prefetch.
//
// Sharding (shard_policy kAuto): with at least as many files as shards,
// shard i reads files i, i+n, i+2n, ... (tf.data's FILE auto-shard); with
// fewer, every shard reads all files and keeps records i, i+n, ... of the
// interleaved stream (its DATA fallback). Either way the shards partition
// the data exactly. kOff: every shard reads all the data.
//
// Determinism: for a given seed the output (order and batches) is the same
// on every run, whatever the thread count. Shard i shuffles with seed + i
// (so tasks reading the same data, shard_policy kOff, see different orders;
// shard 0 is the one-process order), each epoch with a seed derived from
// (that seed, epoch). Without a seed, one is drawn at random. The shuffle is
// tf.data's algorithm (a buffer, a uniform pick, refill) but not its random
// stream, so orders differ from TensorFlow's.
#ifndef ESTUARY_ESTIMATOR_DATA_PIPELINE_H_
#define ESTUARY_ESTIMATOR_DATA_PIPELINE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/io/tfrecord.h"
#include "common/job_config.h"
#include "common/json_schema.h"
#include "common/tensor.h"
#include "estimator/data/batch_parser.h"
#include "estimator/data/csv_parser.h"
#include "estimator/data/example_parser.h"
#include "estimator/data/record_reader.h"
#include "nlohmann/json.hpp"

namespace estuary {

// InputFormat (csv | tfrecord | idx) is common/job_config.h's.
struct InputOptions {
  InputFormat format = InputFormat::kCsv;
  std::vector<std::string> files;  // csv/tfrecord: file names or glob patterns
  std::string images, labels;      // idx: the pair (one unit of sharding)
  int64_t batch_size = 1;
  int64_t shuffle_buffer_size = 0;  // 0 or 1: no shuffle
  int64_t num_epochs = 1;           // -1: repeat forever
  std::optional<uint64_t> seed;
  int num_parallel_readers = 1;  // files read in turn (interleave cycle length)
  // Batches prepared ahead on background threads; 0 parses in Next() itself.
  int prefetch_batches = 2;
  int num_parse_threads = 0;  // 0: min(prefetch_batches, 4)
  bool drop_remainder = false;

  // csv
  bool header = false;
  std::vector<std::string> column_names;  // empty: from the header line
  // One per column, in order; their names come from column_names or the
  // header (a name set here is replaced).
  std::vector<CsvColumn> csv_columns;
  char field_delim = ',';
  std::string label_key;
  BadRecordPolicy bad_record_policy = BadRecordPolicy::kFail;

  // idx
  bool scale_pixels = true;

  // tfrecord (of tf.train.Example)
  io::TFRecordOptions tfrecord;
  std::optional<data::ExampleParserSpec> example_spec;  // required for tfrecord

  // This task's share of the input: set by the distribution strategy (not
  // from JSON); 0 <= shard_index < num_shards.
  int64_t num_shards = 1;
  int64_t shard_index = 0;
  InputShardPolicy shard_policy = InputShardPolicy::kAuto;  // JSON "shard"

  JsonPath where;  // where these came from, for errors ("job.json: $.train_input")
};

// The options of a parsed train_input/eval_input section. InvalidArgument
// from the section's JsonPath only for what the Example parser's spec
// rejects ("job.json: $.train_input.features: ...").
absl::StatusOr<InputOptions> InputOptionsFromConfig(const InputConfig& config);

// For tools and tests: ParseInputConfig (`json_path` roots error paths),
// then InputOptionsFromConfig.
absl::StatusOr<InputOptions> InputOptionsFromJson(const nlohmann::json& input,
                                                  const std::string& json_path);

// Expands glob patterns; the result is sorted and without duplicates.
// InvalidArgument naming the first pattern that matches nothing.
absl::StatusOr<std::vector<std::string>> ExpandFilePatterns(
    const std::vector<std::string>& patterns);

// Overrides for formats or tests: a null member means the format's default
// (csv: CSV reader + CsvBatchParser; idx: IDX reader + IdxBatchParser;
// tfrecord: none yet, both must be given).
struct PipelineParts {
  RecordReaderFactory reader_factory;
  std::shared_ptr<BatchParser> parser;
};

// Thread-safety: Next() from one thread at a time; Cancel() from any thread.
// Threads: with prefetch_batches > 0, one reader thread (read, shuffle,
// repeat, batch) and num_parse_threads parser threads, all joined by Cancel()
// or the destructor.
class Pipeline {
 public:
  // Expands the files, reads the CSV header if column names come from it,
  // builds the parser and starts the threads.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(InputOptions options,
                                                          PipelineParts parts = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The next batch; nullopt at the end of the input. An error (with the
  // record's origin) is returned again by every later call. Blocks until
  // the batch is ready or Cancel() (then CancelledError).
  absl::StatusOr<std::optional<Batch>> Next();

  // Stops the threads; pending and later Next() calls return Cancelled.
  void Cancel();

  // Records skipped by the parser under bad_record_policy=skip.
  int64_t skipped_records() const { return parser_->skipped_records(); }
  // The files this shard reads (after expansion and file sharding).
  const std::vector<std::string>& files() const { return files_; }
  // How this shard shares the input, for logs: "shard 1 of 3 by file (2 of
  // 5 files)", "shard 1 of 3 by record (every 3rd record of 2 files)",
  // "shard 1 of 3 unsharded (all 2 files)"; "" with one shard.
  const std::string& shard_description() const { return shard_description_; }

  class RecordStream;  // read -> shuffle -> repeat -> batch (pipeline.cc)

 private:
  struct RawBatch {
    std::vector<std::string> records;
    std::vector<RecordOrigin> origins;
  };

  Pipeline(InputOptions options, std::vector<std::string> files, std::string shard_description,
           std::unique_ptr<RecordStream> stream, std::shared_ptr<BatchParser> parser);
  void Start();
  void ReaderLoop();
  void ParserLoop();
  absl::StatusOr<std::optional<Batch>> NextInline();

  const InputOptions options_;
  const std::vector<std::string> files_;
  const std::string shard_description_;
  std::unique_ptr<RecordStream> stream_;  // used by the reader thread only (or Next inline)
  const std::shared_ptr<BatchParser> parser_;

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  int64_t produced_ ABSL_GUARDED_BY(mu_) = 0;  // raw batches handed to the parsers
  int64_t end_seq_ ABSL_GUARDED_BY(mu_) = -1;  // >= 0: no batch at or after this
  std::deque<std::pair<int64_t, RawBatch>> work_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, absl::StatusOr<Batch>> done_ ABSL_GUARDED_BY(mu_);
  int64_t next_consumed_ ABSL_GUARDED_BY(mu_) = 0;  // batches taken by Next()
  int64_t next_seq_ = 0;  // Next()'s caller only
  absl::Status final_status_;  // Next()'s caller only: a returned error
  bool finished_ = false;      // Next()'s caller only
  std::vector<std::thread> threads_;
};

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_DATA_PIPELINE_H_
