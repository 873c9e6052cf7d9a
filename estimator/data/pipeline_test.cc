#include "estimator/data/pipeline.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/io/tfrecord.h"
#include "estimator/data/example_builder.h"
#include "estimator/data/test_files.h"
#include "gtest/gtest.h"

namespace estuary {
namespace {

using json = nlohmann::json;
using testing::TempDir;
using testing::WriteTestFile;

// Writes `files` CSV files "<prefix>-<i>.csv" with header "id,x" and ids
// file*1000 + row; returns the glob pattern.
std::string WriteIdFiles(const std::string& prefix, int files, int rows) {
  for (int f = 0; f < files; ++f) {
    std::string text = "id,x\n";
    for (int r = 0; r < rows; ++r) absl::StrAppend(&text, f * 1000 + r, ",", r * 0.5, "\n");
    WriteTestFile(absl::StrCat(prefix, "-", f, ".csv"), text);
  }
  return absl::StrCat(TempDir(), "/", prefix, "-*.csv");
}

InputOptions CsvOptions(const std::string& pattern, int64_t batch_size) {
  InputOptions o;
  o.format = InputFormat::kCsv;
  o.files = {pattern};
  o.header = true;
  o.csv_columns.resize(2);
  o.csv_columns[0].dtype = DType::kInt64;
  o.csv_columns[1].dtype = DType::kFloat;
  o.batch_size = batch_size;
  o.seed = 42;
  return o;
}

// All ids in batch order; batch sizes in `sizes`.
std::vector<int64_t> Drain(InputOptions o, std::vector<int64_t>* sizes = nullptr) {
  auto p = Pipeline::Create(std::move(o));
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return {};
  std::vector<int64_t> ids;
  while (true) {
    absl::StatusOr<std::optional<Batch>> b = (*p)->Next();
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok() || !b->has_value()) break;
    const Tensor& t = std::get<Tensor>((*b)->features.at("id"));
    ids.insert(ids.end(), t.ints.begin(), t.ints.end());
    if (sizes != nullptr) sizes->push_back((*b)->batch_size);
  }
  return ids;
}

std::vector<int64_t> Sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<int64_t> AllIds(int files, int rows) {
  std::vector<int64_t> v;
  for (int f = 0; f < files; ++f)
    for (int r = 0; r < rows; ++r) v.push_back(f * 1000 + r);
  return v;
}

TEST(PipelineTest, ReadsInOrderWithoutShuffle) {
  const std::string pat = WriteIdFiles("order", 2, 3);
  InputOptions o = CsvOptions(pat, 2);
  std::vector<int64_t> sizes;
  EXPECT_EQ(Drain(o, &sizes), (std::vector<int64_t>{0, 1, 2, 1000, 1001, 1002}));
  EXPECT_EQ(sizes, (std::vector<int64_t>{2, 2, 2}));
  o.num_parallel_readers = 2;  // interleave: one record from each file in turn
  EXPECT_EQ(Drain(o), (std::vector<int64_t>{0, 1000, 1, 1001, 2, 1002}));
}

TEST(PipelineTest, ShuffleIsDeterministicForASeedAndThreadCount) {
  const std::string pat = WriteIdFiles("shuf", 3, 50);
  InputOptions o = CsvOptions(pat, 7);
  o.shuffle_buffer_size = 40;
  o.num_epochs = 2;
  o.prefetch_batches = 0;
  const std::vector<int64_t> inline_ids = Drain(o);
  o.prefetch_batches = 4;
  o.num_parse_threads = 3;
  EXPECT_EQ(Drain(o), inline_ids);
  EXPECT_EQ(Drain(o), inline_ids);
  ASSERT_EQ(inline_ids.size(), 300u);
  // Each epoch is a permutation of the data, reshuffled differently.
  std::vector<int64_t> e1(inline_ids.begin(), inline_ids.begin() + 150);
  std::vector<int64_t> e2(inline_ids.begin() + 150, inline_ids.end());
  EXPECT_EQ(Sorted(e1), AllIds(3, 50));
  EXPECT_EQ(Sorted(e2), AllIds(3, 50));
  EXPECT_NE(e1, e2);
  EXPECT_NE(e1, AllIds(3, 50));
  o.seed = 43;
  EXPECT_NE(Drain(o), inline_ids);
}

TEST(PipelineTest, FileShardsPartitionTheData) {
  const std::string pat = WriteIdFiles("fshard", 5, 10);
  std::vector<int64_t> all;
  for (int i = 0; i < 2; ++i) {
    InputOptions o = CsvOptions(pat, 4);
    o.num_shards = 2;
    o.shard_index = i;
    o.shuffle_buffer_size = 8;
    auto p = Pipeline::Create(o);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ((*p)->files().size(), i == 0 ? 3u : 2u);  // files 0,2,4 / 1,3
    std::vector<int64_t> ids = Drain(o);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(Sorted(all), AllIds(5, 10));
}

TEST(PipelineTest, RecordShardsWhenFewerFilesThanShards) {
  const std::string pat = WriteIdFiles("rshard", 2, 10);
  std::vector<int64_t> all;
  for (int i = 0; i < 3; ++i) {
    InputOptions o = CsvOptions(pat, 3);
    o.num_shards = 3;
    o.shard_index = i;
    o.num_parallel_readers = 2;
    std::vector<int64_t> ids = Drain(o);
    EXPECT_EQ(ids.size(), i < 2 ? 7u : 6u);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(Sorted(all), AllIds(2, 10));
  InputOptions bad = CsvOptions(pat, 3);
  bad.num_shards = 3;
  bad.shard_index = 3;
  EXPECT_FALSE(Pipeline::Create(bad).ok());
}

TEST(PipelineTest, ShardDescriptionSaysHowTheInputIsShared) {
  const std::string pat = WriteIdFiles("describe", 5, 2);
  InputOptions o = CsvOptions(pat, 4);
  auto p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->shard_description(), "");
  o.num_shards = 2;
  o.shard_index = 1;
  p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->shard_description(), "shard 1 of 2 by file (2 of 5 files)");
  o.num_shards = 6;
  o.shard_index = 5;
  p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->shard_description(), "shard 5 of 6 by record (every 6th record of 5 files)");
  o.shard_policy = InputShardPolicy::kOff;
  p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->shard_description(), "shard 5 of 6 unsharded (all 5 files)");
  EXPECT_EQ((*p)->files().size(), 5u);
}

