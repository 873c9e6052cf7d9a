#include "estimator/feature_hash.h"

#include "gtest/gtest.h"

namespace estuary {
namespace {

// Values from TF 2.15: tf.strings.to_hash_bucket_fast(s, 2**62) and
// tf.sparse.cross_hashed(..., num_buckets=0, hash_key=0xDECAFCAFFE).
TEST(FeatureHashTest, Fingerprint64MatchesTensorFlow) {
  EXPECT_EQ(Fingerprint64("") % (uint64_t{1} << 62), 1936946117179621455ULL);
  EXPECT_EQ(Fingerprint64("hello") % (uint64_t{1} << 62), 3786372426573024488ULL);
  EXPECT_EQ(StringToHashBucket("日本", int64_t{1} << 62), 1065147945313323979LL);
}

TEST(FeatureHashTest, Int64HashesAsDecimalString) {
  EXPECT_EQ(Int64ToHashString(-42), "-42");
  EXPECT_EQ(Int64ToHashString(int64_t{1} << 40), "1099511627776");
}

TEST(FeatureHashTest, CrossInt64IsRawValueNotString) {
  const uint64_t x = Fingerprint64("x");
  EXPECT_EQ(CrossHashToBucket(FingerprintCat64(FingerprintCat64(kCrossedColumnHashKey,
                                                                CrossComponentHash(int64_t{3})),
                                               x),
                              0),
            306214652172042612LL);
  EXPECT_EQ(CrossHashToBucket(FingerprintCat64(FingerprintCat64(kCrossedColumnHashKey,
                                                                CrossComponentHash("3")),
                                               x),
                              0),
            7523888765770311565LL);
}

TEST(FeatureHashTest, FingerprintCat64IsOrderSensitive) {
  EXPECT_NE(FingerprintCat64(1, 2), FingerprintCat64(2, 1));
}

}  // namespace
}  // namespace estuary
