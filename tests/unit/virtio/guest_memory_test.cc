#include "virtio/guest_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory_fixture.h"

namespace vgpu::virtio {
namespace {

using testing::MakeMemory;

TEST(GuestMemory, TranslatesInsideARegionUpToItsLastByte) {
  auto memory = MakeMemory({{0x1000, 0x2000}});
  EXPECT_TRUE(memory->Translate(GuestAddress{0x1000}, 0x2000));
  EXPECT_TRUE(memory->Translate(GuestAddress{0x2fff}, 1));
  EXPECT_FALSE(memory->Translate(GuestAddress{0x2fff}, 2));
  EXPECT_FALSE(memory->Translate(GuestAddress{0x3000}, 1));
  EXPECT_FALSE(memory->Translate(GuestAddress{0x0fff}, 1));
}

TEST(GuestMemory, TranslateRejectsLengthsThatWrap) {
  auto memory = MakeMemory({{0x1000, 0x2000}});
  EXPECT_FALSE(memory->Translate(GuestAddress{0x1000}, ~0ull));
  std::vector<std::span<uint8_t>> spans;
  EXPECT_FALSE(memory->TranslateRange(GuestAddress{0x1000}, ~0ull, spans, 8));
  EXPECT_FALSE(memory->TranslateRange(GuestAddress{~0ull - 4}, 16, spans, 8));
}

TEST(GuestMemory, RangeAcrossTwoAdjacentRegionsBecomesTwoSpans) {
  auto memory = MakeMemory({{0x0, 0x1000}, {0x1000, 0x1000}});
  std::vector<std::span<uint8_t>> spans;
  ASSERT_TRUE(memory->TranslateRange(GuestAddress{0xff0}, 0x20, spans, 8));
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].size(), 0x10u);
  EXPECT_EQ(spans[1].size(), 0x10u);
  // A single-span translation refuses the crossing.
  EXPECT_FALSE(memory->Translate(GuestAddress{0xff0}, 0x20));
}

TEST(GuestMemory, RangeIntoAHoleFails) {
  // Like vhost-user-vga: a hole between 0xa0000 and 0xc0000.
  auto memory = MakeMemory({{0x0, 0xa0000}, {0xc0000, 0x40000}});
  std::vector<std::span<uint8_t>> spans;
  EXPECT_FALSE(memory->TranslateRange(GuestAddress{0x9fff0}, 0x20, spans, 8));
  EXPECT_FALSE(memory->Translate(GuestAddress{0xa0000}, 1));
  EXPECT_TRUE(memory->Translate(GuestAddress{0xc0000}, 1));
}

TEST(GuestMemory, ReadAndWriteCrossRegions) {
  auto memory = MakeMemory({{0x0, 0x1000}, {0x1000, 0x1000}});
  const uint8_t pattern[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(memory->Write(GuestAddress{0xffc}, pattern));
  uint8_t back[8] = {};
  ASSERT_TRUE(memory->Read(GuestAddress{0xffc}, back));
  EXPECT_EQ(0, std::memcmp(pattern, back, 8));
}

TEST(GuestMemory, TranslatesFrontendAddresses) {
  auto memory = MakeMemory({{0x10000, 0x1000}});
  const uint64_t user = 0x10000 + testing::kUserAddressOffset;
  EXPECT_TRUE(memory->TranslateUserAddress(user, 0x1000));
  EXPECT_FALSE(memory->TranslateUserAddress(user, 0x1001));
  EXPECT_FALSE(memory->TranslateUserAddress(user - 1, 1));
}

TEST(GuestMemory, RejectsOverlappingAndWrappingRegions) {
  auto make_region = [](uint64_t guest, uint64_t size, uint64_t user) {
    UniqueFd fd(memfd_create("virtio-test", MFD_CLOEXEC));
    EXPECT_EQ(ftruncate(fd.get(), 0x2000), 0);
    GuestMemoryRegion region;
    region.guest_address = guest;
    region.size = size;
    region.user_address = user;
    region.mapping =
        std::make_shared<const MappedRegion>(*MappedRegion::MapShared(fd.get(), 0x2000, 0));
    return region;
  };
  EXPECT_FALSE(GuestMemory::Create(
      {make_region(0, 0x2000, 0x100000), make_region(0x1000, 0x1000, 0x200000)}));
  EXPECT_FALSE(GuestMemory::Create(
      {make_region(0, 0x1000, 0x100000), make_region(0x1000, 0x1000, 0x100800)}));
  EXPECT_FALSE(GuestMemory::Create({make_region(~0ull - 0x10, 0x1000, 0x100000)}));
  EXPECT_FALSE(GuestMemory::Create({make_region(0, 0x3000, 0x100000)}));  // Bigger than mapping.
  EXPECT_TRUE(GuestMemory::Create(
      {make_region(0, 0x1000, 0x100000), make_region(0x1000, 0x1000, 0x101000)}));
}

}  // namespace
}  // namespace vgpu::virtio
