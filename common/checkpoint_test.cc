#include "common/checkpoint.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crc32c.h"
#include "common/io/env.h"
#include "common/io/fault_injecting_env.h"
#include "common/io/tfrecord.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace estuary::checkpoint {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string NewDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "'");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

std::string ReadFile(const std::string& path) { return *io::ReadWholeFile(io::Env::Default(), path); }

void WriteFile(const std::string& path, const std::string& data) {
  ASSERT_TRUE(io::WriteFileDurably(io::Env::Default(), path, data).ok());
}

bool Exists(const std::string& path) { return io::Env::Default().FileExists(path); }

Variables MakeVars(int64_t step) {
  Variables v;
  RowMatrixXf w(3, 4);
  for (int i = 0; i < w.size(); ++i) w.data()[i] = 0.25f * i + step;
  v.floats["dense/kernel"] = w;
  RowMatrixXf b(1, 4);
  b << 1, -2, 3.5f, static_cast<float>(step);
  v.floats["dense/bias"] = b;
  v.floats["empty"] = RowMatrixXf(0, 5);
  v.ints["global_step"] = step;
  return v;
}

void ExpectSameVars(const Variables& a, const Variables& b) {
  ASSERT_EQ(a.floats.size(), b.floats.size());
  for (const auto& [name, m] : a.floats) {
    ASSERT_TRUE(b.floats.count(name)) << name;
    const RowMatrixXf& o = b.floats.at(name);
    ASSERT_EQ(m.rows(), o.rows()) << name;
    ASSERT_EQ(m.cols(), o.cols()) << name;
    EXPECT_TRUE(m == o) << name;
  }
  EXPECT_EQ(a.ints, b.ints);
}

TEST(CheckpointTest, RoundTrip) {
  const std::string dir = NewDir("round_trip");
  const Variables vars = MakeVars(1000);
  absl::StatusOr<std::string> prefix = Save(dir, 1000, vars);
  ASSERT_TRUE(prefix.ok()) << prefix.status();
  EXPECT_EQ(*prefix, dir + "/model.ckpt-1000");
  EXPECT_TRUE(Exists(dir + "/model.ckpt-1000.data-00000-of-00001"));
  EXPECT_TRUE(Exists(dir + "/model.ckpt-1000.manifest"));

  absl::StatusOr<Variables> restored = Restore(*prefix);
  ASSERT_TRUE(restored.ok()) << restored.status();
  ExpectSameVars(vars, *restored);

  absl::StatusOr<RestoredCheckpoint> latest = RestoreLatest(dir);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->step, 1000);
  ExpectSameVars(vars, latest->vars);
  EXPECT_EQ(*LatestStep(dir), 1000);

  const std::string state = ReadFile(dir + "/checkpoint");
  EXPECT_THAT(state, HasSubstr("model_checkpoint_path: \"model.ckpt-1000\"\n"));
  EXPECT_THAT(state, HasSubstr("all_model_checkpoint_paths: \"model.ckpt-1000\"\n"));

  absl::StatusOr<Manifest> manifest = ReadManifest(*prefix);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->step(), 1000);
  ASSERT_EQ(manifest->shards_size(), 1);
  EXPECT_EQ(manifest->shards(0).tensors_size(), 4);
}

