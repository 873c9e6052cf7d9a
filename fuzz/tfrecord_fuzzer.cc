// libFuzzer harness: TFRecord files (common/io/tfrecord.h), plain and
// gzip-compressed, read through a stream that returns short reads. The
// first byte is the mode: bit 0 rewrites every record's length and data
// checksums to match (so the fuzzer explores past the CRCs, which it cannot
// forge), bit 1 reads the rest as gzip, the high bits set the read size.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "common/crc32c.h"
#include "common/io/tfrecord.h"
#include "fuzz/fuzz_util.h"

namespace {

void PutFixed32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }  // little-endian x86

// Makes every complete record's checksums right, in place.
void FixChecksums(std::string* file) {
  size_t pos = 0;
  while (pos + 12 <= file->size()) {
    char* h = &(*file)[pos];
    PutFixed32(h + 8, estuary::crc32c::MaskCrc(estuary::crc32c::Value(h, 8)));
    uint64_t length;
    std::memcpy(&length, h, 8);
    if (length > file->size() - pos - 12 || file->size() - pos - 12 - length < 4) return;
    char* d = h + 12;
    PutFixed32(d + length, estuary::crc32c::MaskCrc(estuary::crc32c::Value(d, length)));
    pos += 16 + length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode & 1) FixChecksums(&file);
  estuary::io::TFRecordOptions options;
  options.compression = (mode & 2) ? estuary::io::Compression::kGzip : estuary::io::Compression::kNone;
  std::unique_ptr<estuary::io::InputStream> in =
      std::make_unique<estuary::fuzz::MemoryInputStream>(std::move(file), 1 + (mode >> 2) * 97);
  auto reader = estuary::io::TFRecordReader::Open(std::move(in), options);
  if (!reader.ok()) return 0;
  std::string record;
  int64_t total = 0;
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&record);
    if (!more.ok() || !*more) break;
    total += static_cast<int64_t>(record.size());
    if ((*reader)->offset() < total) __builtin_trap();  // offsets count every byte read
  }
  return 0;
}
