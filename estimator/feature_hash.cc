#include "estimator/feature_hash.h"

#include <farmhash.h>

#include <limits>

#include "absl/strings/str_cat.h"

namespace estuary {
namespace {

inline uint64_t ShiftMix(uint64_t v) { return v ^ (v >> 47); }

}  // namespace

uint64_t Fingerprint64(absl::string_view s) { return util::Fingerprint64(s.data(), s.size()); }

uint64_t FingerprintCat64(uint64_t fp1, uint64_t fp2) {
  static constexpr uint64_t kMul = 0xc6a4a7935bd1e995ULL;
  uint64_t result = fp1 ^ kMul;
  result ^= ShiftMix(fp2 * kMul) * kMul;
  result *= kMul;
  result = ShiftMix(result) * kMul;
  result = ShiftMix(result);
  return result;
}

int64_t StringToHashBucket(absl::string_view s, int64_t num_buckets) {
  return static_cast<int64_t>(Fingerprint64(s) % static_cast<uint64_t>(num_buckets));
}

std::string Int64ToHashString(int64_t v) { return absl::StrCat(v); }

int64_t CrossHashToBucket(uint64_t h, int64_t num_buckets) {
  const uint64_t m = num_buckets > 0 ? static_cast<uint64_t>(num_buckets)
                                     : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  return static_cast<int64_t>(h % m);
}

}  // namespace estuary