// shard "off": every shard reads all the data, each in its own order
// (seed + shard index); shard 0's order is the one-process order.
TEST(PipelineTest, ShardOffReadsEverythingInAnOrderPerShard) {
  const std::string pat = WriteIdFiles("off", 3, 20);
  InputOptions o = CsvOptions(pat, 5);
  o.shuffle_buffer_size = 60;
  const std::vector<int64_t> one_process = Drain(o);
  ASSERT_EQ(Sorted(one_process), AllIds(3, 20));
  o.shard_policy = InputShardPolicy::kOff;
  o.num_shards = 2;
  std::vector<std::vector<int64_t>> orders;
  for (int i = 0; i < 2; ++i) {
    o.shard_index = i;
    orders.push_back(Drain(o));
    EXPECT_EQ(Sorted(orders.back()), AllIds(3, 20)) << "shard " << i;
  }
  EXPECT_EQ(orders[0], one_process);
  EXPECT_NE(orders[1], orders[0]);
  // Shard 1 of seed 42 shuffles as one process with seed 43.
  InputOptions seed43 = CsvOptions(pat, 5);
  seed43.shuffle_buffer_size = 60;
  seed43.seed = 43;
  EXPECT_EQ(orders[1], Drain(seed43));
}

// Record shards are disjoint and complete, and each is shuffled with its
// own seed: shard 1 is not shard 0's order shifted by one record.
TEST(PipelineTest, ShuffledRecordShardsPartitionTheData) {
  const std::string pat = WriteIdFiles("rshuf", 1, 40);
  std::vector<int64_t> all;
  for (int i = 0; i < 2; ++i) {
    InputOptions o = CsvOptions(pat, 4);
    o.num_shards = 2;
    o.shard_index = i;
    o.shuffle_buffer_size = 20;
    std::vector<int64_t> ids = Drain(o);
    ASSERT_EQ(ids.size(), 20u);
    for (int64_t id : ids) EXPECT_EQ(id % 2, i) << "record " << id << " in shard " << i;
    all.insert(all.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(Sorted(all), AllIds(1, 40));
}

TEST(PipelineTest, DropRemainderAndEndOfInput) {
  const std::string pat = WriteIdFiles("drop", 1, 10);
  InputOptions o = CsvOptions(pat, 4);
  o.num_epochs = 2;  // 20 records: batches of 4 cross the epoch boundary
  std::vector<int64_t> sizes;
  Drain(o, &sizes);
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 4, 4, 4}));
  o.num_epochs = 1;
  sizes.clear();
  Drain(o, &sizes);
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
  o.drop_remainder = true;
  sizes.clear();
  Drain(o, &sizes);
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4}));
  // After the end, Next keeps saying so.
  auto p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*(*p)->Next()).has_value());
  for (int i = 0; i < 3; ++i) {
    auto b = (*p)->Next();
    ASSERT_TRUE(b.ok());
    EXPECT_FALSE(b->has_value());
  }
}

