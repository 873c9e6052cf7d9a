#include "common/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/crc32c.h"
#include "common/io/env.h"
#include "common/io/file.h"
#include "common/io/tfrecord.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/tf_bundle/tensor_bundle.h"
#include "common/tf_bundle/tf_variables.h"
#include "google/protobuf/text_format.h"
#include "re2/re2.h"

namespace estuary {
namespace checkpoint {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoint tensors are stored as little-endian host bytes");

constexpr int kFormatVersion = 1;
constexpr char kManifestSuffix[] = ".manifest";
constexpr char kIndexSuffix[] = ".index";  // a TF checkpoint's

using io::BaseName;
using io::DirName;
using io::JoinPath;

// An OutputStream that counts and checksums what passes through it.
class ChecksummingOutputStream : public io::OutputStream {
 public:
  explicit ChecksummingOutputStream(std::unique_ptr<io::OutputStream> out,
                                    uint32_t* crc, int64_t* size)
      : out_(std::move(out)), crc_(crc), size_(size) {}
  absl::Status Append(absl::string_view data) override {
    *crc_ = crc32c::Extend(*crc_, data.data(), data.size());
    *size_ += static_cast<int64_t>(data.size());
    return out_->Append(data);
  }
  absl::Status Flush() override { return out_->Flush(); }
  absl::Status Close() override { return out_->Close(); }
  const std::string& name() const override { return out_->name(); }

 private:
  std::unique_ptr<io::OutputStream> out_;
  uint32_t* crc_;
  int64_t* size_;
};

class ChecksummingInputStream : public io::InputStream {
 public:
  ChecksummingInputStream(std::unique_ptr<io::InputStream> in, uint32_t* crc, int64_t* size)
      : in_(std::move(in)), crc_(crc), size_(size) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    ASSIGN_OR_RETURN(size_t got, in_->Read(buf, n));
    *crc_ = crc32c::Extend(*crc_, buf, got);
    *size_ += static_cast<int64_t>(got);
    return got;
  }
  const std::string& name() const override { return in_->name(); }

 private:
  std::unique_ptr<io::InputStream> in_;
  uint32_t* crc_;
  int64_t* size_;
};

absl::Status CheckNames(const Variables& vars) {
  for (const auto& [name, value] : vars.ints) {
    if (vars.floats.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint: variable '", name, "' is both a float and an int64"));
    }
  }
  for (const auto& [name, m] : vars.floats) {
    if (name.empty()) return absl::InvalidArgumentError("checkpoint: empty variable name");
  }
  return absl::OkStatus();
}

absl::Status CheckShardArgs(int64_t step, int shard_index, int num_shards) {
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("checkpoint: negative step ", step));
  if (num_shards < 1 || num_shards > 99999 || shard_index < 0 || shard_index >= num_shards) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: bad shard ", shard_index, " of ", num_shards));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> ParseStepSuffix(absl::string_view name,
                                                       absl::string_view suffix) {
  // A std::string: a string_view of the temporary StrCat would dangle.
  const std::string head = absl::StrCat(kDefaultBasename, "-");
  if (!absl::StartsWith(name, head) || !absl::EndsWith(name, suffix)) return std::nullopt;
  absl::string_view digits = name.substr(head.size(), name.size() - head.size() - suffix.size());
  int64_t step;
  if (digits.empty() || !absl::SimpleAtoi(digits, &step) || step < 0) return std::nullopt;
  return step;
}

// Resolves a path from the state file against model_dir.
std::string ResolvePath(const std::string& model_dir, const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  return JoinPath(model_dir, p);
}

