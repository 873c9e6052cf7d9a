// Checkpoints in a model_dir, as tf.estimator users expect to find them:
//
//   <model_dir>/checkpoint                          TF's text CheckpointState:
//       model_checkpoint_path: "model.ckpt-1000"    the latest
//       all_model_checkpoint_paths: "model.ckpt-500"  every kept one, oldest
//       all_model_checkpoint_paths: "model.ckpt-1000" first
//   <model_dir>/model.ckpt-<step>.data-<i>-of-<n>   shard files
//   <model_dir>/model.ckpt-<step>.manifest          written last
//
// Two formats, read alike (Restore, RestoreLatest, WarmStart, ListTensors
// pick by the files present: a `.manifest` is Estuary's, an `.index` TF's):
//
// TF's V2 tensor bundle (SaveOptions::format kTf, run_config.
// checkpoint_format "tf"): <prefix>.index + <prefix>.data-00000-of-00001
// (common/tf_bundle/tensor_bundle.h) with TF's variable names and shapes
// (common/tf_bundle/tf_variables.h), which TF 2.15's Estimator restores and
// tf.train.load_checkpoint reads; the `.index` is written last (a checkpoint
// whose `.index` exists is complete) and is checksummed per block, every
// tensor by its masked crc32c. A model_dir TF wrote is read the same way.
//
// Estuary's own format (proto/checkpoint.proto, the default): a
// shard file is TFRecord-framed (record 0: a ShardHeader indexing the
// tensors; then one record of raw little-endian bytes per tensor); the
// manifest lists every shard with its size, whole-file crc32c and tensor
// index (name, dtype, shape, offset, crc32c of the tensor's bytes). Restore
// verifies every checksum; a mismatch is DataLoss naming the file and the
// tensor.
//
// Files. Every file operation goes through an io::Env (SaveOptions::env, or
// the last argument; io::Env::Default() unless a test injects faults).
//
// Crash safety. Every file is written as `<name>.tmp-<random>`, fsynced,
// renamed to its name, and the directory fsynced (io::PublishFile). The manifest is written
// only after every shard is durable, and the `checkpoint` state file is
// replaced (same protocol) only after the manifest is durable; old
// checkpoints beyond keep_checkpoint_max are deleted (manifest first) only
// after that. So at every instant — a kill -9 at any point included — the
// checkpoint named latest is complete, and a checkpoint without a manifest
// is never used. Leftovers of a crash (`*.tmp-*` files, uncommitted shards,
// half-deleted checkpoints) are never read, and are deleted by a later commit
// that deletes old checkpoints, once they are older than every kept one.
//
// Sharding. WriteShard writes one shard independently (e.g. on each
// parameter server, into a shared model_dir) and returns its ShardEntry;
// the coordinator then calls CommitCheckpoint with all entries (sent to it,
// or read back with ReadShardEntry). Save = one shard + commit.
//
// Thread-safety: the functions are thread-safe for different model_dirs. For
// one model_dir, at most one process/thread may commit (CommitCheckpoint /
// Save) at a time — the chief in a cluster; shard writers and readers
// (Restore*, List*, Latest*) may run concurrently with it. A reader racing
// with deletion of an old checkpoint may see NotFound for it; RestoreLatest
// then falls back as described below.
#ifndef ESTUARY_COMMON_CHECKPOINT_H_
#define ESTUARY_COMMON_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/tensor.h"
#include "common/variables.h"
#include "proto/checkpoint.pb.h"

