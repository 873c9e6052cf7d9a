// TensorFlow-compatible hashing for categorical feature columns.
//
// These reproduce TF's kernels bit for bit (checked against TF 2.15 in
// feature_column_golden_test.cc):
// - StringToHashBucketFast: Fingerprint64(s) % num_buckets (farmhash's
//   Fingerprint64 is TF's Fingerprint64).
// - SparseCrossHashed: start from a hash key, fold in each component's hash
//   with FingerprintCat64, then % num_buckets. A string component hashes as
//   Fingerprint64(value); an int64 component hashes as its raw value (not
//   its decimal string).
#ifndef ESTUARY_ESTIMATOR_FEATURE_HASH_H_
#define ESTUARY_ESTIMATOR_FEATURE_HASH_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace estuary {

// The hash key tf.feature_column.crossed_column uses.
inline constexpr uint64_t kCrossedColumnHashKey = 0xDECAFCAFFEULL;

// TF's Fingerprint64 (farmhash Fingerprint64).
uint64_t Fingerprint64(absl::string_view s);

// TF's FingerprintCat64: combines two fingerprints (order matters).
uint64_t FingerprintCat64(uint64_t fp1, uint64_t fp2);

// TF's StringToHashBucketFast for one value; num_buckets > 0.
int64_t StringToHashBucket(absl::string_view s, int64_t num_buckets);

// How TF turns an int64 into a string before hashing (as_string): decimal.
std::string Int64ToHashString(int64_t v);

// The component hash SparseCrossHashed uses.
inline uint64_t CrossComponentHash(absl::string_view s) { return Fingerprint64(s); }
inline uint64_t CrossComponentHash(int64_t v) { return static_cast<uint64_t>(v); }

// Final step of SparseCrossHashed: num_buckets > 0 gives `h % num_buckets`;
// num_buckets == 0 gives `h % INT64_MAX` (TF's behaviour).
int64_t CrossHashToBucket(uint64_t h, int64_t num_buckets);

}  // namespace estuary

#endif  // ESTUARY_ESTIMATOR_FEATURE_HASH_H_