// Deletes `path`; OK if it is already gone.
absl::Status DeleteIfExists(const io::Env& env, const std::string& path) {
  absl::Status s = env.DeleteFile(path);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

// Whether the checkpoint at `prefix` is complete (either format).
bool IsComplete(const io::Env& env, const std::string& prefix) {
  return env.FileExists(ManifestFileName(prefix)) ||
         env.FileExists(tf_bundle::IndexFileName(prefix));
}

absl::Status DeleteCheckpointFiles(const io::Env& env, const std::string& prefix) {
  // The manifest / index first: from then on the checkpoint is incomplete.
  RETURN_IF_ERROR(DeleteIfExists(env, ManifestFileName(prefix)));
  RETURN_IF_ERROR(DeleteIfExists(env, tf_bundle::IndexFileName(prefix)));
  const std::string dir = DirName(prefix);
  const std::string base = BaseName(prefix) + ".";
  ASSIGN_OR_RETURN(std::vector<std::string> children, env.GetChildren(dir));
  for (const std::string& child : children) {
    const absl::string_view name = child;
    if (absl::StartsWith(name, base) &&
        (absl::StartsWith(name.substr(base.size()), "data-") ||
         absl::StartsWith(name.substr(base.size()), "manifest.tmp-") ||
         absl::StartsWith(name.substr(base.size()), "index.tmp-") ||
         name.substr(base.size()) == "meta")) {
      RETURN_IF_ERROR(DeleteIfExists(env, JoinPath(dir, child)));
    }
  }
  return absl::OkStatus();
}

// Deletes every model.ckpt-<s>.* file with s < `step` (best effort).
void SweepOlderThan(const io::Env& env, const std::string& model_dir, int64_t step) {
  absl::StatusOr<std::vector<std::string>> children = env.GetChildren(model_dir);
  if (!children.ok()) return;
  std::vector<std::string> doomed;
  const std::string head = absl::StrCat(kDefaultBasename, "-");
  for (const std::string& child : *children) {
    absl::string_view name = child;
    if (!absl::StartsWith(name, head)) continue;
    name.remove_prefix(head.size());
    const size_t dot = name.find('.');
    int64_t s;
    if (dot == absl::string_view::npos || !absl::SimpleAtoi(name.substr(0, dot), &s)) continue;
    if (s < step) doomed.push_back(JoinPath(model_dir, child));
  }
  // Manifests and indexes first, so that no complete-looking checkpoint
  // loses shards.
  std::stable_partition(doomed.begin(), doomed.end(), [](const std::string& f) {
    return absl::EndsWith(f, kManifestSuffix) || absl::EndsWith(f, kIndexSuffix);
  });
  for (const std::string& f : doomed) {
    absl::Status s = DeleteIfExists(env, f);
    if (!s.ok()) spdlog::warn("checkpoint: {}", s.ToString());
  }
}

absl::StatusOr<std::string> ResolveCheckpointPath(const io::Env& env,
                                                  const std::string& dir_or_prefix) {
  if (IsComplete(env, dir_or_prefix)) return dir_or_prefix;
  absl::StatusOr<io::FileInfo> info = env.Stat(dir_or_prefix);
  if (info.ok() && info->is_directory) return LatestCheckpoint(dir_or_prefix, env);
  return absl::NotFoundError(
      absl::StrCat("checkpoint: ", dir_or_prefix, " is neither a checkpoint nor a directory"));
}

// The message of `status` without a leading "<path>: " (the caller names the
// file itself).
absl::string_view WithoutPath(const absl::Status& status, const std::string& path) {
  absl::string_view m = status.message();
  const std::string head = absl::StrCat(path, ": ");
  if (absl::StartsWith(m, head)) m.remove_prefix(head.size());
  return m;
}

// CommitCheckpoint's second half (below).
absl::StatusOr<std::string> CommitState(const std::string& model_dir, int64_t step,
                                        double wall_time, const SaveOptions& options);

}  // namespace

std::string CheckpointPrefix(const std::string& model_dir, int64_t step) {
  return JoinPath(model_dir, absl::StrCat(kDefaultBasename, "-", step));
}

std::string ShardFileName(const std::string& prefix, int shard_index, int num_shards) {
  return absl::StrFormat("%s.data-%05d-of-%05d", prefix, shard_index, num_shards);
}

std::string ManifestFileName(const std::string& prefix) {
  return absl::StrCat(prefix, kManifestSuffix);
}

absl::StatusOr<int64_t> StepFromPrefix(const std::string& prefix) {
  ASSIGN_OR_RETURN(std::optional<int64_t> step, ParseStepSuffix(BaseName(prefix), ""));
  if (!step) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: '", prefix, "' is not named ", kDefaultBasename, "-<step>"));
  }
  return *step;
}

absl::StatusOr<ShardEntry> WriteShard(const std::string& model_dir, int64_t step, int shard_index,
                                      int num_shards, const Variables& vars,
                                      const io::Env& env) {
  return WriteShard(model_dir, step, shard_index, num_shards, vars, {}, env);
}

absl::StatusOr<ShardEntry> WriteShard(const std::string& model_dir, int64_t step, int shard_index,
                                      int num_shards, const Variables& vars,
                                      const std::map<std::string, RowPartition>& partitions,
                                      const io::Env& env) {
  RETURN_IF_ERROR(CheckShardArgs(step, shard_index, num_shards));
  RETURN_IF_ERROR(CheckNames(vars));
  for (const auto& [name, p] : partitions) {
    auto it = vars.floats.find(name);
    if (it == vars.floats.end() || p.count < 1 || p.index < 0 || p.index >= p.count ||
        p.full_rows < 0 ||
        it->second.rows() != (p.full_rows > p.index ? (p.full_rows - p.index + p.count - 1) / p.count : 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint: partition ", p.index, " of ", p.count, " of '", name,
          "' does not match a float variable of those rows of ", p.full_rows));
    }
  }
  RETURN_IF_ERROR(env.MakeDirs(model_dir));
  const std::string path =
      ShardFileName(CheckpointPrefix(model_dir, step), shard_index, num_shards);

  // The header indexes the tensors in record order (floats, then ints, each
  // by name).
  ShardHeader header;
  header.set_step(step);
  header.set_shard_index(shard_index);
  header.set_num_shards(num_shards);
  std::vector<absl::string_view> data;
  int64_t record = 1;
  for (const auto& [name, m] : vars.floats) {
    CheckpointTensorEntry* t = header.add_tensors();
    t->set_name(name);
    t->set_dtype(CHECKPOINT_DTYPE_FLOAT);
    t->add_shape(m.rows());
    t->add_shape(m.cols());
    if (auto p = partitions.find(name); p != partitions.end()) {
      t->set_partition_full_rows(p->second.full_rows);
      t->set_partition_index(p->second.index);
      t->set_partition_count(p->second.count);
    }
    t->set_record_index(record++);
    data.emplace_back(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(float));
  }
  for (const auto& [name, v] : vars.ints) {
    CheckpointTensorEntry* t = header.add_tensors();
    t->set_name(name);
    t->set_dtype(CHECKPOINT_DTYPE_INT64);
    t->set_record_index(record++);
    data.emplace_back(reinterpret_cast<const char*>(&v), sizeof(int64_t));
  }
  for (int i = 0; i < header.tensors_size(); ++i) {
    header.mutable_tensors(i)->set_size_bytes(data[i].size());
    header.mutable_tensors(i)->set_crc32c(crc32c::Value(data[i]));
  }

  ShardEntry entry;
  entry.set_shard_index(shard_index);
  entry.set_file(BaseName(path));
  *entry.mutable_tensors() = header.tensors();
  uint32_t crc = 0;
  int64_t size = 0;
  const auto write_shard = [&](std::unique_ptr<io::OutputStream> file) -> absl::Status {
    ASSIGN_OR_RETURN(auto writer, io::TFRecordWriter::Create(
                                      std::make_unique<ChecksummingOutputStream>(
                                          std::move(file), &crc, &size)));
    RETURN_IF_ERROR(writer->Write(header.SerializeAsString()));
    for (size_t i = 0; i < data.size(); ++i) {
      entry.mutable_tensors(i)->set_offset(writer->bytes_written());
      RETURN_IF_ERROR(writer->Write(data[i]));
    }
    return writer->Close();
  };
  RETURN_IF_ERROR(io::WriteFileDurably(env, path, write_shard));
  entry.set_size_bytes(size);
  entry.set_file_crc32c(crc);
  return entry;
}