TEST(CheckpointTest, NoCheckpointIsNotFound) {
  const std::string dir = NewDir("none");
  EXPECT_TRUE(absl::IsNotFound(LatestStep(dir).status()));
  EXPECT_TRUE(absl::IsNotFound(RestoreLatest(dir).status()));
  absl::StatusOr<std::vector<CheckpointInfo>> list = ListCheckpoints(dir);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST(CheckpointTest, RejectsNameInBothMaps) {
  Variables v = MakeVars(1);
  v.ints["dense/bias"] = 3;
  EXPECT_TRUE(absl::IsInvalidArgument(Save(NewDir("both"), 1, v).status()));
}

TEST(CheckpointTest, KeepMaxDeletesOldest) {
  const std::string dir = NewDir("keep_max");
  for (int64_t step : {100, 200, 300, 400}) {
    ASSERT_TRUE(Save(dir, step, MakeVars(step), {.keep_checkpoint_max = 2}).ok());
  }
  std::vector<int64_t> steps;
  const std::vector<CheckpointInfo> list = *ListCheckpoints(dir);
  for (const CheckpointInfo& c : list) steps.push_back(c.step);
  EXPECT_THAT(steps, ElementsAre(300, 400));
  EXPECT_FALSE(Exists(dir + "/model.ckpt-100.data-00000-of-00001"));
  EXPECT_FALSE(Exists(dir + "/model.ckpt-200.manifest"));
  absl::StatusOr<std::optional<CheckpointState>> state = ReadCheckpointState(dir);
  ASSERT_TRUE(state.ok() && state->has_value());
  EXPECT_EQ((*state)->model_checkpoint_path, "model.ckpt-400");
  EXPECT_THAT((*state)->all_model_checkpoint_paths, ElementsAre("model.ckpt-300", "model.ckpt-400"));
  EXPECT_EQ((*state)->all_model_checkpoint_timestamps.size(), 2u);
}

TEST(CheckpointTest, MayDeleteKeepsACheckpointUntilALaterCommit) {
  const std::string dir = NewDir("may_delete");
  std::set<int64_t> in_use;
  std::vector<int64_t> asked;
  SaveOptions options{.keep_checkpoint_max = 1};
  options.may_delete = [&](int64_t step) {
    asked.push_back(step);
    return in_use.count(step) == 0;
  };
  const auto steps_on_disk = [&] {
    std::vector<int64_t> steps;
    const std::vector<CheckpointInfo> list = *ListCheckpoints(dir);
    for (const CheckpointInfo& c : list) steps.push_back(c.step);
    return steps;
  };
  ASSERT_TRUE(Save(dir, 100, MakeVars(100), options).ok());
  EXPECT_TRUE(asked.empty());
  in_use = {100};
  ASSERT_TRUE(Save(dir, 200, MakeVars(200), options).ok());
  EXPECT_THAT(asked, ElementsAre(100));
  EXPECT_THAT(steps_on_disk(), ElementsAre(100, 200));
  // The kept one stays complete and readable; the state lists the newest.
  EXPECT_TRUE(Restore(dir + "/model.ckpt-100").ok());
  EXPECT_THAT((*ReadCheckpointState(dir))->all_model_checkpoint_paths,
              ElementsAre("model.ckpt-200"));
  // Still in use: kept again; 200 (free) goes; a kept one never costs a newer one.
  asked.clear();
  ASSERT_TRUE(Save(dir, 300, MakeVars(300), options).ok());
  EXPECT_THAT(asked, ElementsAre(100, 200));
  EXPECT_THAT(steps_on_disk(), ElementsAre(100, 300));
  EXPECT_TRUE(Exists(dir + "/model.ckpt-100.data-00000-of-00001"));
  // Free again: the next commit deletes it.
  in_use.clear();
  asked.clear();
  ASSERT_TRUE(Save(dir, 400, MakeVars(400), options).ok());
  EXPECT_THAT(asked, ElementsAre(100, 300));
  EXPECT_THAT(steps_on_disk(), ElementsAre(400));
  EXPECT_FALSE(Exists(dir + "/model.ckpt-100.data-00000-of-00001"));
  EXPECT_THAT((*ReadCheckpointState(dir))->all_model_checkpoint_paths,
              ElementsAre("model.ckpt-400"));
}

TEST(CheckpointTest, KeepMaxZeroKeepsAll) {
  const std::string dir = NewDir("keep_all");
  for (int64_t step = 1; step <= 7; ++step) {
    ASSERT_TRUE(Save(dir, step, MakeVars(step), {.keep_checkpoint_max = 0}).ok());
  }
  EXPECT_EQ(ListCheckpoints(dir)->size(), 7u);
  EXPECT_EQ((*ReadCheckpointState(dir))->all_model_checkpoint_paths.size(), 7u);
}

// Flips one byte inside a tensor's data; returns the shard path.
std::string CorruptTensor(const std::string& prefix, const std::string& tensor) {
  Manifest m = *ReadManifest(prefix);
  for (const auto& t : m.shards(0).tensors()) {
    if (t.name() != tensor) continue;
    const std::string path = absl::StrCat(prefix, ".data-00000-of-00001");
    std::string data = ReadFile(path);
    data[t.offset() + 12 + 1] ^= 0x40;  // inside the data (after 12 header bytes)
    WriteFile(path, data);
    return path;
  }
  ADD_FAILURE() << "no tensor " << tensor;
  return "";
}

TEST(CheckpointTest, CorruptByteIsDataLossNamingTensorAndFallsBack) {
  const std::string dir = NewDir("corrupt");
  ASSERT_TRUE(Save(dir, 10, MakeVars(10)).ok());
  ASSERT_TRUE(Save(dir, 20, MakeVars(20)).ok());
  const std::string path = CorruptTensor(dir + "/model.ckpt-20", "dense/kernel");
  absl::StatusOr<Variables> r = Restore(dir + "/model.ckpt-20");
  ASSERT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  // The file once, then the tensor and the problem.
  const std::string message(r.status().message());
  EXPECT_EQ(message.find(path), 0u) << message;
  EXPECT_EQ(message.find("model.ckpt-20", path.size()), std::string::npos) << message;
  EXPECT_THAT(message, HasSubstr("tensor 'dense/kernel'"));
  EXPECT_THAT(message, HasSubstr("checksum mismatch"));

  absl::StatusOr<RestoredCheckpoint> latest = RestoreLatest(dir);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->step, 10);
  ExpectSameVars(MakeVars(10), latest->vars);
}

