#include "renderer/software2d/pixel_format.h"

#include <bit>

#include "virtio_gpu/formats.h"

namespace vgpu::renderer::software2d {

static_assert(std::endian::native == std::endian::little,
              "the table below is for little-endian hosts (QEMU's PIXMAN_BE_* mapping)");

std::optional<pixman_format_code_t> PixmanFormatFor(uint32_t virtio_format) {
  using virtio_gpu::Format;
  switch (static_cast<Format>(virtio_format)) {
    case Format::kB8G8R8A8Unorm:
      return PIXMAN_a8r8g8b8;
    case Format::kB8G8R8X8Unorm:
      return PIXMAN_x8r8g8b8;
    case Format::kA8R8G8B8Unorm:
      return PIXMAN_b8g8r8a8;
    case Format::kX8R8G8B8Unorm:
      return PIXMAN_b8g8r8x8;
    case Format::kR8G8B8A8Unorm:
      return PIXMAN_a8b8g8r8;
    case Format::kX8B8G8R8Unorm:
      return PIXMAN_r8g8b8x8;
    case Format::kA8B8G8R8Unorm:
      return PIXMAN_r8g8b8a8;
    case Format::kR8G8B8X8Unorm:
      return PIXMAN_x8b8g8r8;
  }
  return std::nullopt;
}

bool IsDisplayNative(uint32_t virtio_format) {
  return virtio_format == static_cast<uint32_t>(virtio_gpu::Format::kB8G8R8X8Unorm) ||
         virtio_format == static_cast<uint32_t>(virtio_gpu::Format::kB8G8R8A8Unorm);
}

}  // namespace vgpu::renderer::software2d
