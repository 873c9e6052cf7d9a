#include "common/tf_bundle/tensor_bundle.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/io/env.h"
#include "common/io/fault_injecting_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary::tf_bundle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Written by TF 2.15's SaveV2 (testdata/make_golden.py).
constexpr char kGolden[] = "common/tf_bundle/testdata/golden";
constexpr char kInt32[] = "common/tf_bundle/testdata/int32";

std::string NewDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "'").c_str()), 0);
  EXPECT_TRUE(io::Env::Default().MakeDirs(dir).ok());
  return dir;
}

std::string ReadFile(const std::string& path) {
  absl::StatusOr<std::string> s = io::ReadWholeFile(io::Env::Default(), path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

void WriteFile(const std::string& path, const std::string& data) {
  ASSERT_TRUE(io::WriteFileDurably(io::Env::Default(), path, data).ok());
}

// The tensors of the golden bundle, as make_golden.py writes them.
std::map<std::string, Tensor> GoldenTensors() {
  return {
      {"dnn/hiddenlayer_0/kernel", Tensor::Floats({2, 3}, {1.5f, -2.f, 3.25f, 0.f, 1e-3f, -7.f})},
      {"dnn/logits/bias", Tensor::Floats({}, {0.125f})},
      {"empty", Tensor::Floats({0}, {})},
      {"global_step", Tensor::Ints({}, {1000})},
      {"vocab", Tensor::Strings({3}, {"male", "", "a longer string \xc3\xa9"})},
  };
}

void ExpectSame(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.floats, b.floats);
  EXPECT_EQ(a.ints, b.ints);
  EXPECT_EQ(a.strings, b.strings);
}

TEST(TensorBundleTest, FileNames) {
  EXPECT_EQ(IndexFileName("d/model.ckpt-5"), "d/model.ckpt-5.index");
  EXPECT_EQ(DataFileName("d/model.ckpt-5", 1, 4), "d/model.ckpt-5.data-00001-of-00004");
}

TEST(TensorBundleTest, ReadsWhatTensorFlowWrote) {
  absl::StatusOr<std::unique_ptr<BundleReader>> reader = BundleReader::Open(kGolden);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->num_shards(), 1);
  std::vector<std::string> names;
  for (const TensorInfo& t : (*reader)->tensors()) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("dnn/hiddenlayer_0/kernel", "dnn/logits/bias", "empty",
                                 "global_step", "vocab"));
  const TensorInfo& kernel = (*reader)->tensors()[0];
  EXPECT_TRUE(kernel.supported);
  EXPECT_EQ(kernel.dtype_name, "float32");
  EXPECT_THAT(kernel.shape, ElementsAre(2, 3));
  EXPECT_EQ((*reader)->tensors()[3].dtype_name, "int64");
  EXPECT_TRUE((*reader)->tensors()[3].shape.empty());

  const std::map<std::string, Tensor> want = GoldenTensors();
  for (const auto& [name, t] : want) {
    absl::StatusOr<Tensor> got = (*reader)->Read(name);
    ASSERT_TRUE(got.ok()) << got.status();
    SCOPED_TRACE(name);
    ExpectSame(*got, t);
  }
  absl::StatusOr<std::map<std::string, Tensor>> all = (*reader)->ReadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), want.size());
  ExpectSame(all->at("vocab"), want.at("vocab"));
}

TEST(TensorBundleTest, WritesTheBytesTensorFlowWrites) {
  const std::string prefix = NewDir("same_bytes") + "/model.ckpt-7";
  BundleWriter writer;
  for (const auto& [name, t] : GoldenTensors()) ASSERT_TRUE(writer.Add(name, t).ok());
  ASSERT_TRUE(writer.Finish(prefix).ok());
  EXPECT_EQ(ReadFile(IndexFileName(prefix)), ReadFile(IndexFileName(kGolden)));
  EXPECT_EQ(ReadFile(DataFileName(prefix, 0, 1)), ReadFile(DataFileName(kGolden, 0, 1)));
}

TEST(TensorBundleTest, RoundTripsAndLeavesNoTemporaryFiles) {
  const std::string dir = NewDir("round_trip");
  BundleWriter writer;
  RowMatrixXf big = RowMatrixXf::Random(300, 70);
  ASSERT_TRUE(writer.Add("big", Tensor::Floats({300, 70}, {big.data(), big.data() + big.size()})).ok());
  // Enough entries for several index blocks' worth of restarts.
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(writer.Add(absl::StrCat("v", i), Tensor::Ints({2}, {i, -i})).ok());
  }
  ASSERT_TRUE(writer.Finish(dir + "/sub/model.ckpt-1").ok());
  absl::StatusOr<std::unique_ptr<BundleReader>> reader = BundleReader::Open(dir + "/sub/model.ckpt-1");
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->tensors().size(), 101u);
  absl::StatusOr<Tensor> got = (*reader)->Read("big");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->floats, std::vector<float>(big.data(), big.data() + big.size()));
  got = (*reader)->Read("v42");
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->ints, ElementsAre(42, -42));
  absl::StatusOr<std::vector<std::string>> files = io::Env::Default().GetChildren(dir + "/sub");
  ASSERT_TRUE(files.ok());
  EXPECT_THAT(*files, ::testing::UnorderedElementsAre("model.ckpt-1.index",
                                                     "model.ckpt-1.data-00000-of-00001"));
}

