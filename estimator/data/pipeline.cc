#include "estimator/data/pipeline.h"

#include "estimator/data/example_batch_parser.h"

#include <glob.h>

#include <algorithm>
#include <random>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "estimator/data/csv_reader.h"
#include "estimator/data/idx_reader.h"

namespace estuary {
namespace {

using json = nlohmann::json;

// SplitMix64 finaliser: decorrelates (seed, epoch) pairs.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// "st", "nd", "rd" or "th" after n.
const char* OrdinalSuffix(int64_t n) {
  if (n % 100 >= 11 && n % 100 <= 13) return "th";
  switch (n % 10) {
    case 1: return "st";
    case 2: return "nd";
    case 3: return "rd";
    default: return "th";
  }
}

}  // namespace

absl::StatusOr<InputOptions> InputOptionsFromConfig(const InputConfig& c) {
  InputOptions o;
  o.where = c.where;
  o.format = c.format;
  o.files = c.files;
  o.images = c.images;
  o.labels = c.labels;
  o.batch_size = c.batch_size;
  o.shuffle_buffer_size = c.shuffle_buffer_size;
  o.num_epochs = c.num_epochs;
  o.seed = c.seed;
  o.shard_policy = c.shard;
  o.num_parallel_readers = c.num_parallel_readers;
  o.prefetch_batches = c.prefetch_batches;
  o.drop_remainder = c.drop_remainder;
  o.header = c.header;
  o.column_names = c.column_names;
  o.field_delim = c.field_delim;
  o.label_key = c.label_key;
  o.bad_record_policy = c.skip_bad_records ? BadRecordPolicy::kSkip : BadRecordPolicy::kFail;
  o.scale_pixels = c.scale_pixels;
  o.tfrecord.compression = c.compression;
  for (size_t i = 0; i < c.column_defaults.size(); ++i) {
    o.csv_columns.push_back(CsvColumnFromDefault(
        i < c.column_names.size() ? c.column_names[i] : "", c.column_defaults[i]));
  }
  if (!c.features.empty()) {
    ASSIGN_OR_RETURN(o.example_spec, ExampleSpecFromConfig(c.features, c.where.Key("features")));
  }
  return o;
}

absl::StatusOr<InputOptions> InputOptionsFromJson(const json& in, const std::string& path) {
  ASSIGN_OR_RETURN(InputConfig config, ParseInputConfig(in, JsonPath("", path)));
  return InputOptionsFromConfig(config);
}

absl::StatusOr<std::vector<std::string>> ExpandFilePatterns(
    const std::vector<std::string>& patterns) {
  std::vector<std::string> files;
  for (const std::string& pattern : patterns) {
    glob_t g;
    const int rc = glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
    if (rc == GLOB_NOMATCH) {
      globfree(&g);
      return absl::InvalidArgumentError(absl::StrCat("no files match '", pattern, "'"));
    }
    if (rc != 0) {
      globfree(&g);
      return absl::InvalidArgumentError(absl::StrCat("cannot expand '", pattern, "'"));
    }
    for (size_t i = 0; i < g.gl_pathc; ++i) files.emplace_back(g.gl_pathv[i]);
    globfree(&g);
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

// Read (interleaved, record-sharded if needed) -> shuffle -> repeat -> batch.
// Single-threaded.
class Pipeline::RecordStream {
 public:
  RecordStream(const InputOptions& options, std::vector<std::string> files,
               bool shard_records, RecordReaderFactory factory, uint64_t seed)
      : options_(options),
        files_(std::move(files)),
        shard_records_(shard_records),
        factory_(std::move(factory)),
        seed_(seed) {
    StartEpoch();
  }

  // A batch of records; false at the end of the input.
  absl::StatusOr<bool> NextBatch(RawBatch* batch) {
    batch->records.clear();
    batch->origins.clear();
    while (static_cast<int64_t>(batch->records.size()) < options_.batch_size) {
      std::string record;
      RecordOrigin origin;
      ASSIGN_OR_RETURN(bool got, NextRecord(&record, &origin));
      if (!got) break;
      batch->records.push_back(std::move(record));
      batch->origins.push_back(std::move(origin));
    }
    if (batch->records.empty()) return false;
    if (options_.drop_remainder &&
        static_cast<int64_t>(batch->records.size()) < options_.batch_size) {
      return false;
    }
    return true;
  }

 private:
  struct Item {
    std::string record;
    RecordOrigin origin;
  };

  void StartEpoch() {
    slots_.clear();
    next_file_ = 0;
    slot_ = 0;
    counter_ = 0;
    epoch_records_ = 0;
    epoch_input_done_ = false;
    buffer_.clear();
    rng_.seed(Mix(seed_ ^ Mix(static_cast<uint64_t>(epoch_))));
  }

  // The interleaved records of this epoch (this shard's part).
  absl::StatusOr<bool> NextInterleaved(std::string* record, RecordOrigin* origin) {
    const size_t cycle = std::max(1, options_.num_parallel_readers);
    while (true) {
      while (slots_.size() < cycle && next_file_ < files_.size()) {
        ASSIGN_OR_RETURN(std::unique_ptr<RecordReader> r, factory_(files_[next_file_]));
        ++next_file_;
        slots_.push_back(std::move(r));
      }
      if (slots_.empty()) return false;
      if (slot_ >= slots_.size()) slot_ = 0;
      ASSIGN_OR_RETURN(bool got, slots_[slot_]->Next(record, origin));
      if (!got) {
        // Like tf.data's interleave: the next file takes this position.
        if (next_file_ < files_.size()) {
          ASSIGN_OR_RETURN(slots_[slot_], factory_(files_[next_file_]));
          ++next_file_;
        } else {
          slots_.erase(slots_.begin() + slot_);
        }
        continue;
      }
      slot_ = (slot_ + 1) % slots_.size();
      if (shard_records_ && counter_++ % options_.num_shards != options_.shard_index) continue;
      return true;
    }
  }

  absl::StatusOr<bool> NextShuffled(std::string* record, RecordOrigin* origin) {
    if (options_.shuffle_buffer_size <= 1) return NextInterleaved(record, origin);
    while (!epoch_input_done_ &&
           static_cast<int64_t>(buffer_.size()) < options_.shuffle_buffer_size) {
      Item item;
      ASSIGN_OR_RETURN(bool got, NextInterleaved(&item.record, &item.origin));
      if (!got) {
        epoch_input_done_ = true;
        break;
      }
      buffer_.push_back(std::move(item));
    }
    if (buffer_.empty()) return false;
    const size_t pick = std::uniform_int_distribution<size_t>(0, buffer_.size() - 1)(rng_);
    std::swap(buffer_[pick], buffer_.back());
    *record = std::move(buffer_.back().record);
    *origin = std::move(buffer_.back().origin);
    buffer_.pop_back();
    return true;
  }

  absl::StatusOr<bool> NextRecord(std::string* record, RecordOrigin* origin) {
    while (true) {
      if (ended_) return false;
      ASSIGN_OR_RETURN(bool got, NextShuffled(record, origin));
      if (got) {
        ++epoch_records_;
        return true;
      }
      // An empty epoch ends even a forever-repeat (as tf.data's repeat does).
      ++epoch_;
      if (epoch_records_ == 0 || (options_.num_epochs > 0 && epoch_ >= options_.num_epochs)) {
        ended_ = true;
        return false;
      }
      StartEpoch();
    }
  }

  const InputOptions options_;
  const std::vector<std::string> files_;
  const bool shard_records_;
  const RecordReaderFactory factory_;
  const uint64_t seed_;

  int64_t epoch_ = 0;
  bool ended_ = false;
  std::vector<std::unique_ptr<RecordReader>> slots_;
  size_t next_file_ = 0;
  size_t slot_ = 0;
  int64_t counter_ = 0;
  int64_t epoch_records_ = 0;
  bool epoch_input_done_ = false;
  std::vector<Item> buffer_;
  std::mt19937_64 rng_;
};

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(InputOptions options,
                                                           PipelineParts parts) {
  const JsonPath& where = options.where;
  if (options.batch_size < 1) return where.Key("batch_size").Error("must be >= 1");
  if (options.num_shards < 1 || options.shard_index < 0 ||
      options.shard_index >= options.num_shards) {
    return absl::InvalidArgumentError(absl::StrCat("shard index ", options.shard_index,
                                                   " out of range for ", options.num_shards,
                                                   " shards"));
  }
  std::vector<std::string> all_files;
  if (options.format == InputFormat::kIdx) {
    all_files = {options.images};
  } else {
    absl::StatusOr<std::vector<std::string>> expanded = ExpandFilePatterns(options.files);
    if (!expanded.ok()) {
      return where.Key("files").Error(expanded.status().message());
    }
    all_files = std::move(*expanded);
  }

  if (!parts.reader_factory) {
    switch (options.format) {
      case InputFormat::kCsv: {
        CsvReaderOptions csv;
        csv.header = options.header;
        csv.field_delim = options.field_delim;
        parts.reader_factory = [csv](const std::string& file) { return OpenCsvReader(file, csv); };
        break;
      }
      case InputFormat::kIdx: {
        const std::string labels = options.labels;
        parts.reader_factory = [labels](const std::string& images) {
          return OpenIdxReader(images, labels);
        };
        break;
      }
      case InputFormat::kTfRecord: {
        const io::TFRecordOptions tfrecord = options.tfrecord;
        parts.reader_factory = [tfrecord](const std::string& file) {
          return OpenTFRecordRecordReader(file, tfrecord);
        };
        break;
      }
    }
  }
  if (!parts.parser) {
    switch (options.format) {
      case InputFormat::kCsv: {
        CsvParserOptions csv;
        csv.field_delim = options.field_delim;
        csv.label_key = options.label_key;
        csv.bad_record_policy = options.bad_record_policy;
        std::vector<std::string> names = options.column_names;
        if (names.empty()) {
          if (!options.header) {
            return where.Key("column_names").Error("is required unless \"header\": true");
          }
          ASSIGN_OR_RETURN(std::string header,
                           ReadCsvHeader(all_files.front(), options.field_delim));
          absl::StatusOr<std::vector<std::string>> fields =
              SplitCsvRecord(header, options.field_delim);
          if (!fields.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat(all_files.front(), ":1: header: ", fields.status().message()));
          }
          names = std::move(*fields);
        }
        if (names.size() != options.csv_columns.size()) {
          return where.Key("column_defaults")
              .Error(absl::StrCat("has ", options.csv_columns.size(), " entries but there are ",
                                  names.size(), " columns",
                                  options.column_names.empty()
                                      ? absl::StrCat(" in the header of ", all_files.front())
                                      : ""));
        }
        csv.columns = options.csv_columns;
        for (size_t i = 0; i < names.size(); ++i) csv.columns[i].name = names[i];
        absl::StatusOr<std::unique_ptr<CsvBatchParser>> parser =
            CsvBatchParser::Create(std::move(csv));
        if (!parser.ok()) return where.Wrap(parser.status());
        parts.parser = std::move(*parser);
        break;
      }
      case InputFormat::kIdx: {
        IdxParserOptions idx;
        idx.scale = options.scale_pixels;
        parts.parser = std::make_shared<IdxBatchParser>(std::move(idx));
        break;
      }
      case InputFormat::kTfRecord: {
        if (!options.example_spec.has_value()) {
          return where.Key("features").Error("is required for format \"tfrecord\"");
        }
        parts.parser = std::make_shared<ExampleBatchParser>(
            *options.example_spec, options.label_key, options.bad_record_policy);
        break;
      }
    }
  }

  // File sharding when every shard gets a file, else record sharding.
  std::vector<std::string> files;
  const int64_t n = options.num_shards;
  const int64_t num_files = static_cast<int64_t>(all_files.size());
  const bool sharded = n > 1 && options.shard_policy == InputShardPolicy::kAuto;
  const bool shard_records = sharded && num_files < n;
  std::string description;
  if (n > 1) {
    description = absl::StrCat("shard ", options.shard_index, " of ", n, " ");
  }
  if (!sharded || shard_records) {
    files = std::move(all_files);
    if (shard_records) {
      absl::StrAppend(&description, "by record (every ", n, OrdinalSuffix(n), " record of ",
                      num_files, num_files == 1 ? " file)" : " files)");
    } else if (n > 1) {
      absl::StrAppend(&description, "unsharded (all ", num_files,
                      num_files == 1 ? " file)" : " files)");
    }
  } else {
    for (int64_t i = options.shard_index; i < num_files; i += n) files.push_back(all_files[i]);
    absl::StrAppend(&description, "by file (", files.size(), " of ", num_files, " files)");
  }
  // Shard i shuffles with seed + i: tasks never share a shuffle order.
  const uint64_t seed = (options.seed.has_value() ? *options.seed : absl::BitGen()()) +
                        static_cast<uint64_t>(options.shard_index);
  auto stream = std::make_unique<RecordStream>(options, files, shard_records,
                                               std::move(parts.reader_factory), seed);
  std::unique_ptr<Pipeline> p(new Pipeline(std::move(options), std::move(files),
                                           std::move(description), std::move(stream),
                                           std::move(parts.parser)));
  p->Start();
  return p;
}

Pipeline::Pipeline(InputOptions options, std::vector<std::string> files,
                   std::string shard_description, std::unique_ptr<RecordStream> stream,
                   std::shared_ptr<BatchParser> parser)
    : options_(std::move(options)),
      files_(std::move(files)),
      shard_description_(std::move(shard_description)),
      stream_(std::move(stream)),
      parser_(std::move(parser)) {}

Pipeline::~Pipeline() { Cancel(); }

void Pipeline::Start() {
  if (options_.prefetch_batches <= 0) return;
  const int parsers = options_.num_parse_threads > 0 ? options_.num_parse_threads
                                                     : std::min(options_.prefetch_batches, 4);
  threads_.emplace_back([this] { ReaderLoop(); });
  for (int i = 0; i < parsers; ++i) threads_.emplace_back([this] { ParserLoop(); });
}

void Pipeline::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Pipeline::ReaderLoop() {
  while (true) {
    int64_t seq;
    {
      absl::MutexLock lock(&mu_);
      // At most prefetch_batches batches between the reader and Next().
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return cancelled_ || produced_ - next_consumed_ < options_.prefetch_batches;
      };
      mu_.Await(absl::Condition(&room));
      if (cancelled_) return;
      seq = produced_;
    }
    RawBatch raw;
    absl::StatusOr<bool> got = stream_->NextBatch(&raw);
    absl::MutexLock lock(&mu_);
    if (!got.ok()) {
      done_.emplace(seq, got.status());
      end_seq_ = seq + 1;
      return;
    }
    if (!*got) {
      end_seq_ = seq;
      return;
    }
    work_.emplace_back(seq, std::move(raw));
    ++produced_;
  }
}

void Pipeline::ParserLoop() {
  while (true) {
    std::pair<int64_t, RawBatch> item;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return cancelled_ || !work_.empty() || end_seq_ >= 0;
      };
      mu_.Await(absl::Condition(&ready));
      if (cancelled_ || work_.empty()) return;
      item = std::move(work_.front());
      work_.pop_front();
    }
    absl::StatusOr<Batch> batch = parser_->Parse(item.second.records, item.second.origins);
    absl::MutexLock lock(&mu_);
    done_.emplace(item.first, std::move(batch));
  }
}

