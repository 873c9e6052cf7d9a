#include "common/crc32c.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace estuary {
namespace crc32c {
namespace {

TEST(Crc32cTest, StandardVectors) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value(descending), 0x113FDB5Cu);
  EXPECT_EQ(Value(""), 0u);
}

TEST(Crc32cTest, PortableMatchesStandardVectors) {
  EXPECT_EQ(ExtendPortable(0, "123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(ExtendPortable(0, zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(Crc32cTest, HardwareAndPortableAgreeOnAllLengthsAndAlignments) {
  std::mt19937 rng(42);
  std::string buf(300, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t len = 0; len + offset <= buf.size(); len += 7) {
      ASSERT_EQ(Extend(0, buf.data() + offset, len), ExtendPortable(0, buf.data() + offset, len))
          << "offset " << offset << " len " << len;
    }
  }
}

TEST(Crc32cTest, ExtendComposes) {
  const std::string a = "hello ", b = "world, this is a longer tail of bytes";
  EXPECT_EQ(Extend(Value(a), b.data(), b.size()), Value(a + b));
  EXPECT_EQ(ExtendPortable(ExtendPortable(0, a.data(), a.size()), b.data(), b.size()),
            Value(a + b));
}

TEST(Crc32cTest, MaskRoundTripsAndChangesValue) {
  for (uint32_t crc : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu, 0x12345678u}) {
    EXPECT_NE(MaskCrc(crc), crc);
    EXPECT_EQ(UnmaskCrc(MaskCrc(crc)), crc);
    EXPECT_NE(MaskCrc(MaskCrc(crc)), MaskCrc(crc));
  }
  // Masked crc of 8 zero bytes, the length header of an empty TFRecord.
  EXPECT_EQ(MaskCrc(Value(std::string(8, '\0'))), 0x07980329u);
}

}  // namespace
}  // namespace crc32c
}  // namespace estuary
