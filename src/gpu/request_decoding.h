// Helpers shared by the command handlers: copying requests out of a chain and rectangle math
// that cannot overflow.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "base/checked_math.h"
#include "gpu/protocol.h"
#include "virtio/chain_io.h"
#include "virtio/descriptor_chain.h"

namespace vgpu::gpu {

// Copies the request struct T out of the chain's readable buffers (decode before use); nullopt
// when the request is shorter than T.
template <class T>
std::optional<T> ReadRequest(const virtio::DescriptorChain& chain) {
  virtio::ChainReader reader(chain);
  return reader.ReadObject<T>();
}

// True when `rect` lies inside a width x height image, computed without overflow.
inline bool RectInside(const Rect& rect, uint32_t width, uint32_t height) {
  return RangeFits<uint64_t>(rect.x, rect.width, width) &&
         RangeFits<uint64_t>(rect.y, rect.height, height);
}

// The intersection of two rectangles already inside the same image (so no overflow).
inline std::optional<Rect> Intersect(const Rect& a, const Rect& b) {
  const uint32_t left = std::max(a.x, b.x);
  const uint32_t top = std::max(a.y, b.y);
  const uint32_t right = std::min(a.x + a.width, b.x + b.width);
  const uint32_t bottom = std::min(a.y + a.height, b.y + b.height);
  if (left >= right || top >= bottom) return std::nullopt;
  return Rect{left, top, right - left, bottom - top};
}

inline bool FeatureAcked(uint64_t features, uint32_t bit) { return (features >> bit) & 1; }

}  // namespace vgpu::gpu
