#include "gpu/backing_store.h"

#include <gtest/gtest.h>

#include "command_fixture.h"

namespace vgpu::gpu {
namespace {

class BackingStoreTest : public testing::CommandFixture {};

TEST_F(BackingStoreTest, CopiesAcrossEntries) {
  uint8_t* a = Host(kDataArea, 4);
  uint8_t* b = Host(kDataArea + 0x1000, 4);
  std::memcpy(a, "abcd", 4);
  std::memcpy(b, "efgh", 4);
  const MemEntry entries[] = {{kDataArea, 4, 0}, {kDataArea + 0x1000, 4, 0}};
  Result<BackingStore> store = BackingStore::Create(memory_, entries);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->size(), 8u);
  char out[6] = {};
  ASSERT_TRUE(store->view().CopyOut(1, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out), 6)));
  EXPECT_EQ(std::string(out, 6), "bcdefg");
  EXPECT_FALSE(store->view().CopyOut(3, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out), 6)));
  EXPECT_FALSE(
      store->view().CopyOut(~0ull, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out), 2)));
}

TEST_F(BackingStoreTest, RejectsEntriesOutsideMemory) {
  const MemEntry outside[] = {{kMemorySize, 16, 0}};
  EXPECT_FALSE(BackingStore::Create(memory_, outside));
  const MemEntry straddling[] = {{kMemorySize - 8, 16, 0}};
  EXPECT_FALSE(BackingStore::Create(memory_, straddling));
}

}  // namespace
}  // namespace vgpu::gpu

namespace vgpu::gpu {
namespace {

TEST(BackingStoreRegions, EntryCrossingFromOneRegionIntoTheNextIsCopiedWhole) {
  // Two adjacent regions backed by different memfds, like guest RAM split by a frontend.
  std::vector<virtio::GuestMemoryRegion> regions;
  for (uint64_t base : {0x0ull, 0x10000ull}) {
    UniqueFd fd(memfd_create("backing-region", MFD_CLOEXEC));
    ASSERT_EQ(ftruncate(fd.get(), 0x10000), 0);
    virtio::GuestMemoryRegion region;
    region.guest_address = base;
    region.size = 0x10000;
    region.user_address = 0x7f0000000000ull + base;
    region.mapping =
        std::make_shared<const MappedRegion>(*MappedRegion::MapShared(fd.get(), 0x10000, 0));
    regions.push_back(std::move(region));
  }
  std::shared_ptr<const virtio::GuestMemory> memory = *virtio::GuestMemory::Create(regions);
  const uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(memory->Write(virtio::GuestAddress{0xfffc}, bytes));
  const MemEntry entries[] = {{0xfffc, 8, 0}};
  Result<BackingStore> store = BackingStore::Create(memory, entries);
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(store->span_count(), 2u);
  uint8_t out[8] = {};
  ASSERT_TRUE(store->view().CopyOut(0, out));
  EXPECT_EQ(std::memcmp(out, bytes, 8), 0);
}

}  // namespace
}  // namespace vgpu::gpu
