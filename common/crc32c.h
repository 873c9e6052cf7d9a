// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
// TFRecord framing, LevelDB/TF table blocks and TF checkpoint files.
//
// Written here because no Debian package ships a public C++ crc32c library
// (abseil 2022-06 keeps its crc32c internal; leveldb's is not exported). Uses
// the SSE4.2 `crc32` instruction when the CPU has it (checked at run time)
// and a slicing-by-8 table otherwise; both give identical results.
//
// All functions are pure and thread-safe.
#ifndef ESTUARY_COMMON_CRC32C_H_
#define ESTUARY_COMMON_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace estuary {
namespace crc32c {

// Returns the crc32c of data[0, n) appended to a message whose crc32c was
// `init_crc`: Extend(Value(a), b) == Value(a + b).
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);

// The crc32c of data[0, n), e.g. Value("123456789", 9) == 0xE3069283.
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(absl::string_view data) { return Extend(0, data.data(), data.size()); }

// The table-driven implementation, always (for tests and benchmarks).
uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n);

// Whether Extend uses the SSE4.2 instruction on this machine.
bool IsHardwareAccelerated();

// Masking as TFRecord and LevelDB store checksums: a CRC of a string that
// itself contains CRCs is weak, so stored CRCs are rotated and offset.
inline uint32_t MaskCrc(uint32_t crc) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

// Inverse of MaskCrc: UnmaskCrc(MaskCrc(c)) == c.
inline uint32_t UnmaskCrc(uint32_t masked) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace crc32c
}  // namespace estuary

#endif  // ESTUARY_COMMON_CRC32C_H_
