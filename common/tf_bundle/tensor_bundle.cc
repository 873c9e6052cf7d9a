#include "common/tf_bundle/tensor_bundle.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crc32c.h"
#include "common/status_macros.h"
#include "common/tf_dtype.h"
#include "leveldb/env.h"
#include "leveldb/iterator.h"
#include "leveldb/options.h"
#include "leveldb/table.h"
#include "leveldb/table_builder.h"

namespace estuary {
namespace tf_bundle {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "bundle tensors are stored as little-endian host bytes");

// tensorflow/core/util/tensor_bundle/tensor_bundle.h: kTensorBundleVersion
// (the producer written) and the newest min_consumer this reader accepts.
constexpr int kBundleVersion = 1;
// TF's table::Options (tensorflow/core/lib/io/table_options.h) defaults;
// the bundle writer only turns compression off.
constexpr size_t kTableBlockSize = 262144;
constexpr int kTableRestartInterval = 16;

// The table's leveldb::WritableFile: collects the bytes, written durably
// through the io::Env afterwards.
class StringWritableFile : public leveldb::WritableFile {
 public:
  explicit StringWritableFile(std::string* out) : out_(out) {}
  leveldb::Status Append(const leveldb::Slice& data) override {
    out_->append(data.data(), data.size());
    return leveldb::Status::OK();
  }
  leveldb::Status Close() override { return leveldb::Status::OK(); }
  leveldb::Status Flush() override { return leveldb::Status::OK(); }
  leveldb::Status Sync() override { return leveldb::Status::OK(); }

 private:
  std::string* out_;
};

// The table's leveldb::RandomAccessFile over the index file's contents.
class StringRandomAccessFile : public leveldb::RandomAccessFile {
 public:
  explicit StringRandomAccessFile(const std::string* data) : data_(data) {}
  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice* result,
                       char* /*scratch*/) const override {
    if (offset > data_->size()) return leveldb::Status::IOError("read past the end");
    *result = leveldb::Slice(data_->data() + offset,
                             std::min<uint64_t>(n, data_->size() - offset));
    return leveldb::Status::OK();
  }

 private:
  const std::string* data_;
};

leveldb::Options TableOptions() {
  leveldb::Options options;
  options.compression = leveldb::kNoCompression;
  options.block_size = kTableBlockSize;
  options.block_restart_interval = kTableRestartInterval;
  return options;
}

int ElementSize(tensorflow::DataType dtype) {
  switch (dtype) {
    case tensorflow::DT_FLOAT:
      return 4;
    case tensorflow::DT_INT64:
      return 8;
    default:
      return 0;
  }
}

void PutVarint64(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Parses a varint64 at data[*pos, end); false if it runs past the end.
bool GetVarint64(const std::string& data, size_t end, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift <= 63 && *pos < end; shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(data[(*pos)++]);
    *v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

absl::Status CheckFilled(const std::string& name, const Tensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': negative dimension"));
    n *= d;
  }
  size_t have = 0;
  switch (t.dtype) {
    case DType::kFloat:
      have = t.floats.size();
      break;
    case DType::kInt64:
      have = t.ints.size();
      break;
    case DType::kString:
      have = t.strings.size();
      break;
  }
  if (static_cast<int64_t>(have) != n) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': ", have,
                                                   " values do not fill a shape of ", n,
                                                   " elements"));
  }
  return absl::OkStatus();
}

// How TF checksums a string's length (for backwards compatibility, a
// uint32 when it fits).
uint32_t ExtendWithLength(uint32_t crc, uint64_t len) {
  if (len <= UINT32_MAX) {
    const uint32_t len32 = static_cast<uint32_t>(len);
    return crc32c::Extend(crc, reinterpret_cast<const char*>(&len32), sizeof(len32));
  }
  return crc32c::Extend(crc, reinterpret_cast<const char*>(&len), sizeof(len));
}

