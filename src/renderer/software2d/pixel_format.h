// The eight virtio-gpu 2D formats as pixman sees them on a little-endian host.
//
//   std::optional<pixman_format_code_t> pixman_format = PixmanFormatFor(request.format);
//   if (!pixman_format) return ResponseType::kErrInvalidParameter;  // Guest-controlled value.
//
// Virtio names give the byte order in memory (B8G8R8A8: B first); pixman names give the bits of a
// native uint32_t, high to low (a8r8g8b8: 0xAARRGGBB). On a little-endian host B8G8R8A8 is
// therefore a8r8g8b8. The table matches QEMU's virtio_gpu_get_pixman_format (PIXMAN_BE_* on LE).
#pragma once

#include <pixman.h>

#include <cstdint>
#include <optional>

namespace vgpu::renderer::software2d {

// Every virtio-gpu 2D format is 32 bits per pixel.
inline constexpr uint32_t kBytesPerPixel = 4;

// The pixman format for a virtio-gpu format (virtio_gpu::Format value), or nullopt for any other
// value.
std::optional<pixman_format_code_t> PixmanFormatFor(uint32_t virtio_format);

// True for a format whose bytes already are what the display wants (x8r8g8b8, as the vhost-user
// GPU UPDATE message carries): B8G8R8X8 and B8G8R8A8, whose alpha byte the display ignores.
// Rows of such a resource can be sent as they are, without conversion.
bool IsDisplayNative(uint32_t virtio_format);

}  // namespace vgpu::renderer::software2d