TEST(CheckpointTest, TensorChecksumCatchesConsistentlyReframedData) {
  // Corrupt the data and fix up the TFRecord framing CRC: only the tensor's
  // own crc32c in the manifest catches it.
  const std::string dir = NewDir("reframed");
  ASSERT_TRUE(Save(dir, 5, MakeVars(5)).ok());
  const std::string prefix = dir + "/model.ckpt-5";
  Manifest m = *ReadManifest(prefix);
  const CheckpointTensorEntry* bias = nullptr;
  for (const auto& t : m.shards(0).tensors()) {
    if (t.name() == "dense/bias") bias = &t;
  }
  ASSERT_NE(bias, nullptr);
  const std::string path = prefix + ".data-00000-of-00001";
  std::string file = ReadFile(path);
  const size_t data = bias->offset() + 12;
  file[data + 2] ^= 0x01;
  const uint32_t masked =
      crc32c::MaskCrc(crc32c::Value(file.data() + data, bias->size_bytes()));
  std::memcpy(&file[data + bias->size_bytes()], &masked, 4);  // little endian
  WriteFile(path, file);
  absl::Status s = Restore(prefix).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensor 'dense/bias': checksum mismatch"));
}

// Replaces the checkpoint's manifest with `m` (crafted).
void RewriteManifest(const std::string& prefix, const Manifest& m) {
  auto writer = io::TFRecordWriter::Create(ManifestFileName(prefix));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Write(m.SerializeAsString()).ok());
  ASSERT_TRUE((*writer)->Close().ok());
}

// Caught by UBSan in fuzz/checkpoint_fuzzer (fuzz/corpus/checkpoint_fuzzer/
// crash-shape-overflow): a manifest's shape whose byte size overflows
// int64 wrapped around to the record's size (signed overflow) and then
// sized a matrix of 2^64 bytes.
TEST(CheckpointTest, ManifestShapeOverflowIsDataLoss) {
  const std::string dir = NewDir("shape_overflow");
  Variables vars;
  vars.floats.emplace("w", RowMatrixXf(0, 4));
  ASSERT_TRUE(Save(dir, 1, vars).ok());
  const std::string prefix = dir + "/model.ckpt-1";
  Manifest m = *ReadManifest(prefix);
  for (auto& t : *m.mutable_shards(0)->mutable_tensors()) {
    if (t.name() == "w") t.set_shape(0, int64_t{1} << 62);
  }
  ASSERT_NO_FATAL_FAILURE(RewriteManifest(prefix, m));
  absl::Status s = Restore(prefix).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensor 'w': bad dtype/shape/size"));
}

