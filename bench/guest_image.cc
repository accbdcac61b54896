#include "guest_image.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace vgpu::bench {

Result<GuestImage> GuestImage::Allocate(test::GuestRam& ram, uint32_t width, uint32_t height,
                                        BackingLayout layout) {
  GuestImage image(ram, width, height);
  const uint64_t bytes = image.bytes();
  const uint64_t page_count = (bytes + kPageSize - 1) / kPageSize;
  Result<uint64_t> base = ram.Allocate(page_count * kPageSize, kPageSize);
  if (!base) return ErrorOf(base);
  if (layout == BackingLayout::kContiguous) {
    image.entries_.push_back(gpu::MemEntry{*base, static_cast<uint32_t>(bytes), 0});
    image.pages_.clear();
    for (uint64_t page = 0; page < page_count; ++page) {
      image.pages_.push_back(*base + page * kPageSize);
    }
    return image;
  }
  for (uint64_t page = 0; page < page_count; ++page) {
    image.pages_.push_back(*base + page * kPageSize);
  }
  // A fixed seed: every run and every backend gets the same scatter.
  std::mt19937_64 random(0x76677075);
  std::shuffle(image.pages_.begin(), image.pages_.end(), random);
  for (uint64_t page = 0; page < page_count; ++page) {
    const uint64_t length = std::min<uint64_t>(kPageSize, bytes - page * kPageSize);
    image.entries_.push_back(gpu::MemEntry{image.pages_[page], static_cast<uint32_t>(length), 0});
  }
  return image;
}

uint64_t GuestImage::AddressOf(uint64_t offset) const {
  return pages_[offset / kPageSize] + offset % kPageSize;
}

uint32_t GuestImage::PatternPixel(uint32_t x, uint32_t y, uint32_t seed) {
  return (((x * 7 + seed) & 0xff) << 16) | (((y * 3 + seed) & 0xff) << 8) | ((x ^ y) & 0xff);
}

Result<void> GuestImage::FillPattern(uint32_t seed) {
  std::vector<uint32_t> row(width_);
  for (uint32_t y = 0; y < height_; ++y) {
    for (uint32_t x = 0; x < width_; ++x) row[x] = PatternPixel(x, y, seed);
    // A row may straddle pages: write it page piece by page piece.
    uint64_t offset = uint64_t{y} * stride();
    uint64_t written = 0;
    const auto* source = reinterpret_cast<const uint8_t*>(row.data());
    while (written < stride()) {
      const uint64_t in_page =
          std::min<uint64_t>(kPageSize - (offset + written) % kPageSize, stride() - written);
      Result<uint8_t*> destination = ram_->HostPointer(AddressOf(offset + written), in_page);
      if (!destination) return ErrorOf(destination);
      std::memcpy(*destination, source + written, in_page);
      written += in_page;
    }
  }
  return {};
}

Result<void> GuestImage::SetPixel(uint32_t x, uint32_t y, uint32_t value) {
  // A pixel never straddles a page: offsets are multiples of 4.
  Result<uint8_t*> destination =
      ram_->HostPointer(AddressOf(uint64_t{y} * stride() + uint64_t{x} * 4), 4);
  if (!destination) return ErrorOf(destination);
  std::memcpy(*destination, &value, sizeof(value));
  return {};
}

}  // namespace vgpu::bench