absl::StatusOr<ShardEntry> ReadShardEntry(const std::string& model_dir, int64_t step,
                                          int shard_index, int num_shards,
                                          const io::Env& env) {
  RETURN_IF_ERROR(CheckShardArgs(step, shard_index, num_shards));
  const std::string path =
      ShardFileName(CheckpointPrefix(model_dir, step), shard_index, num_shards);
  uint32_t crc = 0;
  int64_t size = 0;
  ASSIGN_OR_RETURN(auto file, env.NewSequentialFile(path));
  ASSIGN_OR_RETURN(auto reader, io::TFRecordReader::Open(std::make_unique<ChecksummingInputStream>(
                                    std::move(file), &crc, &size)));
  std::string record;
  ShardHeader header;
  ASSIGN_OR_RETURN(bool got, reader->Next(&record));
  if (!got || !header.ParseFromString(record) || header.step() != step ||
      header.shard_index() != shard_index || header.num_shards() != num_shards) {
    return absl::DataLossError(absl::StrCat(path, ": bad shard header"));
  }
  ShardEntry entry;
  entry.set_shard_index(shard_index);
  entry.set_file(BaseName(path));
  *entry.mutable_tensors() = header.tensors();
  for (int i = 0; i < header.tensors_size(); ++i) {
    const int64_t offset = reader->offset();
    ASSIGN_OR_RETURN(got, reader->Next(&record));
    if (!got) {
      return absl::DataLossError(
          absl::StrCat(path, ": tensor '", header.tensors(i).name(), "': missing (truncated)"));
    }
    entry.mutable_tensors(i)->set_offset(offset);
  }
  while (true) {  // checksum the whole file
    ASSIGN_OR_RETURN(got, reader->Next(&record));
    if (!got) break;
  }
  entry.set_size_bytes(size);
  entry.set_file_crc32c(crc);
  return entry;
}

absl::StatusOr<CheckpointState> ParseCheckpointState(const std::string& text) {
  CheckpointStateProto proto;
  if (!google::protobuf::TextFormat::ParseFromString(text, &proto)) {
    return absl::InvalidArgumentError("not a CheckpointState in text format");
  }
  CheckpointState state;
  state.model_checkpoint_path = proto.model_checkpoint_path();
  state.all_model_checkpoint_paths.assign(proto.all_model_checkpoint_paths().begin(),
                                          proto.all_model_checkpoint_paths().end());
  state.all_model_checkpoint_timestamps.assign(proto.all_model_checkpoint_timestamps().begin(),
                                               proto.all_model_checkpoint_timestamps().end());
  state.last_preserved_timestamp = proto.last_preserved_timestamp();
  return state;
}

std::string SerializeCheckpointState(const CheckpointState& state) {
  CheckpointStateProto proto;
  proto.set_model_checkpoint_path(state.model_checkpoint_path);
  for (const auto& p : state.all_model_checkpoint_paths) proto.add_all_model_checkpoint_paths(p);
  for (double t : state.all_model_checkpoint_timestamps) {
    proto.add_all_model_checkpoint_timestamps(t);
  }
  proto.set_last_preserved_timestamp(state.last_preserved_timestamp);
  std::string text;
  google::protobuf::TextFormat::PrintToString(proto, &text);
  return text;
}

absl::StatusOr<std::optional<CheckpointState>> ReadCheckpointState(const std::string& model_dir,
                                                                  const io::Env& env) {
  const std::string path = JoinPath(model_dir, kStateFileName);
  absl::StatusOr<std::string> text = io::ReadWholeFile(env, path);
  if (absl::IsNotFound(text.status())) return std::nullopt;
  if (!text.ok()) return text.status();
  absl::StatusOr<CheckpointState> state = ParseCheckpointState(*text);
  if (!state.ok()) return absl::DataLossError(absl::StrCat(path, ": ", state.status().message()));
  return std::optional<CheckpointState>(*std::move(state));
}

absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(const std::string& model_dir,
                                                            const io::Env& env) {
  std::vector<CheckpointInfo> out;
  absl::StatusOr<std::vector<std::string>> children = env.GetChildren(model_dir);
  if (absl::IsNotFound(children.status())) return out;
  if (!children.ok()) return children.status();
  std::set<int64_t> steps;
  for (const std::string& name : *children) {
    for (const char* suffix : {kManifestSuffix, kIndexSuffix}) {
      absl::StatusOr<std::optional<int64_t>> step = ParseStepSuffix(name, suffix);
      if (step.ok() && step->has_value() && steps.insert(**step).second) {
        out.push_back({**step, CheckpointPrefix(model_dir, **step)});
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.step < b.step; });
  return out;
}

absl::StatusOr<std::string> CommitCheckpoint(const std::string& model_dir, int64_t step,
                                             const std::vector<ShardEntry>& shards,
                                             const SaveOptions& options) {
  const io::Env& env = *options.env;
  if (shards.empty()) return absl::InvalidArgumentError("checkpoint: no shards to commit");
  const int n = static_cast<int>(shards.size());
  const std::string prefix = CheckpointPrefix(model_dir, step);
  Manifest manifest;
  manifest.set_format_version(kFormatVersion);
  manifest.set_step(step);
  manifest.set_num_shards(n);
  manifest.set_wall_time(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
  std::vector<const ShardEntry*> ordered(n, nullptr);
  for (const ShardEntry& s : shards) {
    RETURN_IF_ERROR(CheckShardArgs(step, s.shard_index(), n));
    if (ordered[s.shard_index()] != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint ", prefix, ": shard ", s.shard_index(), " given twice"));
    }
    ordered[s.shard_index()] = &s;
  }
  std::set<std::string> names;
  for (int i = 0; i < n; ++i) {
    const ShardEntry& s = *ordered[i];
    const std::string expected = BaseName(ShardFileName(prefix, i, n));
    if (s.file() != expected) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint ", prefix, ": shard ", i,
                                                     " is file ", s.file(), ", expected ",
                                                     expected));
    }
    const std::string path = JoinPath(model_dir, s.file());
    absl::StatusOr<uint64_t> size = env.GetFileSize(path);
    if (!size.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint ", prefix, ": missing shard ",
                                                        path, ": ", size.status().message()));
    }
    if (static_cast<int64_t>(*size) != s.size_bytes()) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint ", prefix, ": shard ", path,
                                                        " has ", *size, " bytes, expected ",
                                                        s.size_bytes()));
    }
    for (const auto& t : s.tensors()) {
      const std::string key = t.partition_count() > 0 ? absl::StrCat(t.name(), "\n", t.partition_index()) : t.name();
      if (!names.insert(key).second) {
        return absl::InvalidArgumentError(absl::StrCat("checkpoint ", prefix, ": variable '",
                                                       t.name(), "' is in two shards"));
      }
    }
    *manifest.add_shards() = s;
  }
  const auto write_manifest = [&](std::unique_ptr<io::OutputStream> file) -> absl::Status {
    ASSIGN_OR_RETURN(auto writer, io::TFRecordWriter::Create(std::move(file)));
    RETURN_IF_ERROR(writer->Write(manifest.SerializeAsString()));
    return writer->Close();
  };
  RETURN_IF_ERROR(io::WriteFileDurably(env, ManifestFileName(prefix), write_manifest));
  return CommitState(model_dir, step, manifest.wall_time(), options);
}

namespace {

// Makes the complete checkpoint `step` the latest in the state file, then
// deletes old ones (CommitCheckpoint's second half, for both formats).
absl::StatusOr<std::string> CommitState(const std::string& model_dir, int64_t step,
                                        double wall_time, const SaveOptions& options) {
  const io::Env& env = *options.env;
  const std::string prefix = CheckpointPrefix(model_dir, step);
  // The state: every known checkpoint (the old state's and the complete ones
  // on disk, by step), then this one.
  absl::StatusOr<std::optional<CheckpointState>> old = ReadCheckpointState(model_dir, env);
  if (!old.ok()) {
    spdlog::warn("checkpoint: ignoring unreadable state file: {}", old.status().ToString());
  }
  std::map<std::string, double> timestamps;  // prefix -> timestamp
  std::set<std::pair<int64_t, std::string>> known;
  double last_preserved = 0;
  if (old.ok() && old->has_value()) {
    const CheckpointState& st = **old;
    last_preserved = st.last_preserved_timestamp;
    for (size_t i = 0; i < st.all_model_checkpoint_paths.size(); ++i) {
      const std::string p = ResolvePath(model_dir, st.all_model_checkpoint_paths[i]);
      if (i < st.all_model_checkpoint_timestamps.size()) {
        timestamps[p] = st.all_model_checkpoint_timestamps[i];
      }
      absl::StatusOr<int64_t> s = StepFromPrefix(p);
      if (s.ok() && IsComplete(env, p)) known.insert({*s, p});
    }
  }
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> on_disk, ListCheckpoints(model_dir, env));
  for (const CheckpointInfo& c : on_disk) known.insert({c.step, c.prefix});
  std::vector<std::string> all;
  for (const auto& [s, p] : known) {
    if (p != prefix) all.push_back(p);
  }
  all.push_back(prefix);
  timestamps[prefix] = wall_time;
  std::vector<std::string> doomed;
  if (options.keep_checkpoint_max > 0 &&
      static_cast<int>(all.size()) > options.keep_checkpoint_max) {
    const size_t drop = all.size() - options.keep_checkpoint_max;
    doomed.assign(all.begin(), all.begin() + drop);
    all.erase(all.begin(), all.begin() + drop);
  }
  CheckpointState state;
  state.model_checkpoint_path = BaseName(prefix);
  for (const std::string& p : all) {
    state.all_model_checkpoint_paths.push_back(DirName(p) == DirName(prefix) ? BaseName(p) : p);
    const auto it = timestamps.find(p);
    state.all_model_checkpoint_timestamps.push_back(it == timestamps.end() ? wall_time
                                                                           : it->second);
  }
  state.last_preserved_timestamp = last_preserved > 0 ? last_preserved : wall_time;
  // The commit point: once the state file is renamed, this checkpoint is
  // the latest.
  RETURN_IF_ERROR(io::WriteFileDurably(env, JoinPath(model_dir, kStateFileName),
                                       SerializeCheckpointState(state)));