TEST(PipelineTest, RepeatForeverUntilCancelled) {
  const std::string pat = WriteIdFiles("forever", 1, 3);
  InputOptions o = CsvOptions(pat, 2);
  o.num_epochs = -1;
  o.prefetch_batches = 3;
  auto p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < 100; ++i) {
    auto b = (*p)->Next();
    ASSERT_TRUE(b.ok() && b->has_value());
    EXPECT_EQ(std::get<Tensor>((**b).features.at("id")).ints[0], (2 * i) % 3);
  }
  (*p)->Cancel();
  EXPECT_EQ((*p)->Next().status().code(), absl::StatusCode::kCancelled);
}

// An endless source of records "<n>,0" that counts what it hands out and
// notifies when the count reaches `notify_at`.
struct CountingSource {
  absl::Mutex mu;
  int64_t read ABSL_GUARDED_BY(mu) = 0;
  int64_t notify_at = 0;
  absl::Notification reached;
  bool reader_destroyed = false;  // written by the reader's destructor
};

class CountingReader : public RecordReader {
 public:
  explicit CountingReader(std::shared_ptr<CountingSource> source) : source_(std::move(source)) {}
  ~CountingReader() override { source_->reader_destroyed = true; }
  absl::StatusOr<bool> Next(std::string* record, RecordOrigin* origin) override {
    absl::MutexLock lock(&source_->mu);
    *record = absl::StrCat(source_->read, ",0");
    origin->file = "counting";
    if (++source_->read == source_->notify_at) source_->reached.Notify();
    return true;
  }

 private:
  std::shared_ptr<CountingSource> source_;
};

// The reader fills exactly the prefetch buffer and blocks there (it reads
// no further however long it waits), and destroying the pipeline then
// wakes and joins it.
TEST(PipelineTest, ReaderBlocksOnAFullPrefetchBufferAndDestroyJoinsIt) {
  const std::string path = WriteTestFile("destroy.csv", "id,x\n");
  InputOptions o = CsvOptions(path, 1);
  o.num_epochs = -1;
  o.prefetch_batches = 2;
  auto source = std::make_shared<CountingSource>();
  // One batch taken by Next() plus prefetch_batches waiting: 3 records.
  source->notify_at = 3;
  PipelineParts parts;
  parts.reader_factory = [source](const std::string&) -> absl::StatusOr<std::unique_ptr<RecordReader>> {
    return std::make_unique<CountingReader>(source);
  };
  auto p = Pipeline::Create(o, parts);
  ASSERT_TRUE(p.ok()) << p.status();
  auto first = (*p)->Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(std::get<Tensor>((**first).features.at("id")).ints, (std::vector<int64_t>{0}));
  ASSERT_TRUE(source->reached.WaitForNotificationWithTimeout(absl::Seconds(60)));
  p->reset();
  absl::MutexLock lock(&source->mu);
  EXPECT_EQ(source->read, 3);  // blocked at the bound: nothing read past it
  EXPECT_TRUE(source->reader_destroyed);
}