absl::StatusOr<std::optional<Batch>> Pipeline::NextInline() {
  while (true) {
    RawBatch raw;
    ASSIGN_OR_RETURN(bool got, stream_->NextBatch(&raw));
    if (!got) return std::optional<Batch>();
    ASSIGN_OR_RETURN(Batch batch, parser_->Parse(raw.records, raw.origins));
    if (batch.batch_size > 0) return std::optional<Batch>(std::move(batch));
  }
}

absl::StatusOr<std::optional<Batch>> Pipeline::Next() {
  if (!final_status_.ok()) return final_status_;
  if (finished_) return std::optional<Batch>();
  while (true) {
    absl::StatusOr<Batch> result = absl::UnknownError("unset");
    if (options_.prefetch_batches <= 0) {
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) return absl::CancelledError("input pipeline cancelled");
      }
      absl::StatusOr<std::optional<Batch>> b = NextInline();
      if (!b.ok()) {
        final_status_ = b.status();
      } else if (!b->has_value()) {
        finished_ = true;
      }
      return b;
    }
    {
      absl::MutexLock lock(&mu_);
      const int64_t seq = next_seq_;
      auto ready = [this, seq]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return cancelled_ || done_.count(seq) > 0 || (end_seq_ >= 0 && seq >= end_seq_);
      };
      mu_.Await(absl::Condition(&ready));
      if (cancelled_) return absl::CancelledError("input pipeline cancelled");
      auto it = done_.find(seq);
      if (it == done_.end()) {
        finished_ = true;
        return std::optional<Batch>();
      }
      result = std::move(it->second);
      done_.erase(it);
      ++next_seq_;
      next_consumed_ = next_seq_;
    }
    if (!result.ok()) {
      final_status_ = result.status();
      return final_status_;
    }
    // A batch whose records were all skipped (bad_record_policy=skip).
    if (result->batch_size == 0) continue;
    return std::optional<Batch>(std::move(*result));
  }
}

}  // namespace estuary