  int64_t oldest_kept = step;
  for (const std::string& p : doomed) {
    absl::StatusOr<int64_t> s = StepFromPrefix(p);
    if (s.ok() && options.may_delete && !options.may_delete(*s)) {
      spdlog::info("checkpoint: keeping {} for now (in use)", p);
      oldest_kept = std::min(oldest_kept, *s);
      continue;
    }
    absl::Status st = DeleteCheckpointFiles(env, p);
    if (!st.ok()) spdlog::warn("checkpoint: could not delete {}: {}", p, st.ToString());
  }
  if (!doomed.empty()) {
    // Leftovers of crashes (shards never committed, deletions cut short,
    // temporary files) of steps older than every kept checkpoint: no writer
    // can still be working on those.
    for (const std::string& p : all) {
      absl::StatusOr<int64_t> s = StepFromPrefix(p);
      if (s.ok()) oldest_kept = std::min(oldest_kept, *s);
    }
    SweepOlderThan(env, model_dir, oldest_kept);
  }
  return prefix;
}

}  // namespace

absl::StatusOr<std::string> Save(const std::string& model_dir, int64_t step, const Variables& vars,
                                 const SaveOptions& options) {
  const io::Env& env = *options.env;
  const std::string prefix = CheckpointPrefix(model_dir, step);
  if (options.format == CheckpointFormat::kNative) {
    // A TF checkpoint of this step (format switched) would be read first.
    RETURN_IF_ERROR(DeleteIfExists(env, tf_bundle::IndexFileName(prefix)));
    ASSIGN_OR_RETURN(ShardEntry shard, WriteShard(model_dir, step, 0, 1, vars, env));
    return CommitCheckpoint(model_dir, step, {shard}, options);
  }
  RETURN_IF_ERROR(CheckShardArgs(step, 0, 1));
  RETURN_IF_ERROR(CheckNames(vars));
  ASSIGN_OR_RETURN(auto tensors, tf_bundle::ToTfTensors(vars, options.tf_extra));
  RETURN_IF_ERROR(DeleteIfExists(env, ManifestFileName(prefix)));
  RETURN_IF_ERROR(DeleteIfExists(env, tf_bundle::IndexFileName(prefix)));
  tf_bundle::BundleWriterOptions bundle;
  bundle.env = &env;
  tf_bundle::BundleWriter writer(bundle);
  for (const auto& [name, t] : tensors) RETURN_IF_ERROR(writer.Add(name, t));
  RETURN_IF_ERROR(writer.Finish(prefix));
  return CommitState(model_dir, step, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()),
                     options);
}

absl::StatusOr<CheckpointFormat> ParseCheckpointFormat(const std::string& name) {
  if (name == "native") return CheckpointFormat::kNative;
  if (name == "tf") return CheckpointFormat::kTf;
  return absl::InvalidArgumentError(
      absl::StrCat("checkpoint format '", name, "': expected \"native\" or \"tf\""));
}