// Appends the tensor's bytes to *data; returns their unmasked crc32c.
uint32_t EncodeTensor(const Tensor& t, std::string* data) {
  const size_t start = data->size();
  switch (t.dtype) {
    case DType::kFloat:
      data->append(reinterpret_cast<const char*>(t.floats.data()), t.floats.size() * 4);
      return crc32c::Value(data->data() + start, data->size() - start);
    case DType::kInt64:
      data->append(reinterpret_cast<const char*>(t.ints.data()), t.ints.size() * 8);
      return crc32c::Value(data->data() + start, data->size() - start);
    case DType::kString: {
      // TF's WriteStringTensor: the checksum covers each length (as a
      // uint32, or a uint64 past 4 GiB), then the masked length checksum,
      // then the bytes.
      uint32_t crc = 0;
      for (const std::string& s : t.strings) {
        PutVarint64(s.size(), data);
        crc = ExtendWithLength(crc, s.size());
      }
      const uint32_t length_checksum = crc32c::MaskCrc(crc);
      data->append(reinterpret_cast<const char*>(&length_checksum), sizeof(length_checksum));
      crc = crc32c::Extend(crc, reinterpret_cast<const char*>(&length_checksum),
                           sizeof(length_checksum));
      for (const std::string& s : t.strings) {
        data->append(s);
        crc = crc32c::Extend(crc, s.data(), s.size());
      }
      return crc;
    }
  }
  return 0;
}

std::string Where(const std::string& file, const std::string& name) {
  return absl::StrCat(file, ": tensor '", name, "'");
}

}  // namespace

std::string IndexFileName(const std::string& prefix) { return prefix + ".index"; }

std::string DataFileName(const std::string& prefix, int shard_index, int num_shards) {
  return absl::StrFormat("%s.data-%05d-of-%05d", prefix, shard_index, num_shards);
}

std::string TfDTypeName(int dtype) {
  switch (dtype) {
    case tensorflow::DT_FLOAT:
      return "float32";
    case tensorflow::DT_DOUBLE:
      return "float64";
    case tensorflow::DT_INT32:
      return "int32";
    case tensorflow::DT_UINT8:
      return "uint8";
    case tensorflow::DT_INT16:
      return "int16";
    case tensorflow::DT_INT8:
      return "int8";
    case tensorflow::DT_STRING:
      return "string";
    case tensorflow::DT_COMPLEX64:
      return "complex64";
    case tensorflow::DT_INT64:
      return "int64";
    case tensorflow::DT_BOOL:
      return "bool";
    case tensorflow::DT_BFLOAT16:
      return "bfloat16";
    case tensorflow::DT_UINT16:
      return "uint16";
    case tensorflow::DT_COMPLEX128:
      return "complex128";
    case tensorflow::DT_HALF:
      return "float16";
    case tensorflow::DT_RESOURCE:
      return "resource";
    case tensorflow::DT_VARIANT:
      return "variant";
    case tensorflow::DT_UINT32:
      return "uint32";
    case tensorflow::DT_UINT64:
      return "uint64";
    default:
      return absl::StrCat("DT_", dtype);
  }
}

absl::StatusOr<BundleEntries> WriteDataShard(const std::string& prefix, int shard_index,
                                             int num_shards,
                                             const std::map<std::string, Tensor>& tensors,
                                             const io::Env& env) {
  const std::string path = DataFileName(prefix, shard_index, num_shards);
  if (num_shards < 1 || shard_index < 0 || shard_index >= num_shards) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": shard ", shard_index, " of ", num_shards, " is not a shard"));
  }
  BundleEntries entries;
  std::string data;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) return absl::InvalidArgumentError(path + ": a tensor without a name");
    absl::Status filled = CheckFilled(name, t);
    if (!filled.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", filled.message()));
    tensorflow::BundleEntryProto& e = entries[name];
    e.set_dtype(ToTfDataType(t.dtype));
    tensorflow::TensorShapeProto* shape = e.mutable_shape();
    for (int64_t d : t.shape) shape->add_dim()->set_size(d);
    e.set_shard_id(shard_index);
    e.set_offset(static_cast<int64_t>(data.size()));
    const uint32_t crc = EncodeTensor(t, &data);
    e.set_size(static_cast<int64_t>(data.size()) - e.offset());
    e.set_crc32c(crc32c::MaskCrc(crc));
  }
  RETURN_IF_ERROR(io::WriteFileDurably(env, path, data));
  return entries;
}

