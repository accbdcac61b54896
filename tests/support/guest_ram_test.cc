#include "support/guest_ram.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace vgpu::test {
namespace {

constexpr uint64_t kSize = 4ull << 20;

TEST(GuestRamTest, SingleRegionCoversTheWholeMemfd) {
  Result<std::unique_ptr<GuestRam>> ram = GuestRam::Create(kSize, GuestRamLayout::kSingleRegion);
  ASSERT_TRUE(ram) << ram.error().message;

  std::vector<vhost_user::MemoryRegionDescription> regions = (*ram)->Descriptions();

  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(regions[0].guest_phys_addr, 0u);
  EXPECT_EQ(regions[0].memory_size, kSize);
  EXPECT_EQ(regions[0].mmap_offset, 0u);
  struct stat status {};
  ASSERT_EQ(fstat((*ram)->fd(), &status), 0);
  EXPECT_EQ(static_cast<uint64_t>(status.st_size), kSize);
}

TEST(GuestRamTest, VgaLayoutHasTwoRegionsAroundTheHole) {
  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::Create(kSize, GuestRamLayout::kTwoRegionsWithVgaHole);
  ASSERT_TRUE(ram) << ram.error().message;

  std::vector<vhost_user::MemoryRegionDescription> regions = (*ram)->Descriptions();

  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].guest_phys_addr, 0u);
  EXPECT_EQ(regions[0].memory_size, kVgaHoleStart);
  EXPECT_EQ(regions[1].guest_phys_addr, kVgaHoleEnd);
  EXPECT_EQ(regions[1].memory_size, kSize - kVgaHoleEnd);
  EXPECT_EQ(regions[1].mmap_offset, kVgaHoleEnd);
  EXPECT_NE(regions[0].userspace_addr, regions[1].userspace_addr);
  EXPECT_EQ(regions[1].userspace_addr - regions[0].userspace_addr, kVgaHoleEnd);
}

TEST(GuestRamTest, HoleIsNotAddressable) {
  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::Create(kSize, GuestRamLayout::kTwoRegionsWithVgaHole);
  ASSERT_TRUE(ram);

  EXPECT_FALSE((*ram)->HostPointer(kVgaHoleStart, 1));
  EXPECT_FALSE((*ram)->HostPointer(kVgaHoleStart - 8, 16));  // Straddles the hole's start.
  EXPECT_TRUE((*ram)->HostPointer(kVgaHoleStart - 8, 8));
  EXPECT_TRUE((*ram)->HostPointer(kVgaHoleEnd, 8));
  EXPECT_FALSE((*ram)->HostPointer(kSize - 4, 8));
  EXPECT_FALSE((*ram)->HostPointer(~0ull - 2, 8));  // Wraps.
}

TEST(GuestRamTest, WriteThenReadRoundTripsThroughTheMemfd) {
  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::Create(kSize, GuestRamLayout::kTwoRegionsWithVgaHole);
  ASSERT_TRUE(ram);
  const uint64_t value = 0x1122334455667788;

  ASSERT_TRUE((*ram)->WriteObject(kVgaHoleEnd + 16, value));

  Result<uint64_t> read = (*ram)->ReadObject<uint64_t>(kVgaHoleEnd + 16);
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, value);
  uint64_t from_file = 0;
  ASSERT_EQ(pread((*ram)->fd(), &from_file, sizeof(from_file), kVgaHoleEnd + 16), 8);
  EXPECT_EQ(from_file, value);
}

TEST(GuestRamTest, AllocateAlignsAndSkipsTheHole) {
  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::Create(kSize, GuestRamLayout::kTwoRegionsWithVgaHole);
  ASSERT_TRUE(ram);

  Result<uint64_t> first = (*ram)->Allocate(100, 16);
  Result<uint64_t> second = (*ram)->Allocate(100, 4096);
  (*ram)->SetAllocationCursor(kVgaHoleStart - 64);
  Result<uint64_t> below_hole = (*ram)->Allocate(64, 16);
  Result<uint64_t> across_hole = (*ram)->Allocate(128, 16);

  ASSERT_TRUE(first && second && below_hole && across_hole);
  EXPECT_NE(*first, 0u);
  EXPECT_EQ(*first % 16, 0u);
  EXPECT_EQ(*second % 4096, 0u);
  EXPECT_GE(*second, *first + 100);
  EXPECT_EQ(*below_hole, kVgaHoleStart - 64);
  EXPECT_EQ(*across_hole, kVgaHoleEnd);
}

TEST(GuestRamTest, AllocateFailsWhenExhausted) {
  Result<std::unique_ptr<GuestRam>> ram = GuestRam::Create(kSize, GuestRamLayout::kSingleRegion);
  ASSERT_TRUE(ram);

  EXPECT_FALSE((*ram)->Allocate(kSize, 16));
  EXPECT_TRUE((*ram)->Allocate(kSize / 2, 16));
}

}  // namespace
}  // namespace vgpu::test