absl::StatusOr<CheckpointListing> ListTensors(const std::string& prefix, const io::Env& env) {
  CheckpointListing out;
  if (!env.FileExists(ManifestFileName(prefix)) &&
      env.FileExists(tf_bundle::IndexFileName(prefix))) {
    ASSIGN_OR_RETURN(auto reader, tf_bundle::BundleReader::Open(prefix, env));
    out.format = "tf";
    out.files.push_back(tf_bundle::IndexFileName(prefix));
    for (int i = 0; i < reader->num_shards(); ++i) {
      out.files.push_back(tf_bundle::DataFileName(prefix, i, reader->num_shards()));
    }
    for (const tf_bundle::TensorInfo& t : reader->tensors()) {
      out.tensors.push_back({t.name, t.dtype_name, t.shape});
    }
    return out;
  }
  absl::StatusOr<Manifest> manifest = ReadManifest(prefix, env);
  if (absl::IsNotFound(manifest.status())) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", prefix, ": neither ",
                                            ManifestFileName(prefix), " nor ",
                                            tf_bundle::IndexFileName(prefix), " exists"));
  }
  if (!manifest.ok()) return manifest.status();
  out.format = "native";
  out.files.push_back(ManifestFileName(prefix));
  for (const ShardEntry& shard : manifest->shards()) {
    out.files.push_back(JoinPath(DirName(prefix), shard.file()));
    for (const CheckpointTensorEntry& t : shard.tensors()) {
      TensorListing l;
      l.name = t.name();
      l.dtype = t.dtype() == CHECKPOINT_DTYPE_INT64 ? "int64" : "float32";
      l.shape.assign(t.shape().begin(), t.shape().end());
      if (t.partition_count() > 0) {
        l.name = absl::StrCat(t.name(), " (rows ", t.partition_index(), " mod ",
                              t.partition_count(), " of ", t.partition_full_rows(), ")");
      }
      out.tensors.push_back(std::move(l));
    }
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorListing& a, const TensorListing& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<std::string> LatestCheckpoint(const std::string& model_dir, const io::Env& env) {
  absl::StatusOr<std::optional<CheckpointState>> state = ReadCheckpointState(model_dir, env);
  if (!state.ok()) {
    spdlog::warn("checkpoint: {}; using the newest complete checkpoint",
                 state.status().ToString());
  } else if (state->has_value()) {
    const std::string p = ResolvePath(model_dir, (*state)->model_checkpoint_path);
    if (IsComplete(env, p)) return p;
    spdlog::warn("checkpoint: latest {} named by {}/checkpoint is incomplete", p, model_dir);
  }
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> list, ListCheckpoints(model_dir, env));
  if (list.empty()) {
    return absl::NotFoundError(absl::StrCat("no checkpoint in ", model_dir));
  }
  return list.back().prefix;
}

absl::StatusOr<int64_t> LatestStep(const std::string& model_dir, const io::Env& env) {
  ASSIGN_OR_RETURN(std::string prefix, LatestCheckpoint(model_dir, env));
  return StepFromPrefix(prefix);
}

absl::StatusOr<Manifest> ReadManifest(const std::string& prefix, const io::Env& env) {
  const std::string path = ManifestFileName(prefix);
  io::TFRecordOptions options;
  options.env = &env;
  absl::StatusOr<std::vector<std::string>> records = io::ReadTFRecordFile(path, options);
  if (absl::IsNotFound(records.status())) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", prefix, ": no manifest ", path, " (incomplete checkpoint)"));
  }
  if (!records.ok()) return records.status();
  Manifest manifest;
  if (records->size() != 1 || !manifest.ParseFromString(records->front())) {
    return absl::DataLossError(absl::StrCat(path, ": not a checkpoint manifest"));
  }
  if (manifest.format_version() != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": unsupported format version ", manifest.format_version()));
  }
  if (manifest.num_shards() != manifest.shards_size()) {
    return absl::DataLossError(absl::StrCat(path, ": lists ", manifest.shards_size(),
                                            " shards of ", manifest.num_shards()));
  }
  return manifest;
}

namespace {

// rows * cols * sizeof(float), or -1 if a factor is negative or it does not
// fit in int64: shapes come from the file (a crafted manifest overflowed
// the product and sized a huge matrix; an input for fuzz/checkpoint_fuzzer,
// caught by its UBSan build).
int64_t FloatBytes(int64_t rows, int64_t cols) {
  int64_t n;
  if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) ||
      __builtin_mul_overflow(n, static_cast<int64_t>(sizeof(float)), &n)) {
    return -1;
  }
  return n;
}

