// TensorFlow's V2 checkpoint format (a "tensor bundle", what tf.train.Saver,
// tf.train.Checkpoint and tf.estimator write and tf.train.load_checkpoint
// reads), read and written byte-compatibly with TF 2.15:
//
//   <prefix>.index                  a LevelDB-format table (no compression,
//                                   bytewise keys, empty metaindex, magic
//                                   0xdb4775248b80fb57): key "" ->
//                                   BundleHeaderProto; key <tensor name> ->
//                                   BundleEntryProto (dtype, shape, shard,
//                                   offset, size, masked crc32c)
//   <prefix>.data-00000-of-00002   the tensors' bytes, back to back
//   <prefix>.data-00001-of-00002
//
// A numeric tensor is its little-endian row-major bytes; a string tensor is
// the varint64 length of every element, the masked crc32c of those lengths
// (each as a little-endian uint64), then the elements' bytes. The entry's
// crc32c covers exactly the bytes of the tensor (for strings: the lengths
// as uint64s, the 4-byte length checksum, then the bytes), masked as
// TFRecord masks. The `.index` table is read and written with Debian's
// libleveldb (leveldb/table.h, table_builder.h): TF's table format is
// LevelDB's, byte for byte (tf_bundle_test checks that an index TF wrote
// reads, and that the index written here equals TF's for the same tensors).
//
// Supported dtypes: float32, int64, string (estuary::Tensor's). A bundle
// holding another dtype opens and lists it (TensorInfo::dtype_name), but
// Read of it is Unimplemented naming the file and tensor. Partitioned
// (sliced) entries are listed and Unimplemented likewise.
//
// Sharding: WriteDataShard writes one `.data` file independently (on each
// parameter server, into a shared directory) and returns the index entries
// of its tensors; WriteIndex (the chief) then writes the `.index` from every
// shard's entries. BundleWriter = one shard + index.
//
// Crash safety: every file is written through io::WriteFileDurably (a
// temporary name, fsync, rename, directory fsync); the index is written
// only after every data shard is durable, so a bundle whose `.index`
// exists is complete. The `checkpoint` state file (common/checkpoint.h)
// names it only after that.
//
// Every error names the file (and the tensor). Codes: InvalidArgument for a
// bad call (a duplicate or empty name, values that do not fill the shape);
// NotFound for a missing file or tensor; DataLoss for a corrupt or
// truncated file (bad table, bad proto, checksum mismatch, sizes past the
// end of a data file); Unimplemented for a dtype, slice or endianness this
// reader does not read; I/O errors of the io::Env as they come.
//
// Thread-safety: BundleWriter is thread-compatible. BundleReader is
// thread-safe after Open (const methods; Read opens the data file anew).
#ifndef ESTUARY_COMMON_TF_BUNDLE_TENSOR_BUNDLE_H_
#define ESTUARY_COMMON_TF_BUNDLE_TENSOR_BUNDLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/io/env.h"
#include "common/tensor.h"
#include "proto/tf/tensor_bundle.pb.h"

namespace estuary {
namespace tf_bundle {

// "<prefix>.index".
std::string IndexFileName(const std::string& prefix);
// "<prefix>.data-00001-of-00004".
std::string DataFileName(const std::string& prefix, int shard_index, int num_shards);

// The tensor names and index entries of one data shard, by name.
using BundleEntries = std::map<std::string, tensorflow::BundleEntryProto>;

// Writes shard `shard_index` of `num_shards` (<prefix>.data-i-of-n) holding
// `tensors` (durable when it returns; the directory must exist). Returns
// their index entries (shard_id = shard_index). InvalidArgument for an
// empty name, a bad shard index, or values that do not fill a shape.
absl::StatusOr<BundleEntries> WriteDataShard(const std::string& prefix, int shard_index,
                                             int num_shards,
                                             const std::map<std::string, Tensor>& tensors,
                                             const io::Env& env = io::Env::Default());

// Writes <prefix>.index listing `entries` (the union of every shard's
// WriteDataShard result). Every entry's shard_id must be < num_shards and
// every data file must exist with at least offset + size bytes
// (FailedPrecondition naming the file and tensor otherwise); a name in two
// shards is InvalidArgument.
absl::Status WriteIndex(const std::string& prefix, int num_shards,
                        const std::vector<BundleEntries>& entries,
                        const io::Env& env = io::Env::Default());

struct BundleWriterOptions {
  // Every file operation goes through it; not owned, never null.
  const io::Env* env = &io::Env::Default();
};

// Collects tensors, then writes a one-shard bundle.
//
//   BundleWriter w;
//   RETURN_IF_ERROR(w.Add("global_step", Tensor::Ints({}, {1000})));
//   RETURN_IF_ERROR(w.Finish(model_dir + "/model.ckpt-1000"));
class BundleWriter {
 public:
  explicit BundleWriter(BundleWriterOptions options = {});