absl::Status WriteIndex(const std::string& prefix, int num_shards,
                        const std::vector<BundleEntries>& entries, const io::Env& env) {
  const std::string path = IndexFileName(prefix);
  std::map<std::string, const tensorflow::BundleEntryProto*> all;
  std::map<int, uint64_t> shard_sizes;
  for (const BundleEntries& shard : entries) {
    for (const auto& [name, e] : shard) {
      if (!all.emplace(name, &e).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(path, name), ": in two shards"));
      }
      if (e.shard_id() < 0 || e.shard_id() >= num_shards) {
        return absl::InvalidArgumentError(absl::StrCat(Where(path, name), ": shard ",
                                                       e.shard_id(), " of ", num_shards));
      }
      const std::string data_file = DataFileName(prefix, e.shard_id(), num_shards);
      auto size = shard_sizes.find(e.shard_id());
      if (size == shard_sizes.end()) {
        absl::StatusOr<uint64_t> got = env.GetFileSize(data_file);
        if (!got.ok()) {
          return absl::FailedPreconditionError(
              absl::StrCat(Where(data_file, name), ": data file missing: ", got.status().message()));
        }
        size = shard_sizes.emplace(e.shard_id(), *got).first;
      }
      if (static_cast<uint64_t>(e.offset() + e.size()) > size->second) {
        return absl::FailedPreconditionError(absl::StrCat(
            Where(data_file, name), ": ends at byte ", e.offset() + e.size(), " of a ",
            size->second, "-byte file"));
      }
    }
  }
  tensorflow::BundleHeaderProto header;
  header.set_num_shards(num_shards);
  header.set_endianness(tensorflow::BundleHeaderProto::LITTLE);
  header.mutable_version()->set_producer(kBundleVersion);

  std::string contents;
  StringWritableFile file(&contents);
  leveldb::TableBuilder builder(TableOptions(), &file);
  builder.Add("", header.SerializeAsString());
  for (const auto& [name, e] : all) builder.Add(name, e->SerializeAsString());
  leveldb::Status finished = builder.Finish();
  if (!finished.ok()) {
    return absl::InternalError(absl::StrCat(path, ": building the table: ", finished.ToString()));
  }
  return io::WriteFileDurably(env, path, contents);
}

BundleWriter::BundleWriter(BundleWriterOptions options) : options_(options) {}

absl::Status BundleWriter::Add(const std::string& name, const Tensor& tensor) {
  if (name.empty()) return absl::InvalidArgumentError("BundleWriter::Add: a tensor without a name");
  if (tensors_.count(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("BundleWriter::Add: tensor '", name, "' added twice"));
  }
  RETURN_IF_ERROR(CheckFilled(name, tensor));
  tensors_.emplace(name, tensor);
  return absl::OkStatus();
}

absl::Status BundleWriter::Finish(const std::string& prefix) {
  const io::Env& env = *options_.env;
  RETURN_IF_ERROR(env.MakeDirs(io::DirName(prefix)));
  ASSIGN_OR_RETURN(BundleEntries entries, WriteDataShard(prefix, 0, 1, tensors_, env));
  return WriteIndex(prefix, 1, {entries}, env);
}

