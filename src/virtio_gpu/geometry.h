// Rectangles and boxes of virtio-gpu (§5.7.6.8, §5.7.6.9), the wire structs themselves, and
// arithmetic on them that cannot overflow.
//
//   if (!RectInside(request.r, width, height)) return Reject();
//   std::optional<Rect> damage = Intersect(flushed, scanout.rect);
//
// Every field is little-endian on the wire; only little-endian hosts are supported
// (virtio_gpu/formats.h asserts it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "base/checked_math.h"

namespace vgpu::virtio_gpu {

// Spec: struct virtio_gpu_rect (§5.7.6.8). Pixels, (0,0) the top left.
struct Rect {
  uint32_t x;
  uint32_t y;
  uint32_t width;
  uint32_t height;
} __attribute__((packed));
static_assert(sizeof(Rect) == 16);

// Spec: struct virtio_gpu_box (§5.7.6.9; layout from the Linux uapi header).
struct Box {
  uint32_t x;
  uint32_t y;
  uint32_t z;
  uint32_t w;
  uint32_t h;
  uint32_t d;
} __attribute__((packed));
static_assert(sizeof(Box) == 24);

// True when `rect` lies inside a width x height image, computed without overflow.
inline bool RectInside(const Rect& rect, uint32_t width, uint32_t height) {
  return RangeFits<uint64_t>(rect.x, rect.width, width) &&
         RangeFits<uint64_t>(rect.y, rect.height, height);
}

// The intersection of two rectangles inside the same image (so no sum overflows).
inline std::optional<Rect> Intersect(const Rect& a, const Rect& b) {
  const uint32_t left = std::max(a.x, b.x);
  const uint32_t top = std::max(a.y, b.y);
  const uint32_t right = std::min(a.x + a.width, b.x + b.width);
  const uint32_t bottom = std::min(a.y + a.height, b.y + b.height);
  if (left >= right || top >= bottom) return std::nullopt;
  return Rect{left, top, right - left, bottom - top};
}

// The smallest rectangle holding both, which lie inside the same image.
inline Rect Union(const Rect& a, const Rect& b) {
  const uint32_t left = std::min(a.x, b.x);
  const uint32_t top = std::min(a.y, b.y);
  const uint32_t right = std::max(a.x + a.width, b.x + b.width);
  const uint32_t bottom = std::max(a.y + a.height, b.y + b.height);
  return Rect{left, top, right - left, bottom - top};
}

}  // namespace vgpu::virtio_gpu