// Found by fuzz/checkpoint_fuzzer (fuzz/corpus/checkpoint_fuzzer/
// crash-partition-alloc): a row partition of one 1024-float row whose
// manifest claims it is 1 of 2^31 - 1 partitions of a 2^31 - 1 row variable
// passed the record-size check, and the whole variable (8 TiB) was
// allocated before anything noticed the other partitions are missing.
TEST(CheckpointTest, PartitionClaimingMoreThanTheFilesHoldIsDataLossBeforeAllocating) {
  const std::string dir = NewDir("partition_alloc");
  Variables part;
  part.floats["emb"] = RowMatrixXf::Constant(1, 1024, 0.25f);
  absl::StatusOr<ShardEntry> e = WriteShard(dir, 3, 0, 1, part, {{"emb", {1, 0, 1}}});
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_TRUE(CommitCheckpoint(dir, 3, {*e}).ok());
  const std::string prefix = CheckpointPrefix(dir, 3);
  ASSERT_TRUE(Restore(prefix).ok());
  Manifest m = *ReadManifest(prefix);
  constexpr int32_t kCount = std::numeric_limits<int32_t>::max();
  for (auto& t : *m.mutable_shards(0)->mutable_tensors()) {
    if (t.name() != "emb") continue;
    t.set_partition_count(kCount);
    t.set_partition_full_rows(kCount);
  }
  ASSERT_NO_FATAL_FAILURE(RewriteManifest(prefix, m));
  absl::Status s = Restore(prefix).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  const std::string message(s.message());
  EXPECT_EQ(message.find(prefix + ".data-00000-of-00001"), 0u) << message;
  EXPECT_THAT(message, HasSubstr("tensor 'emb': row partition 0 of 2147483647 claims a "
                                 "2147483647 x 1024 variable"));
  EXPECT_THAT(message, HasSubstr("more than the checkpoint's data files hold"));
}

TEST(CheckpointTest, TruncatedShardNamesTensor) {
  const std::string dir = NewDir("truncated");
  ASSERT_TRUE(Save(dir, 5, MakeVars(5)).ok());
  const std::string path = dir + "/model.ckpt-5.data-00000-of-00001";
  std::string data = ReadFile(path);
  data.resize(data.size() - 10);
  WriteFile(path, data);
  absl::Status s = Restore(dir + "/model.ckpt-5").status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("tensor 'global_step'"));
}

