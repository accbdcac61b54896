// HostVisibleRegion: where the guest may map a blob, and what the VMM is asked to do.
#include "gpu/host_visible_region.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <vector>

#include "gpu/protocol.h"

namespace vgpu::gpu {
namespace {

struct RecordingMapper final : virtio::SharedMemoryMapper {
  Result<void> Map(const virtio::ShmemMapping& mapping) override {
    maps.push_back(mapping);
    if (fail) return MakeError(ErrorKind::kClosed, "the VMM failed it");
    return {};
  }
  Result<void> Unmap(uint8_t shmid, uint64_t offset, uint64_t length) override {
    unmaps.push_back({shmid, offset, length});
    return {};
  }
  struct Unmapped {
    uint8_t shmid;
    uint64_t offset;
    uint64_t length;
  };
  std::vector<virtio::ShmemMapping> maps;
  std::vector<Unmapped> unmaps;
  bool fail = false;
};

renderer::ExportedBlob Blob(uint64_t size) {
  return renderer::ExportedBlob{
      .fd = UniqueFd(memfd_create("blob", MFD_CLOEXEC)), .size = size, .map_info = kMapCacheCached};
}

TEST(HostVisibleRegionTest, NothingIsMappedWithoutAMapperOrARegion) {
  HostVisibleRegion region(1 << 20);
  EXPECT_FALSE(region.can_map());
  Result<void> mapped = region.Map(0, Blob(4096));
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().kind, ErrorKind::kUnsupported);
  HostVisibleRegion none(0);
  none.SetMapper(std::make_shared<RecordingMapper>());
  EXPECT_FALSE(none.can_map());
}

TEST(HostVisibleRegionTest, GuestOffsetsAreCheckedBeforeTheVmmIsAsked) {
  auto mapper = std::make_shared<RecordingMapper>();
  HostVisibleRegion region(1 << 20);
  region.SetMapper(mapper);
  ASSERT_TRUE(region.Map(64 << 10, Blob(64 << 10)));
  ASSERT_EQ(mapper->maps.size(), 1u);
  EXPECT_EQ(mapper->maps[0].shmid, kShmIdHostVisible);
  EXPECT_EQ(mapper->maps[0].shm_offset, 64u << 10);
  EXPECT_EQ(mapper->maps[0].length, 64u << 10);
  EXPECT_TRUE(mapper->maps[0].writable);
  for (uint64_t offset : {uint64_t{100}, uint64_t{1} << 20, (uint64_t{1} << 20) - 4096,
                          ~uint64_t{0} - 4095, uint64_t{32} << 10, uint64_t{96} << 10}) {
    Result<void> refused = region.Map(offset, Blob(64 << 10));
    ASSERT_FALSE(refused) << offset;
    EXPECT_EQ(refused.error().kind, ErrorKind::kInvalidArgument) << offset;
  }
  EXPECT_FALSE(region.Map(0, Blob(0)));
  EXPECT_EQ(mapper->maps.size(), 1u);  // None of those reached the VMM.
  // Right before and right after the mapping: fine.
  EXPECT_TRUE(region.Map(0, Blob(64 << 10)));
  EXPECT_TRUE(region.Map(128 << 10, Blob(64 << 10)));
  EXPECT_EQ(region.mapping_count(), 3u);
}

TEST(HostVisibleRegionTest, UnmapNamesOneMappingAndAFailedMapKeepsNothing) {
  auto mapper = std::make_shared<RecordingMapper>();
  HostVisibleRegion region(1 << 20);
  region.SetMapper(mapper);
  mapper->fail = true;
  EXPECT_FALSE(region.Map(0, Blob(4096)));
  EXPECT_EQ(region.mapping_count(), 0u);
  mapper->fail = false;
  ASSERT_TRUE(region.Map(0, Blob(8192)));
  EXPECT_FALSE(region.Unmap(4096));
  ASSERT_TRUE(region.Unmap(0));
  ASSERT_EQ(mapper->unmaps.size(), 1u);
  EXPECT_EQ(mapper->unmaps[0].offset, 0u);
  EXPECT_EQ(mapper->unmaps[0].length, 8192u);
  EXPECT_FALSE(region.Unmap(0));
}

TEST(HostVisibleRegionTest, ResetAndANewConnectionForgetWithoutAskingTheVmm) {
  auto mapper = std::make_shared<RecordingMapper>();
  HostVisibleRegion region(1 << 20);
  region.SetMapper(mapper);
  ASSERT_TRUE(region.Map(0, Blob(4096)));
  region.Forget();
  EXPECT_EQ(region.mapping_count(), 0u);
  ASSERT_TRUE(region.Map(0, Blob(4096)));  // The place is free again.
  region.SetMapper(std::make_shared<RecordingMapper>());
  EXPECT_EQ(region.mapping_count(), 0u);
  EXPECT_TRUE(mapper->unmaps.empty());
}

}  // namespace
}  // namespace vgpu::gpu