absl::StatusOr<std::unique_ptr<BundleReader>> BundleReader::Open(const std::string& prefix,
                                                                 const io::Env& env) {
  const std::string path = IndexFileName(prefix);
  ASSIGN_OR_RETURN(const std::string contents, io::ReadWholeFile(env, path));
  auto not_index = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(path, ": not a TF checkpoint index (", why, ")"));
  };
  StringRandomAccessFile file(&contents);
  leveldb::Table* raw_table = nullptr;
  leveldb::Status opened = leveldb::Table::Open(TableOptions(), &file, contents.size(), &raw_table);
  if (!opened.ok()) return not_index(opened.ToString());
  std::unique_ptr<leveldb::Table> table(raw_table);
  leveldb::ReadOptions read;
  read.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(table->NewIterator(read));
  it->SeekToFirst();
  if (!it->Valid()) {
    return not_index(it->status().ok() ? "no header" : it->status().ToString());
  }
  tensorflow::BundleHeaderProto header;
  if (!it->key().empty() || !header.ParseFromArray(it->value().data(), it->value().size())) {
    return not_index("bad header");
  }
  if (header.endianness() != tensorflow::BundleHeaderProto::LITTLE) {
    return absl::UnimplementedError(path + ": a big-endian bundle");
  }
  for (int bad : header.version().bad_consumers()) {
    if (bad == kBundleVersion) {
      return absl::UnimplementedError(
          absl::StrCat(path, ": the bundle's writer excludes bundle readers version ", bad));
    }
  }
  if (header.version().min_consumer() > kBundleVersion) {
    return absl::UnimplementedError(absl::StrCat(path, ": bundle needs a reader of version ",
                                                 header.version().min_consumer(), " (this is ",
                                                 kBundleVersion, ")"));
  }
  if (header.num_shards() < 1) {
    return not_index(absl::StrCat("num_shards ", header.num_shards()));
  }
  std::unique_ptr<BundleReader> reader(new BundleReader(prefix, env));
  reader->num_shards_ = header.num_shards();
  for (it->Next(); it->Valid(); it->Next()) {
    const std::string name = it->key().ToString();
    tensorflow::BundleEntryProto entry;
    if (!entry.ParseFromArray(it->value().data(), it->value().size())) {
      return absl::DataLossError(absl::StrCat(Where(path, name), ": unparsable index entry"));
    }
    if (entry.shard_id() < 0 || entry.shard_id() >= header.num_shards() || entry.offset() < 0 ||
        entry.size() < 0) {
      return absl::DataLossError(absl::StrCat(Where(path, name), ": bad shard/offset/size"));
    }
    TensorInfo info;
    info.name = name;
    info.dtype_name = TfDTypeName(entry.dtype());
    info.supported = true;
    switch (entry.dtype()) {
      case tensorflow::DT_FLOAT:
        info.dtype = DType::kFloat;
        break;
      case tensorflow::DT_INT64:
        info.dtype = DType::kInt64;
        break;
      case tensorflow::DT_STRING:
        info.dtype = DType::kString;
        break;
      default:
        info.supported = false;
    }
    for (const auto& dim : entry.shape().dim()) info.shape.push_back(dim.size());
    info.sliced = entry.slices_size() > 0;
    reader->tensors_.push_back(std::move(info));
    reader->entries_.emplace(name, std::move(entry));
  }
  if (!it->status().ok()) return not_index(it->status().ToString());
  return reader;
}

absl::StatusOr<tensorflow::BundleEntryProto> BundleReader::Entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat(Where(IndexFileName(prefix_), name), ": not in the checkpoint"));
  }
  return it->second;
}

