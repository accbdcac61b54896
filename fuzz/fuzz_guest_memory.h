// FuzzGuestMemory: memfd-backed guest RAM that lives for the whole fuzzing process and is wiped
// between inputs, so that one input never sees what an earlier one wrote (reproducible crashes).
//
//   static FuzzGuestMemory memory({{0, 8 << 20}, {8 << 20, 8 << 20}});   // Adjacent regions.
//   memory.Clear();                                                     // Start of each input.
//   memory.Write(0x1000, bytes);
//   std::shared_ptr<const virtio::GuestMemory> guest = memory.guest();
//
// All regions come from one memfd, laid out one after the other in the file. Each region's
// frontend (user) address is its guest address plus kUserAddressOffset.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "base/mapped_region.h"
#include "base/unique_fd.h"
#include "fuzz_support.h"
#include "virtio/guest_memory.h"

namespace vgpu::fuzz {

struct RegionLayout {
  uint64_t guest_address;
  uint64_t size;
};

inline constexpr uint64_t kUserAddressOffset = 0x7f0000000000ull;

class FuzzGuestMemory {
 public:
  explicit FuzzGuestMemory(const std::vector<RegionLayout>& layout) {
    for (const RegionLayout& region : layout) file_size_ += region.size;
    fd_ = UniqueFd(memfd_create("fuzz-guest-ram", MFD_CLOEXEC));
    if (!fd_.valid() || ftruncate(fd_.get(), static_cast<off_t>(file_size_)) != 0) {
      FuzzSetupFailed("memfd for guest memory");
    }
    std::vector<virtio::GuestMemoryRegion> regions;
    uint64_t file_offset = 0;
    for (const RegionLayout& layout_entry : layout) {
      Result<MappedRegion> mapping =
          MappedRegion::MapShared(fd_.get(), layout_entry.size, file_offset);
      if (!mapping) FuzzSetupFailed("mapping guest memory");
      virtio::GuestMemoryRegion region;
      region.guest_address = layout_entry.guest_address;
      region.size = layout_entry.size;
      region.user_address = layout_entry.guest_address + kUserAddressOffset;
      region.mapping = std::make_shared<const MappedRegion>(std::move(*mapping));
      regions.push_back(std::move(region));
      file_offset += layout_entry.size;
    }
    Result<std::shared_ptr<const virtio::GuestMemory>> memory =
        virtio::GuestMemory::Create(std::move(regions));
    if (!memory) FuzzSetupFailed("GuestMemory::Create");
    memory_ = std::move(*memory);
  }

  // Zeroes all of guest memory. Punching a hole frees the pages an input touched, so the cost is
  // proportional to what was used, not to the size of guest RAM.
  void Clear() {
    if (fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                  static_cast<off_t>(file_size_)) != 0) {
      FuzzSetupFailed("fallocate(PUNCH_HOLE) on guest memory");
    }
  }

  // Copies `bytes` to guest address `address`, clipped to the mapped memory (the fuzzer picks
  // addresses freely; what falls outside is dropped).
  void Write(uint64_t address, std::span<const uint8_t> bytes) {
    ForEachPiece(address, bytes.size(), [&](uint8_t* target, uint64_t done, uint64_t count) {
      std::memcpy(target, bytes.data() + done, count);
    });
  }

  // Sets `length` bytes at `address` to `value`, clipped the same way.
  void Fill(uint64_t address, uint64_t length, uint8_t value) {
    ForEachPiece(address, length, [&](uint8_t* target, uint64_t, uint64_t count) {
      std::memset(target, value, count);
    });
  }

  const std::shared_ptr<const virtio::GuestMemory>& guest() const { return memory_; }
  uint64_t size() const { return file_size_; }

  // Whether [data, data + length) lies inside one region's mapping: the oracle for "every span the
  // code under test produced points into guest memory".
  bool Contains(const uint8_t* data, size_t length) const {
    for (const virtio::GuestMemoryRegion& region : memory_->regions()) {
      const uint8_t* begin = region.host();
      if (data >= begin && length <= region.size &&
          static_cast<uint64_t>(data - begin) <= region.size - length) {
        return true;
      }
    }
    return false;
  }

 private:
  // Calls visit(host, offset into the range, count) for each piece of [address, address + length)
  // that lies in one region, in order, stopping at the first unmapped byte.
  template <class Visitor>
  void ForEachPiece(uint64_t address, uint64_t length, Visitor visit) {
    uint64_t done = 0;
    while (done < length) {
      const uint64_t current = address + done;
      if (current < address) return;  // Wrapped around the address space.
      const virtio::GuestMemoryRegion* region = RegionOf(current);
      if (region == nullptr) return;
      const uint64_t offset = current - region->guest_address;
      const uint64_t count = std::min(region->size - offset, length - done);
      visit(region->host() + offset, done, count);
      done += count;
    }
  }

  const virtio::GuestMemoryRegion* RegionOf(uint64_t address) const {
    for (const virtio::GuestMemoryRegion& region : memory_->regions()) {
      if (address >= region.guest_address && address - region.guest_address < region.size) {
        return &region;
      }
    }
    return nullptr;
  }

  UniqueFd fd_;
  uint64_t file_size_ = 0;
  std::shared_ptr<const virtio::GuestMemory> memory_;
};

}  // namespace vgpu::fuzz