TEST(CheckpointTest, ShardedWriteAndMissingShard) {
  const std::string dir = NewDir("sharded");
  Variables a, b, c;
  a.floats["ps0/w"] = RowMatrixXf::Constant(2, 2, 1.5f);
  a.ints["global_step"] = 77;
  b.floats["ps1/w"] = RowMatrixXf::Constant(3, 1, -2.0f);
  c.floats["ps2/emb"] = RowMatrixXf::Constant(5, 2, 4.0f);
  std::vector<ShardEntry> entries;
  int i = 0;
  for (const Variables* v : {&a, &b, &c}) {
    absl::StatusOr<ShardEntry> e = WriteShard(dir, 77, i++, 3, *v);
    ASSERT_TRUE(e.ok()) << e.status();
    entries.push_back(*e);
  }
  // The coordinator can rebuild the entries from the files.
  for (int k = 0; k < 3; ++k) {
    absl::StatusOr<ShardEntry> e = ReadShardEntry(dir, 77, k, 3);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->SerializeAsString(), entries[k].SerializeAsString());
  }
  // Not committed yet: not a checkpoint.
  EXPECT_TRUE(absl::IsNotFound(LatestStep(dir).status()));
  // Entries in any order.
  std::swap(entries[0], entries[2]);
  absl::StatusOr<std::string> prefix = CommitCheckpoint(dir, 77, entries);
  ASSERT_TRUE(prefix.ok()) << prefix.status();
  absl::StatusOr<Variables> r = Restore(*prefix);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->floats.size(), 3u);
  EXPECT_EQ(r->ints.at("global_step"), 77);
  EXPECT_TRUE(r->floats.at("ps2/emb") == c.floats.at("ps2/emb"));

  const std::string shard1 = dir + "/model.ckpt-77.data-00001-of-00003";
  ASSERT_TRUE(io::Env::Default().DeleteFile(shard1).ok());
  absl::Status s = Restore(*prefix).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(shard1));
  EXPECT_THAT(std::string(s.message()), HasSubstr("missing shard 1 of 3"));
  // Committing without a shard file fails naming it.
  s = CommitCheckpoint(dir, 77, entries).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(shard1));
  // A missing entry.
  entries.pop_back();
  EXPECT_FALSE(CommitCheckpoint(dir, 77, entries).ok());
}

TEST(CheckpointTest, IncompleteLatestIsSkipped) {
  const std::string dir = NewDir("incomplete");
  ASSERT_TRUE(Save(dir, 1, MakeVars(1)).ok());
  ASSERT_TRUE(Save(dir, 2, MakeVars(2)).ok());
  // A shard without a manifest is not a checkpoint.
  ASSERT_TRUE(WriteShard(dir, 3, 0, 1, MakeVars(3)).ok());
  EXPECT_EQ(*LatestStep(dir), 2);
  // The state names a checkpoint whose manifest vanished: fall back.
  ASSERT_TRUE(io::Env::Default().DeleteFile(dir + "/model.ckpt-2.manifest").ok());
  EXPECT_EQ(*LatestStep(dir), 1);
  absl::StatusOr<RestoredCheckpoint> r = RestoreLatest(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step, 1);
}

TEST(CheckpointTest, CheckpointStateTextFormat) {
  CheckpointState s;
  s.model_checkpoint_path = "model.ckpt-2";
  s.all_model_checkpoint_paths = {"model.ckpt-1", "model.ckpt-2"};
  s.all_model_checkpoint_timestamps = {1.5, 2.5};
  s.last_preserved_timestamp = 1.25;
  const std::string text = SerializeCheckpointState(s);
  EXPECT_EQ(text,
            "model_checkpoint_path: \"model.ckpt-2\"\n"
            "all_model_checkpoint_paths: \"model.ckpt-1\"\n"
            "all_model_checkpoint_paths: \"model.ckpt-2\"\n"
            "all_model_checkpoint_timestamps: 1.5\n"
            "all_model_checkpoint_timestamps: 2.5\n"
            "last_preserved_timestamp: 1.25\n");
  absl::StatusOr<CheckpointState> p = ParseCheckpointState(text);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->all_model_checkpoint_paths, s.all_model_checkpoint_paths);
  EXPECT_FALSE(ParseCheckpointState("bogus_field: 1\n").ok());
  // As TF 2.15 writes it (absolute paths).
  p = ParseCheckpointState(
      "model_checkpoint_path: \"/m/model.ckpt-9\"\nall_model_checkpoint_paths: \"/m/model.ckpt-9\"\n");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->model_checkpoint_path, "/m/model.ckpt-9");
  EXPECT_EQ(*StepFromPrefix("/m/model.ckpt-9"), 9);
  EXPECT_FALSE(StepFromPrefix("/m/model.ckpt-x").ok());
}

