// Converts pixels of a resource into x8r8g8b8, the format of the vhost-user GPU UPDATE message.
//
//   std::vector<uint8_t> pixels(uint64_t{rect.width} * rect.height * kBytesPerPixel);
//   Result<void> converted =
//       ConvertToXrgb8888(image.view(), rect, pixels, rect.width * kBytesPerPixel);
//
// Only the blue, green and red bytes of the output are defined (bytes 0, 1, 2 of each pixel in
// memory). Byte 3 is whatever the conversion leaves there (the source alpha or X byte on the
// copy path, pixman's choice otherwise): QEMU wraps UPDATE data as PIXMAN_x8r8g8b8 and ignores it.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "renderer/software2d/image_view.h"
#include "virtio_gpu/geometry.h"

namespace vgpu::renderer::software2d {

// Writes `rect` of `source` to `destination`: rect row r goes to destination[r *
// destination_stride] and occupies rect.width * 4 bytes. An empty rect writes nothing and succeeds.
//
// Fails with kInvalidArgument, writing nothing, when: the format is not a virtio-gpu format;
// source.stride is below width * 4, not a multiple of 4, or the view's bytes are too short for its
// size; rect is not inside the source (computed without overflow); destination_stride is below
// rect.width * 4 or not a multiple of 4; the destination is too short; a pointer is not 4-byte
// aligned or a size exceeds what pixman's int arithmetic takes. Fails with kResourceExhausted
// when pixman cannot allocate its image headers.
Result<void> ConvertToXrgb8888(const ImageView& source, const virtio_gpu::Rect& rect,
                               std::span<uint8_t> destination, uint32_t destination_stride);

}  // namespace vgpu::renderer::software2d