// Copies a row partition's record into the whole variable being assembled.
// `data_bytes`: what the checkpoint's shard files hold together; every
// partition of the whole variable is in them, so a manifest claiming more
// (partition_full_rows x cols) is refused before the whole is allocated
// (a crafted manifest with a one-row record forced a huge allocation; found
// by fuzz/checkpoint_fuzzer).
template <typename Assembly>
absl::Status AddPartition(const CheckpointTensorEntry& t, const std::string& record,
                          const std::string& what, int64_t data_bytes, Assembly* a) {
  const int64_t full = t.partition_full_rows();
  const int count = t.partition_count(), index = t.partition_index();
  // ceil((full - index) / count), without overflowing for a huge `full`.
  const int64_t local = full > index ? (full - index - 1) / count + 1 : -1;
  if (t.dtype() != CHECKPOINT_DTYPE_FLOAT || t.shape_size() != 2 || index < 0 || index >= count ||
      t.shape(0) != std::max<int64_t>(local, 0) ||
      static_cast<int64_t>(record.size()) != FloatBytes(t.shape(0), t.shape(1)) ||
      FloatBytes(full, t.shape(1)) < 0) {
    return absl::DataLossError(absl::StrCat(what, ": bad row partition ", index, " of ", count));
  }
  if (FloatBytes(full, t.shape(1)) > data_bytes) {
    return absl::DataLossError(absl::StrCat(
        what, ": row partition ", index, " of ", count, " claims a ", full, " x ", t.shape(1),
        " variable (", FloatBytes(full, t.shape(1)), " bytes), more than the checkpoint's data "
        "files hold (", data_bytes, " bytes)"));
  }
  if (a->count == 0) {
    a->count = count;
    a->whole.resize(full, t.shape(1));
  } else if (a->count != count || a->whole.rows() != full || a->whole.cols() != t.shape(1)) {
    return absl::DataLossError(absl::StrCat(what, ": row partition ", index, " of ", count,
                                            " does not match the other partitions"));
  }
  if (!a->parts.insert(index).second) {
    return absl::DataLossError(absl::StrCat(what, ": duplicate row partition ", index));
  }
  const int64_t cols = t.shape(1);
  const float* src = reinterpret_cast<const float*>(record.data());
  for (int64_t r = 0; cols > 0 && r < t.shape(0); ++r) {
    std::memcpy(a->whole.data() + (r * count + index) * cols, src + r * cols, cols * sizeof(float));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Variables> Restore(const std::string& prefix, const io::Env& env) {
  if (!env.FileExists(ManifestFileName(prefix)) &&
      env.FileExists(tf_bundle::IndexFileName(prefix))) {
    ASSIGN_OR_RETURN(auto reader, tf_bundle::BundleReader::Open(prefix, env));
    ASSIGN_OR_RETURN(auto tensors, reader->ReadAll());
    return tf_bundle::FromTfTensors(tensors, tf_bundle::IndexFileName(prefix));
  }
  ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(prefix, env));
  const std::string dir = DirName(prefix);
  Variables vars;
  // Row-partitioned variables being reassembled, with the parts seen.
  struct Assembly {
    RowMatrixXf whole;
    int count = 0;
    std::set<int> parts;
  };
  std::map<std::string, Assembly> assemblies;
  auto missing_shard = [&](const ShardEntry& shard, const std::string& path) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", prefix, ": missing shard ",
                                            shard.shard_index(), " of ", manifest.num_shards(),
                                            ": ", path));
  };
  // The bytes the shard files really hold: no size the manifest claims
  // may make Restore allocate more (AddPartition).
  int64_t data_bytes = 0;
  for (const ShardEntry& shard : manifest.shards()) {
    const std::string path = JoinPath(dir, shard.file());
    absl::StatusOr<uint64_t> size = env.GetFileSize(path);
    if (absl::IsNotFound(size.status())) return missing_shard(shard, path);
    if (!size.ok()) return size.status();
    data_bytes += static_cast<int64_t>(std::min<uint64_t>(*size, uint64_t{1} << 62));
  }
  for (const ShardEntry& shard : manifest.shards()) {
    const std::string path = JoinPath(dir, shard.file());
    uint32_t crc = 0;
    int64_t size = 0;
    absl::StatusOr<std::unique_ptr<io::InputStream>> file = env.NewSequentialFile(path);
    if (absl::IsNotFound(file.status())) return missing_shard(shard, path);
    if (!file.ok()) return file.status();
    ASSIGN_OR_RETURN(auto reader, io::TFRecordReader::Open(std::make_unique<ChecksummingInputStream>(
                                      *std::move(file), &crc, &size)));
    std::string record;
    absl::StatusOr<bool> got = reader->Next(&record);
    ShardHeader header;
    if (!got.ok() || !*got || !header.ParseFromString(record) ||
        header.step() != manifest.step() || header.shard_index() != shard.shard_index() ||
        header.num_shards() != manifest.num_shards() ||
        header.tensors_size() != shard.tensors_size()) {
      return absl::DataLossError(
          absl::StrCat(path, ": bad shard header",
                       got.ok() ? "" : absl::StrCat(": ", WithoutPath(got.status(), path))));
    }
    for (const CheckpointTensorEntry& t : shard.tensors()) {
      const std::string what = absl::StrCat(path, ": tensor '", t.name(), "'");
      got = reader->Next(&record);
      if (!got.ok()) {
        return absl::DataLossError(absl::StrCat(what, ": ", WithoutPath(got.status(), path)));
      }
      if (!*got) return absl::DataLossError(absl::StrCat(what, ": missing (file truncated)"));
      if (reader->records_read() - 1 != t.record_index()) {
        return absl::DataLossError(absl::StrCat(what, ": out of order"));
      }
      const uint32_t actual = crc32c::Value(record);
      if (actual != t.crc32c()) {
        return absl::DataLossError(absl::StrFormat("%s: checksum mismatch (crc32c %08x, expected %08x)",
                                                   what, actual, t.crc32c()));
      }
      if (vars.Contains(t.name()) ||
          (t.partition_count() == 0 && assemblies.count(t.name()) > 0)) {
        return absl::DataLossError(absl::StrCat(what, ": duplicate variable"));
      }
      if (t.partition_count() > 0) {
        RETURN_IF_ERROR(AddPartition(t, record, what, data_bytes, &assemblies[t.name()]));
        continue;
      }
      if (t.dtype() == CHECKPOINT_DTYPE_FLOAT && t.shape_size() == 2 &&
          static_cast<int64_t>(record.size()) == FloatBytes(t.shape(0), t.shape(1))) {
        RowMatrixXf m(t.shape(0), t.shape(1));
        if (!record.empty()) std::memcpy(m.data(), record.data(), record.size());
        vars.floats.emplace(t.name(), std::move(m));
      } else if (t.dtype() == CHECKPOINT_DTYPE_INT64 && t.shape_size() == 0 &&
                 record.size() == sizeof(int64_t)) {
        int64_t v;
        std::memcpy(&v, record.data(), sizeof(v));
        vars.ints.emplace(t.name(), v);
      } else {
        return absl::DataLossError(absl::StrCat(what, ": bad dtype/shape/size"));
      }
    }
    ASSIGN_OR_RETURN(bool more, reader->Next(&record));
    if (more) return absl::DataLossError(absl::StrCat(path, ": unexpected records after tensors"));
    if (size != shard.size_bytes() || crc != shard.file_crc32c()) {
      return absl::DataLossError(absl::StrCat(path, ": file checksum/size mismatch (", size,
                                              " bytes, expected ", shard.size_bytes(), ")"));
    }
  }
  for (auto& [name, a] : assemblies) {
    if (static_cast<int>(a.parts.size()) != a.count) {
      return absl::DataLossError(absl::StrCat("checkpoint ", prefix, ": variable '", name,
                                              "' has ", a.parts.size(), " of its ", a.count,
                                              " row partitions"));
    }
    vars.floats.emplace(name, std::move(a.whole));
  }
  return vars;
}