namespace estuary {
namespace checkpoint {

// The checkpoint stores exactly the common Variables type.
using Variables = ::estuary::Variables;

inline constexpr char kDefaultBasename[] = "model.ckpt";
inline constexpr char kStateFileName[] = "checkpoint";

// Which format Save writes.
enum class CheckpointFormat { kNative, kTf };
// "native" | "tf" -> the format; InvalidArgument otherwise.
absl::StatusOr<CheckpointFormat> ParseCheckpointFormat(const std::string& name);

struct SaveOptions {
  // kTf: Save writes a TF V2 tensor bundle (see the file comment) instead
  // of a shard + manifest; the state file and deletion are the same.
  CheckpointFormat format = CheckpointFormat::kNative;
  // kTf only: tensors written as they are besides the variables (those of
  // TF's training graph that Estuary does not keep: the optimizers'
  // hyper-parameters and `iter`, tf_bundle::TfOptimizerVariables).
  std::map<std::string, Tensor> tf_extra;
  // How many checkpoints to keep (the newest); 0 keeps all. TF's default.
  int keep_checkpoint_max = 5;
  // Every file operation goes through it; not owned, never null.
  const io::Env* env = &io::Env::Default();
  // Asked, after the commit point, before each checkpoint beyond
  // keep_checkpoint_max is deleted (oldest first); false keeps that one on
  // disk for now (e.g. an evaluator leases it: distribute/checkpoint_lease):
  // it leaves the state file's list but stays complete, and a later commit
  // asks again and deletes it once allowed. Checkpoints within
  // keep_checkpoint_max are never asked about nor deleted because of a kept
  // one. Empty: every one may be deleted. Called on the committing thread.
  std::function<bool(int64_t step)> may_delete;
};

// "<model_dir>/model.ckpt-<step>": a checkpoint's prefix (its "path" in TF).
std::string CheckpointPrefix(const std::string& model_dir, int64_t step);
// "<prefix>.data-00001-of-00004", "<prefix>.manifest".
std::string ShardFileName(const std::string& prefix, int shard_index, int num_shards);
std::string ManifestFileName(const std::string& prefix);

// Saves `vars` as checkpoint `step` (one shard), makes it the latest and
// deletes checkpoints beyond options.keep_checkpoint_max. Returns its prefix.
// InvalidArgument for a negative step or a name in both maps; I/O errors
// name the file. Overwrites an existing checkpoint of the same step (a crash
// while doing so can leave that step unreadable: RestoreLatest then falls
// back to an older one).
absl::StatusOr<std::string> Save(const std::string& model_dir, int64_t step, const Variables& vars,
                                 const SaveOptions& options = {});

// Writes shard `shard_index` of `num_shards` of checkpoint `step` (durable
// when it returns). Creates model_dir if needed. Returns the entry the
// manifest will list.
absl::StatusOr<ShardEntry> WriteShard(const std::string& model_dir, int64_t step, int shard_index,
                                      int num_shards, const Variables& vars,
                                      const io::Env& env = io::Env::Default());

// A part of a float variable partitioned by row (a parameter server's part
// of an embedding table): global row r of the variable (full_rows rows) is
// local row r / count of partition r % count = index.
struct RowPartition {
  int64_t full_rows = 0;
  int index = 0;
  int count = 1;
};
// WriteShard where the floats named in `partitions` are row partitions
// (their matrices hold the local rows). Restore reassembles every
// partitioned variable whole once all its `count` parts are in the
// checkpoint's shards (DataLoss otherwise). InvalidArgument for a
// partition that is not a float or whose rows do not match.
absl::StatusOr<ShardEntry> WriteShard(const std::string& model_dir, int64_t step, int shard_index,
                                      int num_shards, const Variables& vars,
                                      const std::map<std::string, RowPartition>& partitions,
                                      const io::Env& env = io::Env::Default());

// Rebuilds a written shard's entry from its file (verifying its header and
// computing its size and crc32c), for a coordinator that did not receive it.
// NotFound naming the file if the shard is missing.
absl::StatusOr<ShardEntry> ReadShardEntry(const std::string& model_dir, int64_t step,
                                          int shard_index, int num_shards,
                                          const io::Env& env = io::Env::Default());

// Writes the manifest listing `shards` (exactly one entry per index 0..n-1;
// InvalidArgument otherwise), then the state file naming this checkpoint the
// latest, then deletes old ones beyond keep_checkpoint_max (those
// options.may_delete allows). Every shard file
// must exist with the recorded size (FailedPrecondition naming the missing
// or mismatched shard otherwise). Returns the prefix. I/O errors name the
// file. The commit point is the rename of the state file: an error before it
// leaves the previous checkpoint the latest; an error after it (fsync of the
// directory) leaves this one the latest (deletion errors are only logged).
absl::StatusOr<std::string> CommitCheckpoint(const std::string& model_dir, int64_t step,
                                             const std::vector<ShardEntry>& shards,
                                             const SaveOptions& options = {});

// TF's CheckpointState. Paths are as written in the file (relative to
// model_dir for files Estuary writes; TF accepts both).
struct CheckpointState {
  std::string model_checkpoint_path;
  std::vector<std::string> all_model_checkpoint_paths;
  std::vector<double> all_model_checkpoint_timestamps;
  double last_preserved_timestamp = 0;
};
// Parses/serializes TF's text format. Unknown fields are InvalidArgument.
absl::StatusOr<CheckpointState> ParseCheckpointState(const std::string& text);
std::string SerializeCheckpointState(const CheckpointState& state);
// Reads <model_dir>/checkpoint: nullopt if absent; DataLoss if unparsable.
absl::StatusOr<std::optional<CheckpointState>> ReadCheckpointState(
    const std::string& model_dir, const io::Env& env = io::Env::Default());

// A complete checkpoint (its manifest or, for a TF checkpoint, its index exists).
struct CheckpointInfo {
  int64_t step = 0;
  std::string prefix;  // "<model_dir>/model.ckpt-<step>"
};
// Complete checkpoints in model_dir (by manifest or index presence, not verified),
// ordered by step. Empty if model_dir does not exist.
absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(
    const std::string& model_dir, const io::Env& env = io::Env::Default());

// The latest checkpoint's prefix as tf.train.latest_checkpoint would name
// it: the state file's model_checkpoint_path (resolved against model_dir) if
// its manifest exists; without a state file, the highest complete step.
// NotFound if there is none. Not verified (RestoreLatest verifies).
absl::StatusOr<std::string> LatestCheckpoint(const std::string& model_dir,
                                             const io::Env& env = io::Env::Default());
// The step of LatestCheckpoint; NotFound if none.
absl::StatusOr<int64_t> LatestStep(const std::string& model_dir,
                                   const io::Env& env = io::Env::Default());
// Parses "<...>/model.ckpt-1000" -> 1000. InvalidArgument otherwise.
absl::StatusOr<int64_t> StepFromPrefix(const std::string& prefix);

// Reads and verifies every tensor of the checkpoint at `prefix` (either
// format; a TF checkpoint's variables as tf_bundle::FromTfTensors maps them).
// NotFound naming the manifest if neither it nor an index exists (an
// incomplete checkpoint);
// NotFound naming a missing shard file; DataLoss "<file>: tensor '<name>':
// ..." for a checksum mismatch or corrupt framing.
absl::StatusOr<Variables> Restore(const std::string& prefix,
                                  const io::Env& env = io::Env::Default());

struct RestoredCheckpoint {
  int64_t step = 0;
  std::string prefix;
  Variables vars;
};
// Restores the latest checkpoint; if it is unreadable (any error), logs a
// warning and falls back to the newest complete older one that restores.
// NotFound if model_dir has no checkpoint; if none restores, the error of
// the latest.
absl::StatusOr<RestoredCheckpoint> RestoreLatest(const std::string& model_dir,
                                                 const io::Env& env = io::Env::Default());

// One tensor of a checkpoint as stored (TF's names and shapes in a TF
// checkpoint; Estuary's [rows, cols] in a native one).
struct TensorListing {
  std::string name;
  std::string dtype;  // "float32", "int64", ... (TF's names)
  std::vector<int64_t> shape;
};
struct CheckpointListing {
  std::string format;  // "native" | "tf"
  std::vector<std::string> files;  // the checkpoint's files
  std::vector<TensorListing> tensors;  // by name
};
// Lists the tensors of the checkpoint at `prefix` (either format) without
// reading tensor data (`estuary inspect`). NotFound naming both files if
// neither a manifest nor an index exists; errors of ReadManifest /
// tf_bundle::BundleReader::Open.
absl::StatusOr<CheckpointListing> ListTensors(const std::string& prefix,
                                              const io::Env& env = io::Env::Default());

// Reads the tensor index (names, dtypes, shapes) of a native checkpoint
// without reading tensor data.
absl::StatusOr<Manifest> ReadManifest(const std::string& prefix,
                                      const io::Env& env = io::Env::Default());

// tf.estimator.WarmStartSettings: initializes the variables of `*vars` whose
// names match `vars_regex` at their start (RE2, anchored at the start like
// Python's re.match, which TF uses; default all) from `ckpt_dir_or_path`
// (a model_dir: its latest checkpoint; or a checkpoint prefix). Every
// selected variable must be in the checkpoint with the same kind and shape:
// otherwise NotFound (only missing ones) or InvalidArgument, one line naming the checkpoint and listing
// every missing variable (name, shape, dtype) and every mismatched one
// (the model's and the checkpoint's shape/dtype); `*vars` is unchanged on
// error. Either format (a TF 2.15 Estimator's model_dir included). Returns
// the names warm-started.
absl::StatusOr<std::vector<std::string>> WarmStart(const std::string& ckpt_dir_or_path,
                                                   Variables* vars,
                                                   const std::string& vars_regex = ".*",
                                                   const io::Env& env = io::Env::Default());

}  // namespace checkpoint
}  // namespace estuary

#endif  // ESTUARY_COMMON_CHECKPOINT_H_