TEST(TensorBundleTest, BadAdds) {
  BundleWriter writer;
  EXPECT_EQ(writer.Add("", Tensor::Floats({}, {1})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(writer.Add("x", Tensor::Floats({2, 2}, {1, 2, 3})).message(),
              HasSubstr("tensor 'x'"));
  ASSERT_TRUE(writer.Add("x", Tensor::Floats({1}, {1})).ok());
  EXPECT_THAT(writer.Add("x", Tensor::Floats({1}, {1})).message(), HasSubstr("added twice"));
}

TEST(TensorBundleTest, ShardsWrittenApartAndIndexedByTheChief) {
  const std::string prefix = NewDir("sharded") + "/model.ckpt-3";
  absl::StatusOr<BundleEntries> a =
      WriteDataShard(prefix, 0, 2, {{"a", Tensor::Floats({2}, {1, 2})}});
  absl::StatusOr<BundleEntries> b = WriteDataShard(
      prefix, 1, 2, {{"b", Tensor::Ints({}, {5})}, {"c", Tensor::Floats({1, 1}, {3})}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->at("c").shard_id(), 1);
  // A missing shard: no index.
  absl::Status missing = WriteIndex(prefix + "x", 2, {*a, *b});
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition) << missing;
  EXPECT_FALSE(io::Env::Default().FileExists(IndexFileName(prefix + "x")));
  EXPECT_EQ(WriteIndex(prefix, 2, {*a, *a}).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteIndex(prefix, 2, {*a, *b}).ok());
  absl::StatusOr<std::unique_ptr<BundleReader>> reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->num_shards(), 2);
  absl::StatusOr<std::map<std::string, Tensor>> all = (*reader)->ReadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(all->at("a").floats, ElementsAre(1, 2));
  EXPECT_THAT(all->at("b").ints, ElementsAre(5));
  EXPECT_THAT(all->at("c").floats, ElementsAre(3));
}

TEST(TensorBundleTest, UnsupportedDtypeIsListedButNotRead) {
  absl::StatusOr<std::unique_ptr<BundleReader>> reader = BundleReader::Open(kInt32);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_EQ((*reader)->tensors().size(), 2u);
  EXPECT_EQ((*reader)->tensors()[0].dtype_name, "int32");
  EXPECT_FALSE((*reader)->tensors()[0].supported);
  absl::StatusOr<Tensor> counts = (*reader)->Read("counts");
  EXPECT_EQ(counts.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(counts.status().message(),
              HasSubstr("testdata/int32.index: tensor 'counts': dtype int32 is not supported"));
  EXPECT_TRUE((*reader)->Read("weights").ok());
  EXPECT_EQ((*reader)->ReadAll().status().code(), absl::StatusCode::kUnimplemented);
}

TEST(TensorBundleTest, MissingFilesAndTensors) {
  const std::string dir = NewDir("missing");
  EXPECT_EQ(BundleReader::Open(dir + "/nope").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::unique_ptr<BundleReader>> reader = BundleReader::Open(kGolden);
  ASSERT_TRUE(reader.ok());
  absl::StatusOr<Tensor> t = (*reader)->Read("nope");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr("golden.index: tensor 'nope'"));

  const std::string prefix = dir + "/model.ckpt-1";
  WriteFile(IndexFileName(prefix), ReadFile(IndexFileName(kGolden)));
  reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok());
  t = (*reader)->Read("global_step");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr("model.ckpt-1.data-00000-of-00001"));
}