absl::StatusOr<RestoredCheckpoint> RestoreLatest(const std::string& model_dir,
                                                 const io::Env& env) {
  std::vector<std::string> candidates;
  absl::StatusOr<std::optional<CheckpointState>> state = ReadCheckpointState(model_dir, env);
  std::optional<int64_t> named_step;
  if (!state.ok()) {
    spdlog::warn("checkpoint: {}", state.status().ToString());
  } else if (state->has_value()) {
    const std::string p = ResolvePath(model_dir, (*state)->model_checkpoint_path);
    candidates.push_back(p);
    absl::StatusOr<int64_t> s = StepFromPrefix(p);
    if (s.ok()) named_step = *s;
  }
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> list, ListCheckpoints(model_dir, env));
  for (auto it = list.rbegin(); it != list.rend(); ++it) {
    if (named_step && it->step >= *named_step) continue;  // only older ones
    candidates.push_back(it->prefix);
  }
  if (candidates.empty()) return absl::NotFoundError(absl::StrCat("no checkpoint in ", model_dir));
  absl::Status first_error;
  for (const std::string& p : candidates) {
    absl::StatusOr<Variables> vars = Restore(p, env);
    if (vars.ok()) {
      ASSIGN_OR_RETURN(int64_t step, StepFromPrefix(p));
      return RestoredCheckpoint{step, p, *std::move(vars)};
    }
    // The error names the file.
    spdlog::warn("checkpoint: {}; trying an older checkpoint", vars.status().ToString());
    if (first_error.ok()) first_error = vars.status();
  }
  return first_error;
}

absl::StatusOr<std::vector<std::string>> WarmStart(const std::string& ckpt_dir_or_path,
                                                   Variables* vars,
                                                   const std::string& vars_regex,
                                                   const io::Env& env) {
  // TF selects with re.match: anchored at the start only.
  RE2 re("^(?:" + vars_regex + ")", RE2::Quiet);
  if (!re.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("warm start: bad regex '", vars_regex, "': ", re.error()));
  }
  ASSIGN_OR_RETURN(std::string prefix, ResolveCheckpointPath(env, ckpt_dir_or_path));
  ASSIGN_OR_RETURN(Variables from, Restore(prefix, env));
  std::vector<std::string> names;
  Variables updated = *vars;
  // Every problem, for one line: "name [shape] dtype" missing, or "name: the
  // model's ..., the checkpoint's ...".
  std::vector<std::string> missing, mismatched;
  auto shape_of = [](const RowMatrixXf& m) {
    return absl::StrCat("[", m.rows(), ", ", m.cols(), "] float32");
  };
  for (auto& [name, m] : updated.floats) {
    if (!RE2::PartialMatch(name, re)) continue;
    const auto it = from.floats.find(name);
    if (it == from.floats.end()) {
      if (from.ints.count(name)) {
        mismatched.push_back(absl::StrCat(name, ": model ", shape_of(m), ", checkpoint [] int64"));
      } else {
        missing.push_back(absl::StrCat(name, " ", shape_of(m)));
      }
      continue;
    }
    if (it->second.rows() != m.rows() || it->second.cols() != m.cols()) {
      mismatched.push_back(
          absl::StrCat(name, ": model ", shape_of(m), ", checkpoint ", shape_of(it->second)));
      continue;
    }
    m = it->second;
    names.push_back(name);
  }
  for (auto& [name, v] : updated.ints) {
    if (!RE2::PartialMatch(name, re)) continue;
    const auto it = from.ints.find(name);
    if (it == from.ints.end()) {
      if (from.floats.count(name)) {
        mismatched.push_back(absl::StrCat(name, ": model [] int64, checkpoint ",
                                          shape_of(from.floats.at(name))));
      } else {
        missing.push_back(absl::StrCat(name, " [] int64"));
      }
      continue;
    }
    v = it->second;
    names.push_back(name);
  }
  if (!missing.empty() || !mismatched.empty()) {
    std::string message = absl::StrCat("warm start from ", prefix, ": ");
    if (!missing.empty()) {
      absl::StrAppend(&message, missing.size(), " variable(s) of the model missing: ",
                      absl::StrJoin(missing, ", "));
    }
    if (!mismatched.empty()) {
      absl::StrAppend(&message, missing.empty() ? "" : "; ", mismatched.size(),
                      " mismatched: ", absl::StrJoin(mismatched, ", "));
    }
    absl::StrAppend(&message, " (a checkpoint of another model or other columns?)");
    return mismatched.empty() ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  }
  *vars = std::move(updated);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace checkpoint
}  // namespace estuary