TEST(PipelineTest, ForeverOnEmptyInputEnds) {
  WriteTestFile("empty-0.csv", "id,x\n");
  InputOptions o = CsvOptions(TempDir() + "/empty-*.csv", 2);
  o.num_epochs = -1;
  EXPECT_TRUE(Drain(o).empty());
}

TEST(PipelineTest, ErrorsCarryFileAndLineThroughPrefetch) {
  const std::string path = WriteTestFile("err.csv", "id,x\n1,0.5\n2,0.5\n3,abc\n4,1\n");
  InputOptions o = CsvOptions(path, 2);
  o.prefetch_batches = 2;
  auto p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*(*p)->Next()).has_value());
  auto b = (*p)->Next();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), path + ":4: column 'x' (1): expected a float, got 'abc'");
  EXPECT_EQ((*p)->Next().status(), b.status());  // sticky
}

TEST(PipelineTest, ReaderErrorsPropagate) {
  const std::string path = WriteTestFile("open.csv", "id,x\n1,0.5\n2,\"open\n");
  InputOptions o = CsvOptions(path, 10);
  auto p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  auto b = (*p)->Next();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), path + ":3: reached the end of the file inside a quoted field");
}

TEST(PipelineTest, SkipPolicyCounts) {
  const std::string path =
      WriteTestFile("skip.csv", "id,x\n1,0.5\nbad,1\n3,0.5\n4\n5,1\n6,x\n7,1\n");
  InputOptions o = CsvOptions(path, 2);
  o.bad_record_policy = BadRecordPolicy::kSkip;
  auto p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok());
  std::vector<int64_t> ids;
  while (true) {
    auto b = (*p)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    const auto& t = std::get<Tensor>((**b).features.at("id")).ints;
    ids.insert(ids.end(), t.begin(), t.end());
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 3, 5, 7}));
  EXPECT_EQ((*p)->skipped_records(), 3);
}

TEST(PipelineTest, PatternMatchingNothing) {
  InputOptions o = CsvOptions(TempDir() + "/nothing-*.csv", 2);
  auto p = Pipeline::Create(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "$.files: no files match '" + TempDir() + "/nothing-*.csv'");
}

TEST(PipelineTest, ColumnCountMustMatchHeader) {
  const std::string path = WriteTestFile("hdr.csv", "a,b,c\n1,2,3\n");
  InputOptions o = CsvOptions(path, 2);
  auto p = Pipeline::Create(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "$.column_defaults: has 2 entries but there are 3 columns in the header of " + path);
}

TEST(PipelineTest, LabelKeyAndOptionsFromJson) {
  const std::string path = WriteTestFile("lab.csv", "1;0.5;a\n2;1.5;b\n");
  json spec = {{"format", "csv"},         {"files", {path}},
               {"batch_size", 2},         {"column_names", {"id", "x", "s"}},
               {"column_defaults", {0, json::array(), "z"}},
               {"field_delim", ";"},      {"label_key", "x"}};
  auto o = InputOptionsFromJson(spec, "$.train_input");
  ASSERT_TRUE(o.ok()) << o.status();
  auto p = Pipeline::Create(*o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto b = (*p)->Next();
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_TRUE((*b)->has_labels);
  EXPECT_EQ((*b)->labels.floats, (std::vector<float>{0.5f, 1.5f}));
  EXPECT_EQ(std::get<Tensor>((*b)->features.at("s")).strings,
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*b)->features.count("x"), 0u);
}

void ExpectJsonError(json spec, const std::string& want) {
  auto o = InputOptionsFromJson(spec, "$.train_input");
  ASSERT_FALSE(o.ok()) << spec.dump();
  EXPECT_EQ(o.status().message(), want);
}

