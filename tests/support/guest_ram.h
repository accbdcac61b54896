// GuestRam: memfd-backed guest RAM as QEMU's `memory-backend-memfd,share=on` provides it, for a
// test that plays QEMU towards the daemon.
//
//   Result<std::unique_ptr<GuestRam>> ram =
//       GuestRam::Create(64 << 20, GuestRamLayout::kTwoRegionsWithVgaHole);
//   Result<uint64_t> buffer = (*ram)->Allocate(4096, 16);       // A guest-physical address.
//   (*ram)->WriteObject(*buffer, request);                        // Fill it.
//   frontend.SetMemTable(**ram);                                  // Hand the memfd over.
//
// The whole memfd is mapped once in the test process. Each region's "QEMU user address"
// (userspace_addr) is the test's own mapping address of that region, so user addresses are real,
// distinct and translate back to the same bytes; SET_VRING_ADDR uses them as QEMU does
// (vhost-user.rst: ring addresses are frontend virtual addresses).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vhost_user/message.h"

namespace vgpu::test {

enum class GuestRamLayout {
  // vhost-user-gpu-pci: one region, guest-physical 0..size.
  kSingleRegion,
  // vhost-user-vga: [0, 0xa0000) and [0xc0000, size) from the same memfd, the second at
  // mmap_offset 0xc0000; the legacy VGA window 0xa0000..0xc0000 is not RAM
  // (docs/ARCHITECTURE.md: "vhost-user-vga sends guest memory as two regions").
  kTwoRegionsWithVgaHole,
};

inline constexpr uint64_t kVgaHoleStart = 0xa0000;
inline constexpr uint64_t kVgaHoleEnd = 0xc0000;

struct GuestRamRegion {
  uint64_t guest_address = 0;
  uint64_t size = 0;
  uint64_t user_address = 0;  // The fake QEMU virtual address (our mapping of this region).
  uint64_t file_offset = 0;   // mmap_offset into the memfd.
};

class GuestRam {
 public:
  // `size` is the memfd's size in bytes (a multiple of 4096, at least 1 MiB for the VGA layout).
  static Result<std::unique_ptr<GuestRam>> Create(uint64_t size, GuestRamLayout layout);
  ~GuestRam();
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;

  GuestRamLayout layout() const { return layout_; }
  uint64_t file_size() const { return file_size_; }
  const std::vector<GuestRamRegion>& regions() const { return regions_; }
  int fd() const { return fd_.get(); }

  // A new descriptor for the memfd; each vhost-user message carries its own.
  Result<UniqueFd> DuplicateFd() const;
  // The regions as the wire describes them (SET_MEM_TABLE / ADD_MEM_REG).
  std::vector<vhost_user::MemoryRegionDescription> Descriptions() const;

  // The test's pointer to guest-physical [address, address + length), which must lie inside one
  // region.
  Result<uint8_t*> HostPointer(uint64_t guest_address, uint64_t length) const;
  // The QEMU user address of a guest-physical address (for SET_VRING_ADDR).
  Result<uint64_t> UserAddress(uint64_t guest_address, uint64_t length) const;

  Result<void> Write(uint64_t guest_address, std::span<const uint8_t> bytes);
  Result<void> Read(uint64_t guest_address, std::span<uint8_t> bytes) const;
  Result<void> Fill(uint64_t guest_address, uint64_t length, uint8_t value);

  template <class T>
  Result<void> WriteObject(uint64_t guest_address, const T& object) {
    return Write(guest_address,
                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&object), sizeof(T)));
  }
  template <class T>
  Result<T> ReadObject(uint64_t guest_address) const {
    T object{};
    Result<void> read =
        Read(guest_address, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&object), sizeof(T)));
    if (!read) return ErrorOf(read);
    return object;
  }

  // Hands out the next free guest-physical range of `size` bytes aligned to `alignment` (a power
  // of two), never crossing a region boundary or the VGA hole. Guest address 0 is never handed
  // out. Ranges are never reused.
  Result<uint64_t> Allocate(uint64_t size, uint64_t alignment);
  // Moves the allocator to `guest_address` (for tests that want a buffer at a given place, e.g.
  // just below the VGA hole).
  void SetAllocationCursor(uint64_t guest_address) { next_free_ = guest_address; }

 private:
  GuestRam(GuestRamLayout layout, UniqueFd fd, uint8_t* mapping, uint64_t file_size,
           std::vector<GuestRamRegion> regions);
  const GuestRamRegion* FindRegion(uint64_t guest_address, uint64_t length) const;

  GuestRamLayout layout_;
  UniqueFd fd_;
  uint8_t* mapping_;
  uint64_t file_size_;
  std::vector<GuestRamRegion> regions_;
  uint64_t next_free_ = 0x1000;
};

}  // namespace vgpu::test