absl::StatusOr<Tensor> BundleReader::Decode(const std::string& name,
                                            const tensorflow::BundleEntryProto& entry,
                                            const std::string& data_file,
                                            const std::string& bytes) const {
  const std::string index = IndexFileName(prefix_);
  if (entry.slices_size() > 0) {
    return absl::UnimplementedError(
        absl::StrCat(Where(index, name), ": a partitioned (sliced) variable is not supported"));
  }
  if (ElementSize(entry.dtype()) == 0 && entry.dtype() != tensorflow::DT_STRING) {
    return absl::UnimplementedError(absl::StrCat(
        Where(index, name), ": dtype ", TfDTypeName(entry.dtype()),
        " is not supported (Estuary reads float32, int64 and string tensors)"));
  }
  const std::string what = Where(data_file, name);
  const uint64_t end = static_cast<uint64_t>(entry.offset()) + entry.size();
  if (end > bytes.size()) {
    return absl::DataLossError(absl::StrCat(what, ": ends at byte ", end, " of a ", bytes.size(),
                                            "-byte file (truncated)"));
  }
  Tensor t;
  int64_t n = 1;
  for (const auto& dim : entry.shape().dim()) {
    if (dim.size() < 0) return absl::DataLossError(absl::StrCat(what, ": unknown dimension"));
    t.shape.push_back(dim.size());
    if (__builtin_mul_overflow(n, dim.size(), &n)) {
      return absl::DataLossError(absl::StrCat(what, ": the shape's element count overflows"));
    }
  }
  // Every element takes at least one byte of the entry (a string its
  // length varint): a shape claiming more elements than the entry's bytes
  // is refused before anything is allocated for them.
  if (n > static_cast<int64_t>(entry.size())) {
    return absl::DataLossError(absl::StrCat(what, ": shape claims ", n, " elements in ",
                                            entry.size(), " bytes"));
  }
  const char* data = bytes.data() + entry.offset();
  uint32_t crc = 0;
  switch (entry.dtype()) {
    case tensorflow::DT_FLOAT:
    case tensorflow::DT_INT64: {
      const int64_t want = n * ElementSize(entry.dtype());
      if (want != entry.size()) {
        return absl::DataLossError(absl::StrCat(what, ": ", entry.size(), " bytes for ", n, " ",
                                                TfDTypeName(entry.dtype()), " elements"));
      }
      crc = crc32c::Value(data, entry.size());
      if (entry.dtype() == tensorflow::DT_FLOAT) {
        t.dtype = DType::kFloat;
        t.floats.resize(n);
        if (n > 0) std::memcpy(t.floats.data(), data, entry.size());
      } else {
        t.dtype = DType::kInt64;
        t.ints.resize(n);
        if (n > 0) std::memcpy(t.ints.data(), data, entry.size());
      }
      break;
    }
    case tensorflow::DT_STRING: {
      t.dtype = DType::kString;
      size_t pos = entry.offset();
      std::vector<uint64_t> lengths(n);
      for (int64_t i = 0; i < n; ++i) {
        if (!GetVarint64(bytes, end, &pos, &lengths[i])) {
          return absl::DataLossError(absl::StrCat(what, ": bad string length"));
        }
        crc = ExtendWithLength(crc, lengths[i]);
      }
      uint32_t length_checksum = 0;
      if (pos + sizeof(length_checksum) > end) {
        return absl::DataLossError(absl::StrCat(what, ": bad string lengths"));
      }
      std::memcpy(&length_checksum, bytes.data() + pos, sizeof(length_checksum));
      if (length_checksum != crc32c::MaskCrc(crc)) {
        return absl::DataLossError(absl::StrCat(what, ": string lengths checksum mismatch"));
      }
      crc = crc32c::Extend(crc, bytes.data() + pos, sizeof(length_checksum));
      pos += sizeof(length_checksum);
      t.strings.reserve(n);
      for (int64_t i = 0; i < n; ++i) {
        if (lengths[i] > end - pos) {
          return absl::DataLossError(absl::StrCat(what, ": string past the tensor's end"));
        }
        t.strings.emplace_back(bytes.data() + pos, lengths[i]);
        crc = crc32c::Extend(crc, bytes.data() + pos, lengths[i]);
        pos += lengths[i];
      }
      if (pos != end) {
        return absl::DataLossError(absl::StrCat(what, ": ", end - pos, " bytes after the strings"));
      }
      break;
    }
    default:
      return absl::InternalError(absl::StrCat(what, ": unexpected dtype"));
  }
  if (crc32c::MaskCrc(crc) != entry.crc32c()) {
    return absl::DataLossError(absl::StrFormat("%s: checksum mismatch (crc32c %08x, expected %08x)",
                                               what, crc32c::MaskCrc(crc), entry.crc32c()));
  }
  return t;
}

absl::StatusOr<Tensor> BundleReader::Read(const std::string& name) const {
  ASSIGN_OR_RETURN(const tensorflow::BundleEntryProto entry, Entry(name));
  const std::string data_file = DataFileName(prefix_, entry.shard_id(), num_shards_);
  if (entry.slices_size() > 0 ||
      (ElementSize(entry.dtype()) == 0 && entry.dtype() != tensorflow::DT_STRING)) {
    return Decode(name, entry, data_file, "");  // the error, without reading
  }
  ASSIGN_OR_RETURN(const std::string bytes, io::ReadWholeFile(env_, data_file));
  return Decode(name, entry, data_file, bytes);
}

absl::StatusOr<std::map<std::string, Tensor>> BundleReader::ReadAll() const {
  std::map<std::string, Tensor> out;
  std::map<int, std::vector<const std::string*>> by_shard;
  for (const auto& [name, entry] : entries_) by_shard[entry.shard_id()].push_back(&name);
  for (const auto& [shard, names] : by_shard) {
    const std::string data_file = DataFileName(prefix_, shard, num_shards_);
    ASSIGN_OR_RETURN(const std::string bytes, io::ReadWholeFile(env_, data_file));
    for (const std::string* name : names) {
      ASSIGN_OR_RETURN(Tensor t, Decode(*name, entries_.at(*name), data_file, bytes));
      out.emplace(*name, std::move(t));
    }
  }
  return out;
}

}  // namespace tf_bundle
}  // namespace estuary