TEST(InputOptionsFromJsonTest, ErrorsCarryTheJsonPath) {
  const json base = {{"format", "csv"}, {"files", {"a.csv"}}, {"batch_size", 2},
                     {"column_names", {"a"}}, {"column_defaults", {0}}};
  json j = base;
  j.erase("batch_size");
  ExpectJsonError(j, "$.train_input.batch_size: is required");
  j = base;
  j["field_delim"] = ";;";
  ExpectJsonError(j, "$.train_input.field_delim: expected one character (not a quote or line "
                     "break), got \";;\"");
  j = base;
  j["num_epochs"] = 0;
  ExpectJsonError(j, "$.train_input.num_epochs: must be >= 1, or -1 to repeat forever");
  j = base;
  j["column_defaults"] = {json{{"dtype", "float64"}}};
  ExpectJsonError(j, "$.train_input.column_defaults[0]: expected \"dtype\": \"float32\", "
                     "\"int64\" or \"string\"");
  j = base;
  j["column_names"] = {"a", "b"};
  ExpectJsonError(j, "$.train_input.column_defaults: has 1 entries but column_names has 2");
  ExpectJsonError({{"format", "idx"}, {"images", "i"}, {"batch_size", 1}},
                  "$.train_input.labels: is required for format \"idx\"");
  auto idx = InputOptionsFromJson({{"format", "idx"},
                                   {"images", "i"},
                                   {"labels", "l"},
                                   {"batch_size", 8},
                                   {"num_epochs", -1},
                                   {"seed", 7},
                                   {"scale_pixels", false}},
                                  "$.x");
  ASSERT_TRUE(idx.ok()) << idx.status();
  EXPECT_EQ(idx->num_epochs, -1);
  EXPECT_EQ(*idx->seed, 7u);
  EXPECT_FALSE(idx->scale_pixels);
}

TEST(PipelineTest, FashionMnistCountsAndShards) {
  InputOptions o;
  o.format = InputFormat::kIdx;
  o.images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  o.labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  o.batch_size = 256;
  o.shuffle_buffer_size = 1000;
  o.seed = 1;
  o.prefetch_batches = 4;
  int64_t total = 0;
  for (int shard = 0; shard < 3; ++shard) {
    o.num_shards = 3;
    o.shard_index = shard;
    auto p = Pipeline::Create(o);
    ASSERT_TRUE(p.ok()) << p.status();
    int64_t n = 0;
    while (true) {
      auto b = (*p)->Next();
      ASSERT_TRUE(b.ok()) << b.status();
      if (!b->has_value()) break;
      const Tensor& px = std::get<Tensor>((**b).features.at("pixels"));
      ASSERT_EQ(px.shape[1], 784);
      ASSERT_EQ(px.shape[0], (**b).labels.shape[0]);
      for (float v : px.floats) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
      n += (**b).batch_size;
    }
    EXPECT_EQ(n, shard == 0 ? 3334 : 3333);
    total += n;
  }
  EXPECT_EQ(total, 10000);

  o.images = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  o.labels = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";
  o.num_shards = 1;
  o.shard_index = 0;
  o.batch_size = 1000;
  o.drop_remainder = true;
  auto p = Pipeline::Create(o);
  ASSERT_TRUE(p.ok()) << p.status();
  int batches = 0;
  while (true) {
    auto b = (*p)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    ++batches;
  }
  EXPECT_EQ(batches, 60);
}

}  // namespace
}  // namespace estuary

namespace estuary {
namespace {

TEST(PipelineTest, TFRecordOfExamplesFromJson) {
  // Two gzip'd TFRecord files of Examples written here; the pipeline reads
  // them with the spec from the job's "features" object.
  for (int f = 0; f < 2; ++f) {
    std::vector<std::string> records;
    for (int r = 0; r < 5; ++r) {
      data::ExampleBuilder b;
      b.Int64s("id", {f * 100 + r}).Floats("x", {r * 1.5f, -1.0f}).Bytes("tags", {"a", "b"});
      if (r % 2 == 0) b.Int64s("label", {r % 3});
      records.push_back(b.Serialize());
    }
    io::TFRecordOptions o;
    o.compression = io::Compression::kGzip;
    ASSERT_TRUE(io::WriteTFRecordFile(absl::StrCat(testing::TempDir(), "/ex-", f, ".tfrecord.gz"),
                                      records, o)
                    .ok());
  }
  const json in = json::parse(absl::StrCat(R"({"format": "tfrecord", "compression": "gzip",
      "files": [")", testing::TempDir(), R"(/ex-*.tfrecord.gz"], "batch_size": 4,
      "label_key": "label",
      "features": {"id": {"dtype": "int64"}, "x": {"dtype": "float32", "shape": [2]},
                   "tags": {"dtype": "string", "var_len": true},
                   "label": {"dtype": "int64", "default": 7}}})"));
  absl::StatusOr<InputOptions> opts = InputOptionsFromJson(in, "$.train_input");
  ASSERT_TRUE(opts.ok()) << opts.status();
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Create(*opts);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<int64_t> ids, labels;
  int batches = 0;
  while (true) {
    absl::StatusOr<std::optional<Batch>> b = (*p)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    ++batches;
    const Batch& batch = **b;
    const Tensor& id = std::get<Tensor>(batch.features.at("id"));
    ids.insert(ids.end(), id.ints.begin(), id.ints.end());
    labels.insert(labels.end(), batch.labels.ints.begin(), batch.labels.ints.end());
    EXPECT_EQ(std::get<Tensor>(batch.features.at("x")).shape,
              (std::vector<int64_t>{batch.batch_size, 2}));
    EXPECT_EQ(std::get<SparseTensor>(batch.features.at("tags")).max_len, 2);
    EXPECT_EQ(batch.features.count("label"), 0u);
  }
  EXPECT_EQ(batches, 3);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 1, 2, 3, 4, 100, 101, 102, 103, 104}));
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 7, 2, 7, 1, 0, 7, 2, 7, 1}));
}

