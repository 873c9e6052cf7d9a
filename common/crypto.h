// The few cryptographic primitives the job's security needs, on OpenSSL's
// libcrypto: HMAC-SHA256 (the ring's challenge-response over the job token),
// random nonces, and a constant-time comparison (token checks).
#ifndef ESTUARY_COMMON_CRYPTO_H_
#define ESTUARY_COMMON_CRYPTO_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace estuary {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

// HMAC-SHA256 of `message` under `key` (an empty key is allowed: HMAC is
// defined for it, and two parties with different keys still disagree).
Sha256Digest HmacSha256(absl::string_view key, absl::string_view message);

// `n` bytes from OpenSSL's CSPRNG. Internal if it fails (no entropy).
absl::StatusOr<std::string> RandomBytes(size_t n);

// Whether a == b, in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace estuary

#endif  // ESTUARY_COMMON_CRYPTO_H_