TEST(TensorBundleTest, TruncatedAndBitFlippedFilesAreDataLossNamingFileAndTensor) {
  const std::string dir = NewDir("corrupt");
  const std::string index = ReadFile(IndexFileName(kGolden));
  const std::string data = ReadFile(DataFileName(kGolden, 0, 1));

  // Truncated data file: the last tensor (vocab) runs past its end.
  const std::string truncated = dir + "/truncated";
  WriteFile(IndexFileName(truncated), index);
  WriteFile(DataFileName(truncated, 0, 1), data.substr(0, data.size() - 3));
  absl::StatusOr<std::unique_ptr<BundleReader>> reader = BundleReader::Open(truncated);
  ASSERT_TRUE(reader.ok());
  absl::StatusOr<Tensor> t = (*reader)->Read("vocab");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(t.status().message(),
              HasSubstr("truncated.data-00000-of-00001: tensor 'vocab': ends at byte"));
  EXPECT_TRUE((*reader)->Read("global_step").ok());

  // One flipped bit in every byte of the data file is found.
  const std::string flipped = dir + "/flipped";
  WriteFile(IndexFileName(flipped), index);
  for (size_t i = 0; i < data.size(); ++i) {
    std::string bad = data;
    bad[i] ^= 0x10;
    WriteFile(DataFileName(flipped, 0, 1), bad);
    reader = BundleReader::Open(flipped);
    ASSERT_TRUE(reader.ok());
    absl::StatusOr<std::map<std::string, Tensor>> all = (*reader)->ReadAll();
    EXPECT_EQ(all.status().code(), absl::StatusCode::kDataLoss) << "byte " << i;
    EXPECT_THAT(all.status().message(), HasSubstr("flipped.data-00000-of-00001: tensor '"));
  }

  // A truncated or bit-flipped index.
  const std::string bad_index = dir + "/bad_index";
  WriteFile(DataFileName(bad_index, 0, 1), data);
  for (size_t cut : {size_t{0}, size_t{10}, index.size() - 1}) {
    WriteFile(IndexFileName(bad_index), index.substr(0, cut));
    absl::Status s = BundleReader::Open(bad_index).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(s.message(), HasSubstr("bad_index.index: not a TF checkpoint index"));
  }
  for (size_t i = 0; i < index.size(); ++i) {
    std::string bad = index;
    bad[i] ^= 0x01;
    WriteFile(IndexFileName(bad_index), bad);
    absl::StatusOr<std::unique_ptr<BundleReader>> r = BundleReader::Open(bad_index);
    // Every byte that is read is covered by a block checksum or the magic;
    // a flip elsewhere (the empty metaindex block, which neither TF nor
    // leveldb reads without a filter policy; the footer's padding) changes
    // nothing read.
    if (r.ok()) {
      absl::StatusOr<std::map<std::string, Tensor>> all = (*r)->ReadAll();
      ASSERT_TRUE(all.ok()) << "byte " << i << ": " << all.status();
      EXPECT_EQ(all->size(), 5u);
      ExpectSame(all->at("vocab"), GoldenTensors().at("vocab"));
      continue;
    }
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << "byte " << i << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("bad_index.index"));
  }
}

// An index entry whose shape claims more elements than its bytes can hold
// (a string tensor of 2^40 strings in 9 bytes; a float shape whose element
// count overflows) is DataLoss naming the data file and the tensor, before
// anything is allocated for the elements.
TEST(TensorBundleTest, AShapeClaimingMoreThanTheEntryHoldsIsDataLoss) {
  const std::string prefix = NewDir("claims") + "/model.ckpt-1";
  absl::StatusOr<BundleEntries> entries = WriteDataShard(
      prefix, 0, 1,
      {{"s", Tensor::Strings({1}, {"x"})}, {"f", Tensor::Floats({2}, {1.0f, 2.0f})}});
  ASSERT_TRUE(entries.ok()) << entries.status();
  entries->at("s").mutable_shape()->mutable_dim(0)->set_size(int64_t{1} << 40);
  auto* dims = entries->at("f").mutable_shape();
  dims->mutable_dim(0)->set_size(int64_t{1} << 62);
  dims->add_dim()->set_size(int64_t{1} << 62);
  ASSERT_TRUE(WriteIndex(prefix, 1, {*entries}).ok());
  absl::StatusOr<std::unique_ptr<BundleReader>> reader = BundleReader::Open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<Tensor> s = (*reader)->Read("s");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  EXPECT_THAT(s.status().message(),
              HasSubstr("model.ckpt-1.data-00000-of-00001: tensor 's': shape claims "
                        "1099511627776 elements in"));
  absl::StatusOr<Tensor> f = (*reader)->Read("f");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss) << f.status();
  EXPECT_THAT(f.status().message(), HasSubstr("tensor 'f': the shape's element count overflows"));
}

TEST(TensorBundleTest, AFailedWriteLeavesNoIndex) {
  const std::string prefix = NewDir("faults") + "/model.ckpt-1";
  for (io::FaultOp op : {io::FaultOp::kWrite, io::FaultOp::kSync, io::FaultOp::kRename}) {
    for (int n = 1; n <= 2; ++n) {
      io::FaultInjectingEnv env;
      env.FailNth(op, n);
      BundleWriterOptions options;
      options.env = &env;
      BundleWriter writer(options);
      ASSERT_TRUE(writer.Add("w", Tensor::Floats({1}, {1})).ok());
      absl::Status s = writer.Finish(prefix);
      if (env.injected() == 0) continue;
      EXPECT_FALSE(s.ok());
      EXPECT_FALSE(io::Env::Default().FileExists(IndexFileName(prefix)))
          << io::FaultOpName(op) << " " << n;
      if (io::Env::Default().FileExists(IndexFileName(prefix))) return;
    }
  }
}

}  // namespace
}  // namespace estuary::tf_bundle