TEST(PipelineTest, TFRecordSkipPolicyDropsAndCountsBadExamples) {
  std::vector<std::string> records;
  for (int r = 0; r < 10; ++r) {
    data::ExampleBuilder b;
    if (r % 4 != 1) b.Floats("x", {static_cast<float>(r)});  // records 1, 5, 9 lack "x"
    records.push_back(b.Serialize());
  }
  records[6] = "not a protobuf \xff\xff";
  ASSERT_TRUE(io::WriteTFRecordFile(testing::TempDir() + "/skip.tfrecord", records).ok());
  const json in = json::parse(absl::StrCat(R"({"format": "tfrecord", "files": [")",
      testing::TempDir(), R"(/skip.tfrecord"], "batch_size": 4, "bad_record_policy": "skip",
      "features": {"x": {"dtype": "float32"}}})"));
  absl::StatusOr<InputOptions> opts = InputOptionsFromJson(in, "$.train_input");
  ASSERT_TRUE(opts.ok()) << opts.status();
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Create(*opts);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<float> xs;
  while (true) {
    absl::StatusOr<std::optional<Batch>> b = (*p)->Next();
    ASSERT_TRUE(b.ok()) << b.status();
    if (!b->has_value()) break;
    const Tensor& x = std::get<Tensor>((*b)->features.at("x"));
    xs.insert(xs.end(), x.floats.begin(), x.floats.end());
  }
  EXPECT_EQ(xs, (std::vector<float>{0, 2, 3, 4, 7, 8}));
  EXPECT_EQ((*p)->skipped_records(), 4);
  // Without the policy the first bad record fails the pipeline, named.
  opts->bad_record_policy = BadRecordPolicy::kFail;
  p = Pipeline::Create(*opts);
  ASSERT_TRUE(p.ok());
  absl::StatusOr<std::optional<Batch>> b = (*p)->Next();
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("skip.tfrecord: record 1"), absl::string_view::npos)
      << b.status();
}

TEST(PipelineTest, TFRecordNeedsFeatures) {
  const json in = json::parse(R"({"format": "tfrecord", "files": ["x"], "batch_size": 4})");
  absl::StatusOr<InputOptions> opts = InputOptionsFromJson(in, "$.eval_input");
  ASSERT_FALSE(opts.ok());
  EXPECT_NE(opts.status().message().find("$.eval_input.features: is required"), absl::string_view::npos)
      << opts.status();
  const json bad = json::parse(R"({"format": "tfrecord", "files": ["x"], "batch_size": 4,
      "features": {"a": {"dtype": "float64"}}})");
  opts = InputOptionsFromJson(bad, "$.eval_input");
  ASSERT_FALSE(opts.ok());
  EXPECT_NE(opts.status().message().find("$.eval_input.features.a.dtype: 'float64' is not one of"),
            absl::string_view::npos)
      << opts.status();
}

}  // namespace
}  // namespace estuary