  // Adds a tensor (copied). InvalidArgument for an empty or duplicate name
  // or values that do not fill the shape (a scalar has shape {}).
  absl::Status Add(const std::string& name, const Tensor& tensor);

  // Writes <prefix>.data-00000-of-00001, then <prefix>.index (both durable);
  // creates the prefix's directory if needed. Errors of WriteDataShard /
  // WriteIndex. Overwrites an existing bundle at `prefix` (each file
  // atomically).
  absl::Status Finish(const std::string& prefix);

 private:
  BundleWriterOptions options_;
  std::map<std::string, Tensor> tensors_;
};

// One entry of a bundle's index.
struct TensorInfo {
  std::string name;
  // The dtype if Estuary's Tensor holds it (float32, int64, string); check
  // `supported` first.
  DType dtype = DType::kFloat;
  bool supported = false;
  std::string dtype_name;  // TF's: "float32", "int64", "string", "int32", ...
  std::vector<int64_t> shape;
  bool sliced = false;  // a partitioned variable's full entry
};

class BundleReader {
 public:
  // Reads and checks <prefix>.index (table checksums, header: endianness,
  // version). NotFound naming the index if it is absent; DataLoss naming it
  // if it is not a bundle index (too short, bad magic, bad block checksum,
  // an unparsable entry); Unimplemented for a big-endian bundle or one
  // whose min_consumer is newer than this reader.
  static absl::StatusOr<std::unique_ptr<BundleReader>> Open(
      const std::string& prefix, const io::Env& env = io::Env::Default());

  const std::string& prefix() const { return prefix_; }
  int num_shards() const { return num_shards_; }
  // Every tensor, sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  bool Contains(const std::string& name) const { return entries_.count(name) > 0; }
  // The raw index entry; NotFound naming the index and tensor.
  absl::StatusOr<tensorflow::BundleEntryProto> Entry(const std::string& name) const;

  // Reads and verifies one tensor. NotFound if it is not in the bundle
  // (naming the index) or its data file is missing; DataLoss
  // "<data file>: tensor '<name>': ..." for a short file, a crc32c mismatch
  // or a size that does not match the shape; Unimplemented "<index>:
  // tensor '<name>': dtype int32 is not supported" (or sliced).
  absl::StatusOr<Tensor> Read(const std::string& name) const;

  // Reads every tensor (each data file once). Errors of Read.
  absl::StatusOr<std::map<std::string, Tensor>> ReadAll() const;

 private:
  BundleReader(const std::string& prefix, const io::Env& env) : prefix_(prefix), env_(env) {}
  absl::StatusOr<Tensor> Decode(const std::string& name, const tensorflow::BundleEntryProto& entry,
                                const std::string& data_file, const std::string& bytes) const;

  std::string prefix_;
  const io::Env& env_;
  int num_shards_ = 1;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, tensorflow::BundleEntryProto> entries_;
};

// The TF DataType name ("float32", "int64", "string", "int32", "double",
// ...; "DT_<n>" for others), for error messages and `estuary inspect`.
std::string TfDTypeName(int dtype);

}  // namespace tf_bundle
}  // namespace estuary

#endif  // ESTUARY_COMMON_TF_BUNDLE_TENSOR_BUNDLE_H_
