// Guest memory for virtio unit tests: memfd-backed regions at chosen guest addresses, plus
// helpers to write descriptors and ring fields the way a driver would.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "base/mapped_region.h"
#include "base/unique_fd.h"
#include "virtio/descriptor_chain.h"
#include "virtio/guest_memory.h"
#include "virtio/split_virtqueue.h"

namespace vgpu::virtio::testing {

struct RegionSpec {
  uint64_t guest_address;
  uint64_t size;
};

// Builds GuestMemory whose user (frontend) addresses equal guest addresses plus a fixed offset,
// so tests can compute both.
inline constexpr uint64_t kUserAddressOffset = 0x7f0000000000ull;
// Where the ring tests lay out a queue's three parts in guest memory.
inline constexpr uint64_t kDescriptors = 0x1000;
inline constexpr uint64_t kAvailable = 0x2000;
inline constexpr uint64_t kUsed = 0x3000;

// A queue of `size` entries at kDescriptors, kAvailable and kUsed, as the frontend names them.
inline SplitVirtqueueLayout RingLayout(uint32_t size) {
  return {size, kDescriptors + kUserAddressOffset, kAvailable + kUserAddressOffset,
          kUsed + kUserAddressOffset};
}

inline std::shared_ptr<const GuestMemory> MakeMemory(const std::vector<RegionSpec>& specs) {
  std::vector<GuestMemoryRegion> regions;
  for (const RegionSpec& spec : specs) {
    UniqueFd fd(memfd_create("virtio-test", MFD_CLOEXEC));
    EXPECT_EQ(ftruncate(fd.get(), static_cast<off_t>(spec.size)), 0);
    Result<MappedRegion> mapping = MappedRegion::MapShared(fd.get(), spec.size, 0);
    EXPECT_TRUE(mapping);
    GuestMemoryRegion region;
    region.guest_address = spec.guest_address;
    region.size = spec.size;
    region.user_address = spec.guest_address + kUserAddressOffset;
    region.mapping = std::make_shared<const MappedRegion>(std::move(*mapping));
    regions.push_back(std::move(region));
  }
  Result<std::shared_ptr<const GuestMemory>> memory = GuestMemory::Create(std::move(regions));
  EXPECT_TRUE(memory);
  return *memory;
}

inline uint8_t* HostPointer(const GuestMemory& memory, uint64_t guest_address, uint64_t length) {
  Result<std::span<uint8_t>> span = memory.Translate(GuestAddress{guest_address}, length);
  EXPECT_TRUE(span) << "test bug: 0x" << std::hex << guest_address << " not mapped";
  return span ? span->data() : nullptr;
}

inline void WriteDescriptor(const GuestMemory& memory, uint64_t table_address, uint32_t index,
                            const VirtqDescriptor& descriptor) {
  std::memcpy(HostPointer(memory, table_address + 16ull * index, 16), &descriptor, 16);
}

}  // namespace vgpu::virtio::testing
