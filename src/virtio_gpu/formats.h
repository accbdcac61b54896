// virtio-gpu's pixel formats, capset ids and the limits the device model and the renderers
// share (§5.7.6.8, §5.7.6.9).
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace vgpu::virtio_gpu {

static_assert(std::endian::native == std::endian::little,
              "virtio-gpu fields are little-endian; big-endian hosts would need byte swapping");

// Spec: enum virtio_gpu_formats (§5.7.6.8, RESOURCE_CREATE_2D). Names give the byte order in
// memory: B8G8R8A8 stores B first, so it reads as 0xAARRGGBB in a little-endian uint32_t. 3D
// resources use virgl's format numbers, which these share.
enum class Format : uint32_t {
  kB8G8R8A8Unorm = 1,
  kB8G8R8X8Unorm = 2,
  kA8R8G8B8Unorm = 3,
  kX8R8G8B8Unorm = 4,
  kR8G8B8A8Unorm = 67,
  kX8B8G8R8Unorm = 68,
  kA8B8G8R8Unorm = 121,
  kR8G8B8X8Unorm = 134,
};

// Spec: VIRTIO_GPU_CAPSET_* (§5.7.6.8, GET_CAPSET_INFO; kDrm is in the Linux header only).
enum class CapsetId : uint32_t {
  kVirgl = 1,
  kVirgl2 = 2,
  kGfxstreamVulkan = 3,
  kVenus = 4,
  kCrossDomain = 5,
  kDrm = 6,
  kGfxstreamGles = 8,
};

// Spec: with VIRTIO_GPU_FLAG_INFO_RING_IDX, ring_idx selects one of this many per-context fence
// timelines (§5.7.6.7).
inline constexpr uint32_t kMaxRingIdx = 64;

// Spec: a cursor resource is 64x64 (§5.7.6.10).
inline constexpr uint32_t kCursorSize = 64;
inline constexpr uint32_t kCursorPixels = kCursorSize * kCursorSize;
// A cursor image as the display takes it: 64 rows of 64 a8r8g8b8 pixels.
using CursorImage = std::array<uint32_t, kCursorPixels>;

}  // namespace vgpu::virtio_gpu