TEST(CheckpointTest, WarmStart) {
  const std::string from = NewDir("warm_from");
  ASSERT_TRUE(Save(from, 50, MakeVars(50)).ok());
  Variables target = MakeVars(0);
  target.floats["new_layer"] = RowMatrixXf::Zero(2, 2);

  // Selected by regex (anchored at the start, like TF's re.match).
  Variables t = target;
  absl::StatusOr<std::vector<std::string>> names = WarmStart(from, &t, "dense/");
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ElementsAre("dense/bias", "dense/kernel"));
  EXPECT_TRUE(t.floats.at("dense/kernel") == MakeVars(50).floats.at("dense/kernel"));
  EXPECT_EQ(t.ints.at("global_step"), 0);

  // From a checkpoint path; a variable missing in the checkpoint.
  t = target;
  absl::Status s = WarmStart(from + "/model.ckpt-50", &t).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("new_layer"));
  EXPECT_TRUE(t.floats.at("dense/kernel") == target.floats.at("dense/kernel"));  // unchanged

  // Shape mismatch.
  t = target;
  t.floats["dense/bias"] = RowMatrixXf::Zero(4, 1);
  s = WarmStart(from, &t, "dense/bias").status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("dense/bias"));

  EXPECT_TRUE(absl::IsInvalidArgument(WarmStart(from, &t, "(").status()));
  EXPECT_TRUE(absl::IsNotFound(WarmStart(from + "/nope", &t).status()));
}

// For every N, fails the N-th operation of one kind (write, fsync, rename,
// directory fsync, create) during a Save over a previous checkpoint: Save
// returns an error naming the file, and RestoreLatest returns a complete
// checkpoint: the previous one, or the new one if the failure came after
// the commit point (the rename of the state file).
TEST(CheckpointFaultTest, EveryFailedWriteFsyncOrRenameLeavesACompleteCheckpoint) {
  const io::FaultOp kinds[] = {io::FaultOp::kCreate, io::FaultOp::kWrite, io::FaultOp::kSync,
                               io::FaultOp::kRename, io::FaultOp::kSyncDir};
  for (io::FaultOp kind : kinds) {
    // How many operations of this kind one Save does (without faults).
    int64_t total = 0;
    {
      const std::string dir = NewDir("fault_count");
      ASSERT_TRUE(Save(dir, 1, MakeVars(1)).ok());
      io::FaultInjectingEnv env;
      SaveOptions options;
      options.env = &env;
      ASSERT_TRUE(Save(dir, 2, MakeVars(2), options).ok());
      total = env.count(kind);
    }
    ASSERT_GT(total, 0) << io::FaultOpName(kind);
    for (int64_t n = 1; n <= total; ++n) {
      SCOPED_TRACE(absl::StrCat(io::FaultOpName(kind), " #", n, " of ", total));
      const std::string dir = NewDir("fault");
      ASSERT_TRUE(Save(dir, 1, MakeVars(1)).ok());
      io::FaultInjectingEnv env;
      env.FailNth(kind, n);
      SaveOptions options;
      options.env = &env;
      const absl::StatusOr<std::string> saved = Save(dir, 2, MakeVars(2), options);
      ASSERT_FALSE(saved.ok());
      EXPECT_TRUE(io::IsInjectedFault(saved.status())) << saved.status();
      EXPECT_THAT(std::string(saved.status().message()), HasSubstr("'" + dir + "/"))
          << saved.status();

      const absl::StatusOr<RestoredCheckpoint> latest = RestoreLatest(dir);
      ASSERT_TRUE(latest.ok()) << latest.status();
      ASSERT_TRUE(latest->step == 1 || latest->step == 2) << latest->step;
      ExpectSameVars(MakeVars(latest->step), latest->vars);
      // Only a failed directory fsync can come after the commit point.
      if (latest->step == 2) {
        EXPECT_EQ(kind, io::FaultOp::kSyncDir);
      }
      EXPECT_EQ(*LatestStep(dir), latest->step);

      // The next save (without faults) succeeds and is the latest.
      ASSERT_TRUE(Save(dir, 3, MakeVars(3)).ok());
      EXPECT_EQ(RestoreLatest(dir)->step, 3);
    }
  }
}

