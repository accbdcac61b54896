#include "base/checked_math.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace vgpu {
namespace {

TEST(CheckedMath, AddDetectsUnsignedWrap) {
  EXPECT_EQ(CheckedAdd<uint32_t>(0xfffffff0u, 0xfu), 0xffffffffu);
  EXPECT_FALSE(CheckedAdd<uint32_t>(0xfffffff0u, 0x10u));
}

TEST(CheckedMath, MulDetectsOverflowOfTheResultType) {
  EXPECT_EQ(CheckedMul<uint64_t>(uint32_t{0x10000}, uint32_t{0x10000}), 0x100000000ull);
  EXPECT_FALSE(CheckedMul<uint32_t>(uint32_t{0x10000}, uint32_t{0x10000}));
}

TEST(CheckedMath, SubDetectsUnderflow) {
  EXPECT_EQ(CheckedSub<uint32_t>(5u, 5u), 0u);
  EXPECT_FALSE(CheckedSub<uint32_t>(4u, 5u));
}

TEST(CheckedMath, RangeFitsAtTheEdges) {
  EXPECT_TRUE(RangeFits<uint64_t>(0, 16, 16));
  EXPECT_TRUE(RangeFits<uint64_t>(16, 0, 16));
  EXPECT_FALSE(RangeFits<uint64_t>(1, 16, 16));
  EXPECT_FALSE(RangeFits<uint64_t>(17, 0, 16));
  // offset + length wraps to a small number: must still be rejected.
  EXPECT_FALSE(RangeFits<uint64_t>(8, std::numeric_limits<uint64_t>::max(), 16));
}

}  // namespace
}  // namespace vgpu
