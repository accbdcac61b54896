// GuestImage: the guest memory behind a 2D resource, laid out the way the guest driver's
// backing is, and the driver's writes into it.
//
//   Result<GuestImage> image = GuestImage::Allocate(ram, 1920, 1080, BackingLayout::kPages);
//   gpu.AttachBacking(1, image->entries());
//   image->FillPattern(7);                        // The whole frame, as the guest draws it.
//   image->SetPixel(10, 20, 0x00abcdef);          // One pixel (the per-frame marker).
//
// kPages (the default of the tool) is what Linux sends for a dumb buffer: its shmem pages, one
// virtio_gpu_mem_entry per 4 KiB page in no particular physical order
// (virtio_gpu_object_shmem_init: one entry per sg entry, and shmem pages are rarely adjacent).
// Here the pages come from one guest range and are listed in a fixed shuffled order. kContiguous
// is one entry covering one guest range (a guest that allocates its framebuffer contiguously,
// e.g. from CMA).
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "gpu/protocol.h"
#include "support/guest_ram.h"

namespace vgpu::bench {

enum class BackingLayout { kPages, kContiguous };

inline constexpr uint64_t kPageSize = 4096;

class GuestImage {
 public:
  // A width x height, 4 bytes per pixel, stride width * 4 image.
  static Result<GuestImage> Allocate(test::GuestRam& ram, uint32_t width, uint32_t height,
                                     BackingLayout layout);

  uint32_t width() const { return width_; }
  uint32_t height() const { return height_; }
  uint32_t stride() const { return width_ * 4; }
  uint64_t bytes() const { return uint64_t{stride()} * height_; }
  const std::vector<gpu::MemEntry>& entries() const { return entries_; }

  // A deterministic pattern over the whole image, x8r8g8b8 with X = 0.
  Result<void> FillPattern(uint32_t seed);
  static uint32_t PatternPixel(uint32_t x, uint32_t y, uint32_t seed);
  Result<void> SetPixel(uint32_t x, uint32_t y, uint32_t value);

 private:
  GuestImage(test::GuestRam& ram, uint32_t width, uint32_t height)
      : ram_(&ram), width_(width), height_(height) {}
  // Guest address of byte `offset` of the image.
  uint64_t AddressOf(uint64_t offset) const;

  test::GuestRam* ram_;
  uint32_t width_;
  uint32_t height_;
  std::vector<gpu::MemEntry> entries_;
  // kPages: guest address of each 4 KiB page of the image, in image order.
  std::vector<uint64_t> pages_;
};

}  // namespace vgpu::bench
