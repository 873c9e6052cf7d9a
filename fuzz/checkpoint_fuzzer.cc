// libFuzzer harness: a checkpoint as Restore reads it (common/checkpoint.h):
// the manifest (a Manifest proto in a TFRecord) and the shard files it
// lists, and the text-format `checkpoint` state file.
//
// Input: a mode byte, then the manifest's proto bytes, then one part per
// shard file, each "#SHARD#" + that shard's records joined by "#REC#"
// (record 0 is its ShardHeader, then one record per tensor). The harness
// writes them as files into a scratch directory and calls Restore. The
// checksums (crc32c of files and tensors) are beyond what a fuzzer can
// forge, so the mode's bits fix them up after parsing the manifest:
//   1: format_version and num_shards made consistent,
//   2: each shard's size and file crc32c, each tensor's crc32c of the
//      record its record_index names,
//   4: the shard headers' step / shard_index / num_shards,
//   8: also parse the manifest part as a text-format CheckpointState.
// Shard file names are always replaced by the harness's own ("s<i>"), so
// it only ever reads its scratch directory.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "common/crc32c.h"
#include "fuzz/fuzz_util.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/checkpoint.pb.h"

namespace {

std::string* scratch = nullptr;

void AppendFixed32(std::string* out, uint32_t v) { out->append(reinterpret_cast<char*>(&v), 4); }

std::string Framed(const std::vector<std::string>& records) {
  std::string file;
  for (const std::string& r : records) {
    const uint64_t len = r.size();
    std::string header(reinterpret_cast<const char*>(&len), 8);
    file += header;
    AppendFixed32(&file, estuary::crc32c::MaskCrc(estuary::crc32c::Value(header)));
    file += r;
    AppendFixed32(&file, estuary::crc32c::MaskCrc(estuary::crc32c::Value(r)));
  }
  return file;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // TextFormat's parse errors: not findings
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/checkpoint_fuzzer.XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) __builtin_trap();
  scratch = new std::string(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::vector<std::string> parts = estuary::fuzz::SplitAt(estuary::fuzz::AsView(data + 1, size - 1), "#SHARD#");
  if (mode & 8) (void)estuary::checkpoint::ParseCheckpointState(parts[0]);

  std::filesystem::remove_all(*scratch);
  std::filesystem::create_directories(*scratch);
  const std::string prefix = estuary::checkpoint::CheckpointPrefix(*scratch, 1);
  std::vector<std::vector<std::string>> shards;
  for (size_t i = 1; i < parts.size(); ++i) shards.push_back(estuary::fuzz::SplitAt(parts[i], "#REC#"));

  std::string manifest_record = parts[0];
  estuary::Manifest manifest;
  if (manifest.ParseFromString(parts[0])) {
    if (mode & 1) {
      manifest.set_format_version(1);
      manifest.set_num_shards(manifest.shards_size());
    }
    for (int i = 0; i < manifest.shards_size(); ++i) {
      estuary::ShardEntry* shard = manifest.mutable_shards(i);
      shard->set_file(absl::StrCat("s", i));
      if (i >= static_cast<int>(shards.size())) continue;
      std::vector<std::string>& records = shards[i];
      if (mode & 4) {
        estuary::ShardHeader header;
        if (header.ParseFromString(records[0])) {
          header.set_step(manifest.step());
          header.set_shard_index(shard->shard_index());
          header.set_num_shards(manifest.num_shards());
          records[0] = header.SerializeAsString();
        }
      }
      if (mode & 2) {
        for (estuary::CheckpointTensorEntry& t : *shard->mutable_tensors()) {
          if (t.record_index() > 0 && t.record_index() < static_cast<int64_t>(records.size())) {
            t.set_crc32c(estuary::crc32c::Value(records[t.record_index()]));
          }
        }
        const std::string file = Framed(records);
        shard->set_size_bytes(static_cast<int64_t>(file.size()));
        shard->set_file_crc32c(estuary::crc32c::Value(file));
      }
    }
    manifest_record = manifest.SerializeAsString();
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    WriteFile(absl::StrCat(*scratch, "/s", i), Framed(shards[i]));
  }
  WriteFile(estuary::checkpoint::ManifestFileName(prefix), Framed({manifest_record}));
  (void)estuary::checkpoint::ReadManifest(prefix);
  (void)estuary::checkpoint::Restore(prefix);
  return 0;
}