TEST(CheckpointFaultTest, FailedReadsFallBackOrNameTheFile) {
  const std::string dir = NewDir("fault_read");
  ASSERT_TRUE(Save(dir, 1, MakeVars(1)).ok());
  ASSERT_TRUE(Save(dir, 2, MakeVars(2)).ok());
  io::FaultInjectingEnv env;
  const std::string shard2 = dir + "/model.ckpt-2.data-00000-of-00001";
  env.FailIf([&](const io::FaultPoint& p) { return p.op == io::FaultOp::kRead && p.path == shard2; });
  const absl::StatusOr<Variables> r = Restore(dir + "/model.ckpt-2", env);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(shard2));
  const absl::StatusOr<RestoredCheckpoint> latest = RestoreLatest(dir, env);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->step, 1);
}

// Parameter servers write their row partitions of a table; one process
// restores the table whole.
TEST(CheckpointTest, RowPartitionsRestoreWhole) {
  const std::string dir = NewDir("partitions");
  RowMatrixXf table(7, 3);
  for (int i = 0; i < table.size(); ++i) table.data()[i] = 0.5f * i - 3;
  std::vector<ShardEntry> shards;
  for (int ps = 0; ps < 3; ++ps) {
    Variables part;
    RowMatrixXf local((7 - ps + 2) / 3, 3);
    for (int r = 0; r < local.rows(); ++r) local.row(r) = table.row(r * 3 + ps);
    part.floats["emb"] = local;
    if (ps == 1) part.floats["dense"] = RowMatrixXf::Constant(2, 2, 1.5f);
    if (ps == 0) part.ints["global_step"] = 9;
    absl::StatusOr<ShardEntry> e = WriteShard(dir, 9, ps, 3, part, {{"emb", {7, ps, 3}}});
    ASSERT_TRUE(e.ok()) << e.status();
    shards.push_back(*e);
  }
  ASSERT_TRUE(CommitCheckpoint(dir, 9, shards).ok());
  absl::StatusOr<RestoredCheckpoint> back = RestoreLatest(dir);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->vars.floats.count("emb"));
  EXPECT_TRUE(back->vars.floats.at("emb") == table);
  EXPECT_EQ(back->vars.floats.at("dense")(1, 1), 1.5f);
  EXPECT_EQ(back->vars.ints.at("global_step"), 9);

  // A missing partition is DataLoss naming the variable.
  ASSERT_TRUE(CommitCheckpoint(dir, 10, {}).status().code() == absl::StatusCode::kInvalidArgument);
  Variables p0;
  p0.floats["emb"] = RowMatrixXf::Zero(3, 3);
  absl::StatusOr<ShardEntry> only = WriteShard(dir, 10, 0, 1, p0, {{"emb", {7, 0, 3}}});
  ASSERT_TRUE(only.ok());
  ASSERT_TRUE(CommitCheckpoint(dir, 10, {*only}).ok());
  absl::StatusOr<Variables> bad = Restore(CheckpointPrefix(dir, 10));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'emb' has 1 of its 3 row partitions"));

  // A partition whose rows do not match is refused when written.
  EXPECT_EQ(WriteShard(dir, 11, 0, 1, p0, {{"emb", {7, 1, 3}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace estuary::checkpoint

namespace estuary::checkpoint {
namespace {

SaveOptions TfFormat(int keep = 5) {
  SaveOptions o;
  o.format = CheckpointFormat::kTf;
  o.keep_checkpoint_max = keep;
  o.tf_extra["training/Adagrad/learning_rate"] = Tensor::Floats({}, {0.1f});
  return o;
}

TEST(CheckpointTfFormatTest, RoundTripsListsAndDeletesLikeTheNativeFormat) {
  const std::string dir = NewDir("tf_format");
  Variables vars = MakeVars(10);
  vars.floats["dense/kernel/adagrad/accumulator"] = RowMatrixXf::Constant(3, 4, 0.1f);
  for (int64_t step : {10, 20, 30}) {
    vars.ints["global_step"] = step;
    absl::StatusOr<std::string> prefix = Save(dir, step, vars, TfFormat(2));
    ASSERT_TRUE(prefix.ok()) << prefix.status();
  }
  EXPECT_FALSE(Exists(dir + "/model.ckpt-10.index"));
  EXPECT_FALSE(Exists(dir + "/model.ckpt-10.data-00000-of-00001"));
  EXPECT_TRUE(Exists(dir + "/model.ckpt-30.index"));
  EXPECT_FALSE(Exists(dir + "/model.ckpt-30.manifest"));
  absl::StatusOr<std::vector<CheckpointInfo>> list = ListCheckpoints(dir);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ(list->back().step, 30);
  EXPECT_EQ(*LatestCheckpoint(dir), dir + "/model.ckpt-30");
  absl::StatusOr<RestoredCheckpoint> r = RestoreLatest(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->step, 30);
  ExpectSameVars(r->vars, vars);  // the TF-only learning_rate is not read back

  absl::StatusOr<CheckpointListing> listing = ListTensors(dir + "/model.ckpt-30");
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_EQ(listing->format, "tf");
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const TensorListing& t : listing->tensors) shapes[t.name] = t.shape;
  EXPECT_THAT(shapes.at("dense/bias"), ElementsAre(4));
  EXPECT_THAT(shapes.at("training/Adagrad/dense/kernel/accumulator"), ElementsAre(3, 4));
  EXPECT_TRUE(shapes.at("global_step").empty());
  EXPECT_EQ(shapes.count("training/Adagrad/learning_rate"), 1u);

  // Switching formats: a native checkpoint after TF ones; both read.
  vars.ints["global_step"] = 40;
  ASSERT_TRUE(Save(dir, 40, vars, {.keep_checkpoint_max = 2}).ok());
  r = RestoreLatest(dir);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->step, 40);
  absl::StatusOr<Variables> older = Restore(dir + "/model.ckpt-30");
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ(older->ints.at("global_step"), 30);
  EXPECT_FALSE(Exists(dir + "/model.ckpt-20.index"));
  EXPECT_EQ(ListTensors(dir + "/model.ckpt-40")->format, "native");
  EXPECT_EQ(ListTensors(dir + "/model.ckpt-99").status().code(), absl::StatusCode::kNotFound);
}

TEST(CheckpointTfFormatTest, CorruptLatestFallsBackAndWarmStartListsEveryProblem) {
  const std::string dir = NewDir("tf_corrupt");
  Variables vars = MakeVars(1);
  ASSERT_TRUE(Save(dir, 1, vars, TfFormat()).ok());
  ASSERT_TRUE(Save(dir, 2, vars, TfFormat()).ok());
  const std::string data = dir + "/model.ckpt-2.data-00000-of-00001";
  std::string bytes = ReadFile(data);
  bytes[bytes.size() / 2] ^= 0x40;
  WriteFile(data, bytes);
  absl::Status s = Restore(dir + "/model.ckpt-2").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("model.ckpt-2.data-00000-of-00001: tensor '"));
  absl::StatusOr<RestoredCheckpoint> r = RestoreLatest(dir);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->step, 1);

  Variables model;
  model.floats["dense/kernel"] = RowMatrixXf::Zero(4, 4);  // mismatched
  model.floats["other/kernel"] = RowMatrixXf::Zero(2, 2);  // missing
  model.floats["dense/bias"] = RowMatrixXf::Zero(1, 4);
  const Variables before = model;
  s = WarmStart(dir + "/model.ckpt-1", &model).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing: other/kernel [2, 2] float32"));
  EXPECT_THAT(s.message(),
              HasSubstr("mismatched: dense/kernel: model [4, 4] float32, checkpoint [3, 4] float32"));
  EXPECT_EQ(s.message().find('\n'), absl::string_view::npos);
  ExpectSameVars(model, before);
}

}  // namespace
}  // namespace estuary::checkpoint
